"""Enumeration with split-site exclusion (``min_distance``) against independent references.

References: the unconstrained enumeration filtered by ``almat.pool_build.shortest_distances``
(Li6PS5Cl sizes 1-2, row for row); a brute-force orbit count with the symmetry
that spglib finds in one supercell (size 3); icet's enumeration filtered by
pymatgen neighbour distances (simple cubic and bcc); a hand derivation
(half-filled simple cubic without nearest neighbours is the rock-salt checkerboard).
"""

from __future__ import annotations

import time
import tracemalloc
from itertools import product

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import bulk
from icet_reference import enumerate_structures, needs_icet
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from almat.enumeration import (
    CellSizeError,
    ConcentrationError,
    EnumerationTooLargeError,
    ExclusionError,
    SymmetryError,
    UnknownBackendError,
    count_orderings,
    enumerate_orderings,
    enumerate_table,
    respects_min_distance,
)
from almat.enumeration.counting import count_labelings
from almat.enumeration.walk import enumerate_labelings
from almat.errors import AlmatError
from almat.orderings import translations
from almat.pool_build import shortest_distances


@pytest.fixture(scope="module")
def split(half):
    return enumerate_labelings(half, [1, 2], min_distance=2.0)


def keys(table) -> set[str]:
    return {table.key(i) for i in range(len(table))}


# --- Li6PS5Cl ------------------------------------------------------------------------------------


def test_rows_are_the_unconstrained_rows_that_keep_li_apart(half, split):
    """Same HNF and label row as the unconstrained enumeration filtered by the shortest Li-Li distance."""
    full = enumerate_labelings(half, [1, 2])
    allowed = full.subset(np.flatnonzero(shortest_distances(full) >= 2.0))
    assert keys(split) == keys(allowed)
    assert len(split) == len(allowed) == 630
    assert np.bincount(split.cell_sizes).tolist() == [0, 4, 626]
    assert np.array_equal(split.occupations, allowed.occupations)  # same canonical order too
    assert count_labelings(half, [1, 2], min_distance=2.0) == {1: 4, 2: 626}


def test_split_rows_have_one_li_per_pair_and_respect_the_distance(half, split):
    assert (shortest_distances(split) >= 2.0).all()
    assert respects_min_distance(split, 2.0).all()
    assert not respects_min_distance(split, 2.5).all()
    for s in split.structures(range(0, len(split), 97)):
        li = Structure.from_sites([site for site in s if site.specie.symbol == "Li"])
        assert li.get_neighbor_list(2.0)[3].size == 0


def _orbit_namer(half: Structure, hnf: np.ndarray, min_distance: float):
    """Brute force in one supercell: the orbits of non-superperiodic labellings with no two Li too close.

    The supercell is built by pymatgen and its symmetry found by spglib (all Li alike), independently
    of almat.enumeration.hnf. A labelling is a bit code over the supercell's Li sites; an orbit is
    named by its smallest code. Returns the set of orbit names, the Li fractional coordinates and a function that
    names the orbit of given codes.
    """
    sc = half.copy()
    sc.make_supercell(hnf.T)
    li = [i for i, site in enumerate(sc) if not site.is_ordered]
    frac = sc.frac_coords[li]
    close = np.argwhere(np.triu(sc.lattice.get_all_distances(frac, frac) < min_distance, 1))
    # At 2.0 Å the close pairs partition the sites, and half filling puts exactly one Li on each.
    assert len(close) == len(li) // 2 and len(np.unique(close)) == len(li)
    choice = np.array(list(product([0, 1], repeat=len(close))), dtype=bool)
    occupied = np.zeros((len(choice), len(li)), dtype=bool)
    occupied[np.arange(len(choice))[:, None], np.where(choice, close[:, 1], close[:, 0])] = True
    types = [next(iter(site.species)).Z for site in sc]
    ops = spglib.get_symmetry((sc.lattice.matrix, sc.frac_coords, types), symprec=1e-3)
    sources, pure = [], []
    for rot, trans in zip(ops["rotations"], ops["translations"]):
        diff = (frac @ rot.T + trans)[:, None, :] - frac[None, :, :]
        match = np.abs(diff - np.rint(diff)).max(axis=2) < 1e-3
        assert (match.sum(axis=1) == 1).all()
        sources.append(np.argsort(match.argmax(axis=1)))  # image[k] = labelling[source[k]]
        pure.append(np.array_equal(rot, np.eye(3)) and np.abs(trans - np.rint(trans)).max() > 1e-6)
    weights = 1 << np.arange(len(li), dtype=np.int64)

    def images(occ: np.ndarray) -> np.ndarray:
        return np.stack([(occ[:, src] * weights).sum(axis=1) for src in sources])

    codes = images(occupied)
    own = (occupied * weights).sum(axis=1)
    superperiodic = (codes[np.array(pure)] == own).any(axis=0)
    names = set(codes.min(axis=0)[~superperiodic].tolist())
    return names, frac, lambda occ: images(occ).min(axis=0)


