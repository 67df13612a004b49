"""Enumeration counts against independent references, the size guard and Ewald ranking."""

import ast
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ase.build import bulk
from icet_reference import enumerate_structures, needs_icet
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

import almat
from almat.enumeration import (
    EnumerationTooLargeError,
    UnknownBackendError,
    count_orderings,
    enumerate_orderings,
    enumerate_table,
    enumlib_available,
)


def _orbit_count_by_brute_force(half):
    """Size-1 orderings counted independently: orbits of 6-of-12 Li subsets under the point group."""
    li = [i for i, s in enumerate(half) if not s.is_ordered]
    frac = half.frac_coords[li]
    perms = []
    for op in SpacegroupAnalyzer(half, symprec=1e-3).get_symmetry_operations():
        image = op.operate_multi(frac)
        d = image[:, None, :] - frac[None, :, :]
        match = np.abs(d - np.rint(d)).max(axis=2) < 1e-3
        perms.append(match.argmax(axis=1))
    seen, orbits = set(), 0
    for subset in combinations(range(12), 6):
        if subset in seen:
            continue
        orbits += 1
        for p in perms:
            seen.add(tuple(sorted(p[list(subset)])))
    return orbits, len(perms)


def test_li6ps5cl_cell_size_1_gives_48(half):
    orbits, n_ops = _orbit_count_by_brute_force(half)
    assert n_ops == 24  # point group -43m
    assert orbits == 48
    structures = enumerate_orderings(half, max_cell_size=1)
    assert len(structures) == 48
    assert count_orderings(half, 1) == 48
    for s in structures:
        assert s.is_ordered
        assert s.composition.reduced_formula == "Li6PS5Cl"
        assert len(s) == 13


def _binary(lattice_name, a=4.0):
    atoms = bulk("Au", lattice_name, a=a) if lattice_name != "hcp" else bulk("Au", "hcp", a=a, c=1.633 * a)
    return Structure(Lattice(atoms.cell[:]), [{"Au": 0.5, "Ag": 0.5}] * len(atoms),
                     atoms.get_scaled_positions())


# Hand count: an fcc binary A0.5B0.5 with two atoms per cell has exactly two orderings, the
# alternating (001) planes of CuAu (L1_0) and the alternating (111) planes of CuPt (L1_1).
# Larger cells are checked against icet's enumerate_structures, run here.
@needs_icet
def test_fcc_binary_half_counts_against_icet_and_hand_count():
    fcc = _binary("fcc")
    assert count_orderings(fcc, 2, 2) == 2
    for n in (2, 4):
        atoms = bulk("Au", "fcc", a=4.0)
        ref = sum(1 for a in enumerate_structures(atoms, [n], ["Au", "Ag"],
                                                  concentration_restrictions={"Au": (0.5, 0.5)}))
        assert count_orderings(fcc, n, n) == ref


@needs_icet
@pytest.mark.parametrize("lattice_name", ["bcc", "hcp"])
def test_other_binary_lattices_against_icet_directly(lattice_name):
    s = _binary(lattice_name)
    atoms = bulk("Au", lattice_name, a=4.0) if lattice_name != "hcp" else bulk("Au", "hcp", a=4.0, c=6.53)
    for n in (1, 2, 3, 4):
        if (n * len(atoms)) % 2:
            continue
        ref = sum(1 for a in enumerate_structures(atoms, [n], ["Au", "Ag"],
                                                  concentration_restrictions={"Au": (0.5, 0.5)}))
        assert count_orderings(s, n, n) == ref


def test_structures_are_new_objects_and_input_untouched(half):
    before = half.copy()
    enumerate_orderings(half, 1)
    assert half == before


def test_too_many_to_build_says_how_many(half):
    with pytest.raises(EnumerationTooLargeError, match="48 symmetry-distinct"):
        enumerate_orderings(half, 1, limit=10)


def test_an_ordered_structure_is_refused(parent):
    ordered = enumerate_orderings(almat.set_occupancy(parent, 0.5), 1)[0]
    with pytest.raises(ValueError, match="no partially occupied site"):
        enumerate_orderings(ordered, 1)


def test_ewald_ranking_matches_pymatgen_energies(half):
    ranked = enumerate_orderings(half, 1, sort_by="ewald")
    # pymatgen ranks by Ewald energy per atom; compute it here the plain way, structure by structure.
    energies = [EwaldSummation(s).total_energy / len(s) for s in ranked]
    assert np.all(np.diff(energies) >= -1e-9)
    assert sorted(energies) == pytest.approx(energies)