def test_size3_supercell_against_a_brute_force_orbit_count(half):
    """Size 3: Burnside and the walk agree, and in the cell diag(1, 1, 3) almat's rows are exactly
    one member of each orbit that a brute force over all 2^18 one-Li-per-pair labellings finds."""
    table = enumerate_labelings(half, [3], min_distance=2.0)
    assert len(table) == count_labelings(half, [3], min_distance=2.0)[3]
    hnf = np.diag([1, 1, 3])
    h = [k for k, other in enumerate(table.hnfs) if np.array_equal(other, hnf)][0]
    rows = np.flatnonzero(table.hnf_index == h)
    names, frac, name_of = _orbit_namer(half, hnf, 2.0)
    # Column c = t * d + j of a row is parent site j moved by translations(hnf)[t] (almat.orderings).
    d = len(table.sites)
    cols = (translations(hnf)[:, None, :] + half.frac_coords[table.sites][None]).reshape(-1, 3)
    diff = (cols @ np.linalg.inv(hnf.T.astype(float)))[:, None, :] - frac[None, :, :]
    where = (np.abs(diff - np.rint(diff)).max(axis=2) < 1e-6).argmax(axis=1)
    occupied = np.zeros((len(rows), len(frac)), dtype=bool)
    occupied[:, where] = table.occupations[rows, : 3 * d] == table.species[0].index("Li+")
    mine = name_of(occupied)
    assert len(set(mine.tolist())) == len(rows) == len(names)
    assert set(mine.tolist()) == names


def test_any_composition_size1_against_brute_force(half):
    """Free Li count, one Li per pair at most: orbits of the 3^6 choices under the 24 operations."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    li = [i for i, s in enumerate(half) if not s.is_ordered]
    frac = half.frac_coords[li]
    dist = half.lattice.get_all_distances(frac, frac)
    perms = []
    for op in SpacegroupAnalyzer(half, symprec=1e-3).get_symmetry_operations():
        diff = op.operate_multi(frac)[:, None, :] - frac[None, :, :]
        perms.append((np.abs(diff - np.rint(diff)).max(axis=2) < 1e-3).argmax(axis=1))
    allowed = set()
    for subset in product([0, 1], repeat=12):
        on = np.flatnonzero(subset)
        if not (dist[np.ix_(on, on)][np.triu_indices(len(on), 1)] < 2.0).any():
            allowed.add(subset)
    orbits = {min(tuple(np.array(s)[np.argsort(p)]) for p in perms) for s in allowed}
    assert len(allowed) == 3 ** 6
    assert count_labelings(half, [1], "any", min_distance=2.0) == {1: len(orbits)}
    assert len(enumerate_labelings(half, [1], "any", min_distance=2.0)) == len(orbits)


# --- a second, simpler lattice -------------------------------------------------------------------


LATTICES = {  # (atoms, nearest-neighbour distance in Å)
    "sc": (Atoms("Au", cell=np.eye(3) * 3.0, pbc=True), 3.0),
    "bcc": (bulk("Au", "bcc", a=3.0), 3.0 * np.sqrt(3) / 2),
}


def _vacancy_parent(atoms: Atoms, occupancy: float = 0.5) -> Structure:
    return Structure(Lattice(atoms.cell[:]), [{"Au": occupancy}], atoms.get_scaled_positions())


def _icet_filtered(atoms: Atoms, n: int, min_distance: float) -> int:
    """icet's Au/vacancy orderings at size n with no two Au closer than min_distance (pymatgen distances)."""
    count = 0
    for a in enumerate_structures(atoms, [n], ["Au", "X"]):
        keep = [s != "X" for s in a.get_chemical_symbols()]
        if any(keep):
            d = AseAtomsAdaptor.get_structure(a[keep]).get_neighbor_list(min_distance)[3]
            if ((d > 1e-6) & (d < min_distance)).any():
                continue
        count += 1
    return count


@needs_icet
@pytest.mark.parametrize("lattice", ["sc", "bcc"])
def test_nearest_neighbour_exclusion_against_icet(lattice):
    atoms, nn = LATTICES[lattice]
    parent = _vacancy_parent(atoms)
    sizes = range(1, 7)
    counts = count_labelings(parent, sizes, "any", min_distance=nn + 0.1)
    table = enumerate_labelings(parent, sizes, "any", min_distance=nn + 0.1)
    for n in sizes:
        reference = _icet_filtered(atoms, n, nn + 0.1)
        assert counts[n] == reference == int((table.cell_sizes == n).sum()), n
    assert sum(counts.values()) < sum(count_labelings(parent, sizes, "any").values())


@pytest.mark.parametrize("lattice", ["sc", "bcc"])
def test_half_filled_without_nearest_neighbours_is_the_checkerboard(lattice):
    """By hand: on a bipartite lattice (sc, bcc) a half filling with no two nearest neighbours fills
    one of the two sublattices (each nearest-neighbour line alternates), so there is one ordering, in
    the index-2 cell of the checkerboard; every larger cell holds only superperiodic copies of it."""
    atoms, nn = LATTICES[lattice]
    parent = _vacancy_parent(atoms)
    assert count_labelings(parent, [2, 4, 6, 8], min_distance=nn + 0.1) == {2: 1, 4: 0, 6: 0, 8: 0}
    table = enumerate_labelings(parent, [2, 4], min_distance=nn + 0.1)
    assert len(table) == 1
    au = table.structure(0)
    assert len(au) == 1
    # The Au sublattice: fcc with a = 6 Å on sc (shortest distance 3 sqrt 2), sc with a = 3 Å on bcc.
    assert au.get_neighbor_list(5.0)[3].min() == pytest.approx(3.0 * np.sqrt(2) if lattice == "sc" else 3.0)


# --- guards --------------------------------------------------------------------------------------


def _bounded(call):
    """``call()``, checked to take under 2 s of CPU time (wall time depends on what else runs) and 50 MB.

    The bound is checked whether ``call`` answers or raises; within it, an exception propagates.
    """
    tracemalloc.start()
    start = time.process_time()
    try:
        return call()
    finally:
        seconds = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert seconds < 2.0 and peak < 50e6, (seconds, peak)


def _quick_and_small(call, error, match):
    """Refused with ``error`` within the bounds of :func:`_bounded`."""
    with pytest.raises(error, match=match):
        _bounded(call)


def test_guards_refuse_at_once(half):
    _quick_and_small(lambda: count_orderings(half, 32), CellSizeError, r"Sizes 1 to 14 can be counted")
    _quick_and_small(lambda: count_orderings(half, 1_000_000, 1_000_000), CellSizeError,
                     "Cell size 1000000 is too large")
    _quick_and_small(lambda: enumerate_table(half, 3, 3), EnumerationTooLargeError,
                     r"1,638,672,390 .* min_distance=2\.0")
    _quick_and_small(lambda: enumerate_table(half, 2, 2, min_distance=2.0, max_rows=100),
                     EnumerationTooLargeError, "626 symmetry-distinct")
    _quick_and_small(lambda: enumerate_labelings(half, [3]), EnumerationTooLargeError, "max_rows")


@needs_icet
def test_icet_guard_refuses_at_once(half):
    _quick_and_small(lambda: enumerate_table(half, 2, 2, backend="icet", min_distance=2.0, max_rows=1000),
                     EnumerationTooLargeError, "395,632")


def test_bad_input_is_refused_clearly(half):
    for bad in (0, -1.0, float("nan"), float("inf"), -float("inf"), "two", True, np.True_):
        for call in (lambda: count_orderings(half, 1, min_distance=bad),
                     lambda: enumerate_table(half, 1, min_distance=bad),
                     lambda: enumerate_orderings(half, 1, min_distance=bad)):
            with pytest.raises(ExclusionError, match=r"positive finite number such as 2\.0.*got "):
                call()
    with pytest.raises(CellSizeError, match="min_cell_size <= max_cell_size"):
        enumerate_table(half, 1, 2)
    with pytest.raises(UnknownBackendError, match="Unknown backend"):
        enumerate_table(half, 1, backend="fastest")