def test_table_round_trip_to_structures_preserves_the_set(half):
    table = enumerate_table(half, 1)
    assert table.occupations.shape == (48, 12)
    assert (table.occupations == 0).sum(axis=1).tolist() == [6] * 48  # six Li per cell
    # every structure in the table is distinct under the parent's symmetry
    from pymatgen.analysis.structure_matcher import StructureMatcher

    groups = StructureMatcher().group_structures(table.structures())
    assert len(groups) == 48


@needs_icet
@pytest.mark.skipif(not enumlib_available(), reason="enumlib's enum.x is not on PATH (conda-forge only)")
def test_enumlib_and_icet_give_the_same_set(half):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    a = enumerate_orderings(half, 1, backend="icet")
    b = enumerate_orderings(half, 1, backend="enumlib")
    assert len(a) == len(b) == 48
    groups = StructureMatcher().group_structures(a + b)
    assert all(len(g) == 2 for g in groups)


# --- count once, guard first, icet optional ------------------------------------------------------


def test_every_supercell_is_counted_once(monkeypatch):
    """enumerate_orderings used to count everything, then enumerate_table counted it all again."""
    from almat.enumeration import counting

    fcc = _binary("fcc")
    calls = []
    real = counting.count_cell
    monkeypatch.setattr(counting, "count_cell", lambda *args: calls.append(1) or real(*args))
    supercells = len(enumerate_table(fcc, 4).hnfs)
    assert len(calls) == supercells > 1
    calls.clear()
    structures = enumerate_orderings(fcc, 4)
    assert len(calls) == supercells
    assert len(structures) == count_orderings(fcc, 4)


@needs_icet
def test_the_icet_path_counts_once(half, monkeypatch):
    from almat.enumeration import counting

    calls = []
    real = counting.count_cell
    monkeypatch.setattr(counting, "count_cell", lambda *args: calls.append(1) or real(*args))
    assert len(enumerate_orderings(half, 1, backend="icet")) == 48
    assert len(calls) == 1