def test_cli_refuses_bad_distances_in_one_line(tmp_path, capsys):
    from almat.cli import main

    for bad in ("nan", "-1", "inf", "0"):
        assert main(["enumerate", "--min-distance", bad, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("almat enumerate: min_distance is"), err
    assert not (tmp_path / "o").exists()


# --- radii beyond every cell ---------------------------------------------------------------------


def _kept_by_pymatgen(table, r: float):
    """Rows whose built crystal has no two atoms closer than ``r`` Å by pymatgen's neighbour list,
    which counts an atom's own periodic copies as neighbours. Each atom has a copy one cell vector
    away, so a search out to the shortest cell vector (plus 0.1 Å) finds a pair closer than ``r``
    whenever ``r`` is longer than that: the search needs to go no farther."""
    keep = []
    for i, s in enumerate(table.structures()):
        d = s.get_neighbor_list(min(r, min(s.lattice.abc) + 0.1))[3] if len(s) else np.zeros(0)
        if not ((d > 1e-6) & (d < r - 1e-6)).any():
            keep.append(i)
    return table.subset(np.array(keep, dtype=int))


@pytest.mark.parametrize("r", [3.1, 3.5, 4.5, 5.5, 7.0, 1000.0])
def test_exclusion_is_what_the_built_crystals_show_at_every_radius(r):
    """Simple cubic (a = 3 Å) Au/vacancy, sizes 1-4: below, across and far beyond every supercell's
    shortest vector (3 to 5.2 Å here), the rows are the unconstrained rows whose built crystal keeps
    atoms ``r`` apart, so bounding the neighbour search drops nothing. At 3.5 Å the rock-salt cell
    (shortest vector 4.24 Å) still holds an atom; at 1000 Å only the empty size-1 cell is left."""
    parent = _vacancy_parent(LATTICES["sc"][0])
    sizes = range(1, 5)
    full = enumerate_labelings(parent, sizes, "any")
    split = enumerate_labelings(parent, sizes, "any", min_distance=r)
    assert keys(split) == keys(_kept_by_pymatgen(full, r))
    assert sum(count_labelings(parent, sizes, "any", min_distance=r).values()) == len(split)
    if r == 1000.0:
        assert len(split) == 1 and len(split.structure(0)) == 0


def test_radii_beyond_every_cell_answer_at_once(half):
    """No supercell of Li6PS5Cl up to 2 cells keeps a site 8.8 Å from its own copy (Hermite's bound),
    so 1000 Å and 1e9 Å leave no site for Li: no ordering, answered at once."""
    table = enumerate_table(half, 1)  # loads the compiled walk first: its one-off cost is not the request's
    for r in (1000.0, 1e9):
        assert _bounded(lambda: count_orderings(half, 2, min_distance=r)) == 0
        assert len(_bounded(lambda: enumerate_table(half, 2, min_distance=r))) == 0
        assert _bounded(lambda: enumerate_orderings(half, 2, min_distance=r)) == []
    assert not _bounded(lambda: respects_min_distance(table, 1e9)).any()


def test_errors_share_the_almat_root():
    from almat.enumeration import (
        BackendUnavailableError,
        NoOrderingsError,
        OptionError,
        ParentError,
    )
    from almat.orderings import SupercellError

    for cls, builtin in ((CellSizeError, ValueError), (EnumerationTooLargeError, ValueError),
                         (ExclusionError, ValueError), (ConcentrationError, ValueError),
                         (SymmetryError, ValueError), (UnknownBackendError, ValueError),
                         (OptionError, ValueError), (NoOrderingsError, ValueError),
                         (ParentError, TypeError), (BackendUnavailableError, RuntimeError),
                         (SupercellError, ValueError)):
        assert issubclass(cls, AlmatError) and issubclass(cls, builtin)


# --- the public API and the command line ---------------------------------------------------------


def test_public_api_takes_min_distance(half, split):
    assert count_orderings(half, 2, min_distance=2.0) == 630
    table = enumerate_table(half, 2, min_distance=2.0)
    assert keys(table) == keys(split)
    structures = enumerate_orderings(half, 1, min_distance=2.0)
    assert len(structures) == 4
    assert all(s.composition.reduced_formula == "Li6PS5Cl" for s in structures)


def test_cli_min_distance(tmp_path, capsys):
    from almat.cli import main

    assert main(["enumerate", "--min-distance", "2.0", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.cif"))) == 4
    assert main(["enumerate", "--max-cell-size", "3", "--min-cell-size", "3", "--out", str(tmp_path)]) == 2
    assert "1,638,672,390" in capsys.readouterr().err