def test_icet_backend_without_icet_names_the_extra(half, monkeypatch, capsys, tmp_path):
    from almat.cli import main
    from almat.enumeration import BackendUnavailableError
    from almat.errors import AlmatError

    monkeypatch.setitem(sys.modules, "icet", None)  # as if the reference extra were not installed
    for call in (lambda: enumerate_table(half, 1, backend="icet"),
                 lambda: enumerate_orderings(half, 1, backend="icet"),
                 lambda: enumerate_table(half, 2, backend="icet", min_distance=2.0)):
        with pytest.raises(BackendUnavailableError, match=r'pip install "almat\[reference\]"') as info:
            call()
        assert isinstance(info.value, AlmatError) and "\n" not in str(info.value)
    assert main(["enumerate", "--backend", "icet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "almat[reference]" in err, err
    assert not (tmp_path / "o").exists()
    assert len(enumerate_table(half, 1)) == 48  # the lesson's own backend needs no icet


def test_bad_options_are_refused_in_one_line(half):
    from almat.enumeration import CellSizeError, OptionError, ParentError

    cases = [(lambda: enumerate_orderings(half, 1, sort_by="energy"), OptionError, "sort_by must be"),
             (lambda: enumerate_orderings(half, 1, sort_by=["ewald"]), OptionError, "sort_by must be"),
             (lambda: enumerate_orderings(half, 1, limit=-1), OptionError, "limit must be a whole number"),
             (lambda: enumerate_orderings(half, 1, limit=True), OptionError, "limit must be"),
             (lambda: enumerate_orderings(half, 1, limit=None), OptionError, "limit must be"),
             (lambda: enumerate_table(half, 1, max_rows=-5), OptionError, "max_rows must be"),
             (lambda: enumerate_table(half, 1, max_rows="10"), OptionError, "max_rows must be"),
             (lambda: enumerate_table(half, 1.5), CellSizeError, "positive integers"),
             (lambda: enumerate_table(half, 0), CellSizeError, "positive integers"),
             (lambda: enumerate_table(half, True), CellSizeError, "positive integers"),
             (lambda: enumerate_table(half, "2"), CellSizeError, "positive integers"),
             (lambda: enumerate_table("Li6PS5Cl.cif"), ParentError, "must be a pymatgen Structure"),
             (lambda: enumerate_table(half, 1, backend=None), UnknownBackendError, "Unknown backend")]
    for call, error, match in cases:
        with pytest.raises(error, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    assert len(enumerate_table(half, 1.0)) == 48  # a whole number written as a float is a size


def test_cells_from_another_parent_are_refused(half):
    from almat.orderings import SupercellError, hermite_normal_form, orderings_from_cells

    with pytest.raises(SupercellError, match="singular"):
        hermite_normal_form(np.diag([1, 1, 0]))
    s = enumerate_orderings(half, 1)[0]
    strained = s.lattice.matrix * 1.01
    with pytest.raises(SupercellError, match="not a supercell of the parent"):
        orderings_from_cells(half, [(strained, s.frac_coords, [str(sp.symbol) for sp in s.species])])
    moved = (s.frac_coords + 0.1) % 1
    with pytest.raises(SupercellError, match="matches no site of the parent"):
        orderings_from_cells(half, [(s.lattice.matrix, moved, [str(sp.symbol) for sp in s.species])])
    wrong = ["Na" if sp.symbol == "Li" else sp.symbol for sp in s.species]
    with pytest.raises(SupercellError, match="puts Na on parent site"):
        orderings_from_cells(half, [(s.lattice.matrix, s.frac_coords, wrong)])


def test_no_raw_value_or_type_errors_in_the_enumerator():
    """Every deliberate refusal of the enumerator and orderings.py is an AlmatError subclass."""
    package = Path(almat.__file__).parent
    for path in [*sorted((package / "enumeration").glob("*.py")), package / "orderings.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and isinstance(node.exc.func, ast.Name):
                assert node.exc.func.id not in ("ValueError", "TypeError"), f"{path.name}:{node.lineno}"


# --- every request answers bounded (issue 18) ----------------------------------------------------

#: Runs ``almat ARGS`` and reports the command's CPU seconds and the process's peak memory (KiB).
PROBE = """import resource, sys, time
from almat.cli import main
start = time.process_time()
rc = main(sys.argv[1:])
seconds = time.process_time() - start
print(f"probe {seconds:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
"""


def _probe(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    """``almat enumerate ARGS`` in a fresh process: its exit status and stderr lines, once checked to
    answer within 10 s of CPU time and 1 GiB of peak memory. Its address space is capped at 4 GiB, so
    a runaway fails fast instead of swamping the machine, and a hang ends at 120 s of wall time."""
    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    run = subprocess.run([sys.executable, "-c", PROBE, "enumerate", *args, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120, preexec_fn=cap, check=False)
    lines = run.stderr.splitlines()
    assert lines and lines[-1].startswith("probe "), run.stderr[-2000:]
    seconds, kib = lines[-1].split()[1:]
    assert float(seconds) < 10 and int(kib) < 1 << 20, (args, seconds, kib)
    return run.returncode, lines[:-1]


def _refused(tmp_path: Path, match: str, *args: str) -> None:
    rc, lines = _probe(tmp_path, *args)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("almat enumerate: "), lines
    assert re.search(match, lines[0]), lines[0]
    assert not (tmp_path / "o").exists()


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="peak memory in KiB (ru_maxrss) and RLIMIT_AS as Linux has them")


@linux_only
@pytest.mark.parametrize("radius,shown", [("1000", "1000"), ("1e9", r"1e\+09")])
def test_a_radius_beyond_every_cell_answers_at_once(tmp_path, radius, shown):
    """Used to take 5.6 GB and end in a MemoryError (1000 Å), or hang (1e9 Å)."""
    _refused(tmp_path, rf"No ordering .* keeps every two atoms on disordered sites {shown} Å apart",
             "--min-distance", radius)


@linux_only
@needs_icet
def test_icet_with_exclusion_is_refused_as_fast_as_the_table(tmp_path):
    """Used to hang: icet would go through all 1.6e9 orderings to keep 47,970."""
    _refused(tmp_path, r"Backend 'icet' would go through all 1,639,068,070 orderings", "--backend", "icet",
             "--min-distance", "2.0", "--max-cell-size", "3", "--limit", "100000")


@linux_only
def test_a_huge_limit_allocates_nothing_by_it(tmp_path):
    """Used to end in a 55 GiB MemoryError: 1.6e9 orderings are under the limit, but their structures
    would need tens of terabytes."""
    _refused(tmp_path, r"1,639,068,070 orderings .* would need about [\d,.]+ GB of memory",
             "--limit", "2000000000", "--max-cell-size", "3")
    rc, lines = _probe(tmp_path, "--limit", "2000000000")  # what fits is still written
    assert rc == 0 and lines == [] and len(list((tmp_path / "o").glob("*.cif"))) == 48


def test_structures_that_would_not_fit_are_refused_before_any_is_built(half, monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=100e6))
    with pytest.raises(EnumerationTooLargeError, match=r"395,680 orderings .* about 7\.2 GB .* 0\.1 GB"):
        enumerate_orderings(half, 2, limit=10**6)
