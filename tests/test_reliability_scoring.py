"""Probes of structure checks and CHGNet scoring: refusals by name, a cache that is never wrong."""

import copy
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from almat.enumeration import enumerate_orderings
from almat.journal import CutLineWarning
from almat.scoring import (
    ScoreCache,
    ScoreCacheError,
    ScoreCacheWarning,
    ScoringError,
    load_chgnet,
    model_fingerprint,
    score_structures,
)
from almat.structures import (
    CrowdedStructureWarning,
    OccupancyError,
    StructureError,
    check_charge_balance,
    check_structure,
    set_occupancy,
    warn_if_crowded,
)


def li2(a: float = 3.5, second=(0.5, 0.5, 0.5)) -> Structure:
    """Two Li in a cubic cell (bcc Li for a = 3.5 Å)."""
    return Structure(Lattice.cubic(a), ["Li", "Li"], [[0, 0, 0], list(second)])


@pytest.fixture(scope="module")
def structures(half):
    return enumerate_orderings(half, 1)[:2]


# ---------------------------------------------------------------- structure checks (no CHGNet)
@pytest.mark.parametrize("structure,words", [
    (Structure(Lattice.cubic(4), [], []), "holds no atoms"),
    (li2(second=(np.nan, 0, 0)), "NaN or infinite coordinates"),
    (li2(second=(3e6, 0.5, 0.5)), "more than 1000 cells outside"),  # was a 38 GB MemoryError
    (Structure(Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 0]]), ["Li"], [[0, 0, 0]]), "flat"),
    (li2(5.0, (0.02, 0, 0)), "0.100 Å apart"),  # 0.02 x 5 Å
    (li2(5.0, (0.98, 0, 0)), "0.100 Å apart"),  # the same pair across the cell boundary
])
def test_structures_no_calculation_should_run_on(structure, words):
    with pytest.raises(StructureError, match=words) as info:
        check_structure(structure, "probe.cif")
    assert "probe.cif" in str(info.value)


def test_split_sites_may_overlap():
    # Two half-occupied Li positions 0.3 Å apart: a split site, common in refined structures.
    s = Structure(Lattice.cubic(5), [{"Li": 0.5}, {"Li": 0.5}, "Cl"], [[0, 0, 0], [0.06, 0, 0], [0.5, 0.5, 0.5]])
    check_structure(s)


def test_a_crowded_cell_warns_and_li6ps5cl_does_not(half):
    # One Li in a 1 Å cube: 1 Å from its images, 6.94 u / 1 Å^3 = 11.5 g/cm3 (Li metal: 0.53).
    with pytest.warns(CrowdedStructureWarning, match="11.5"):
        assert warn_if_crowded(Structure(Lattice.cubic(1), ["Li"], [[0, 0, 0]]))
    orderings = enumerate_orderings(half, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CrowdedStructureWarning)  # Li-Li 1.8 Å: unusual, not unphysical
        assert not any(warn_if_crowded(s) for s in orderings)


def test_charge_balance(parent, half):
    check_charge_balance(half)
    # 0.56 x 12 Li + 5 - 2 x 5 - 1 = +0.72; 6 Li (0.5) balance it.
    with pytest.raises(StructureError, match=r"\+0\.72.*occupancy of the Li\+ sites that makes it neutral is 0\.5"):
        check_charge_balance(parent)


@pytest.mark.parametrize("occupancy", [1e-9, 1e-4, 0.9999999])
def test_occupancies_that_round_to_no_or_all_atoms(parent, occupancy):
    with pytest.raises(OccupancyError, match="resolution of 1/1000"):
        set_occupancy(parent, occupancy)


@pytest.mark.parametrize("occupancy", [0.001, 0.5, 1.0])
def test_occupancies_that_are_kept(parent, occupancy):
    assert set_occupancy(parent, occupancy)[0].species.num_atoms == pytest.approx(occupancy)


# ---------------------------------------------------------------- scoring refusals
def test_no_structures_give_the_documented_columns():
    df = score_structures([])
    assert list(df.columns) == ["formula", "n_atoms", "energy_per_atom", "total_energy"]
    assert df["energy_per_atom"].dtype == float
    assert list(score_structures([], forces=True, magmoms=True).columns)[-2:] == ["forces", "magmoms"]


@pytest.mark.parametrize("structure,error,words", [
    (Structure(Lattice.cubic(4), ["Am"], [[0, 0, 0]]), ScoringError, "Am \\(Z = 95\\)"),
    (Structure(Lattice.cubic(4), ["X"], [[0, 0, 0]]), ScoringError, "dummy species"),
    (Structure(Lattice.cubic(20), ["Li"], [[0, 0, 0]]), ScoringError, "no neighbour within"),
    (li2(5.0, (0.02, 0, 0)), StructureError, "0.100 Å apart"),
    (li2(second=(np.nan, 0, 0)), StructureError, "NaN"),
])
def test_unscorable_structures_are_refused_by_name(structure, error, words):
    model = load_chgnet()
    with pytest.raises(error, match=words) as info:
        score_structures([li2(), structure], names=["good.cif", "bad.cif"], cache=False, model=model)
    assert "bad.cif" in str(info.value)


@pytest.mark.slow
def test_far_coordinates_score_as_wrapped():
    model = load_chgnet()
    near, far = score_structures([li2(), li2(second=(50.5, -3.5, 0.5))], cache=False, model=model)["energy_per_atom"]
    assert far == pytest.approx(near, abs=1e-5)


def test_crowded_structure_is_scored_with_a_warning():
    # Li-Li 1.0 Å (0.2 x 5 Å): under half the 2.56 Å Li-Li covalent bond.
    with pytest.warns(CrowdedStructureWarning, match="crowded.cif"):
        df = score_structures([li2(5.0, (0.2, 0, 0))], names=["crowded.cif"], cache=False)
    assert np.isfinite(df["energy_per_atom"][0])


# ---------------------------------------------------------------- the cache
def test_model_fingerprint_follows_the_weights():
    model = load_chgnet()
    twin = copy.deepcopy(model)
    assert model_fingerprint(twin) == model_fingerprint(model)
    with torch.no_grad():
        next(twin.parameters()).add_(1e-3)
    assert model_fingerprint(twin) != model_fingerprint(model)


def test_cache_hits_for_the_same_weights_and_misses_for_others(structures):
    model = load_chgnet()
    cache = ScoreCache()
    first = score_structures(structures, cache=cache, model=model)
    twin = copy.deepcopy(model)  # another object, as in a new process: was keyed on id(model)
    calls = []
    original = twin.predict_graph
    twin.predict_graph = lambda *a, **k: calls.append(1) or original(*a, **k)
    assert score_structures(structures, cache=cache, model=twin).equals(first)
    assert calls == []
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(1.01)
    changed = score_structures(structures, cache=cache, model=twin)
    assert calls  # changed weights were computed, not served from the cache
    assert not np.allclose(changed["energy_per_atom"], first["energy_per_atom"])


def test_editing_a_returned_array_changes_nothing(structures):
    cache = ScoreCache()
    computed = score_structures(structures[:1], forces=True, cache=cache)
    kept = computed["forces"][0].copy()
    computed["forces"][0][:] = 99.0
    served = score_structures(structures[:1], forces=True, cache=cache)  # from the cache
    assert np.array_equal(served["forces"][0], kept)
    served["forces"][0][:] = 99.0
    assert np.array_equal(score_structures(structures[:1], forces=True, cache=cache)["forces"][0], kept)


@pytest.mark.slow
def test_cache_file_hits_in_a_new_process(structures, tmp_path):
    path = tmp_path / "scores.jsonl"
    score_structures(structures, cache=ScoreCache(path))
    structures_json = tmp_path / "structures.json"
    structures_json.write_text(json.dumps([s.as_dict() for s in structures]))
    script = f"""
import json
from pymatgen.core import Structure
from almat.scoring import ScoreCache, load_chgnet, score_structures
model = load_chgnet()
model.predict_graph = None  # any prediction would fail
structures = [Structure.from_dict(d) for d in json.loads(open({str(structures_json)!r}).read())]
print(score_structures(structures, cache=ScoreCache({str(path)!r}), model=model)["energy_per_atom"].tolist())
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    expected = [json.loads(line)["e"] for line in path.read_text().splitlines()[1:]]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == expected


def _cache_file(path, n=3):
    """A score-cache file with ``n`` energies written by ScoreCache; returns its lines."""
    ScoreCache(path).put_many("m", {f"k{i}": {"e": -4.0 - i} for i in range(n)})
    return path.read_text().splitlines()


def test_a_cut_last_line_is_dropped_and_the_next_energy_starts_a_fresh_line(tmp_path):
    path = tmp_path / "scores.jsonl"
    _cache_file(path)
    with path.open("a") as fh:
        fh.write('{"model": "m", "key": "cut", "e": -4.')  # a crash in mid-write
    with pytest.warns(CutLineWarning, match="cut short"):
        cache = ScoreCache(path)
    assert len(cache) == 3 and cache.get("m", "k1", "e") == {"e": -5.0}
    cache.put("m", "new", {"e": -7.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ScoreCache(path)
    assert len(again) == 4 and again.get("m", "new", "e") == {"e": -7.0}


@pytest.mark.parametrize("edit,words", [
    (lambda r: "{not json", "not valid JSON"),
    (lambda r: "\x00\xff garbage", "not valid JSON"),
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "key"}), "no model and structure key"),
    (lambda r: json.dumps(dict(r, e="abc")), "'abc' is not a finite number"),
    (lambda r: json.dumps(dict(r, e=[1.0])), "is not a finite number"),
    (lambda r: json.dumps(dict(r, e=float("nan"))), "nan is not a finite number"),
    (lambda r: json.dumps(dict(r, e=-99.0)), "changed after almat wrote it"),
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "check"}), "no checksum"),
])
def test_a_damaged_line_is_refused_by_number_and_the_file_left_as_it_is(tmp_path, edit, words):
    path = tmp_path / "scores.jsonl"
    lines = _cache_file(path)
    lines[2] = edit(json.loads(lines[2]))
    path.write_text("\n".join(lines) + "\n")
    content = path.read_bytes()
    with pytest.raises(ScoreCacheError, match=f"Line 3 of {path}: .*{words}|Line 3 of {path} is {words}") as err:
        ScoreCache(path)
    assert "delete that line, or the whole file" in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == content


def test_a_cache_of_another_chgnet_version_or_format_is_refused(tmp_path):
    path = tmp_path / "scores.jsonl"
    lines = _cache_file(path)
    header = json.loads(lines[0])
    path.write_text("\n".join([json.dumps(dict(header, chgnet="0.0.1"))] + lines[1:]) + "\n")
    with pytest.raises(ScoreCacheError, match="energies of CHGNet 0.0.1; this is CHGNet"):
        ScoreCache(path)
    path.write_text("\n".join(lines[1:]) + "\n")  # the header-less files of almat before journals
    with pytest.raises(ScoreCacheError, match="is not a score cache"):
        ScoreCache(path)


def test_the_default_cache_is_bounded_and_forgets_the_least_recently_used():
    from almat.scoring import DEFAULT_CACHE, DEFAULT_CACHE_SIZE

    assert DEFAULT_CACHE.max_size == DEFAULT_CACHE_SIZE and DEFAULT_CACHE.path is None
    cache = ScoreCache(max_size=3)
    for i in range(3):
        cache.put("m", f"k{i}", {"e": float(i)})
    assert cache.get("m", "k0", "e") == {"e": 0.0}  # k0 is now the most recently used
    cache.put("m", "k3", {"e": 3.0})
    assert len(cache) == 3 and cache.get("m", "k1", "e") is None
    assert [cache.get("m", k, "e")["e"] for k in ("k0", "k2", "k3")] == [0.0, 2.0, 3.0]


def test_scoring_leaves_the_callers_isolated_atom_setting_and_refuses_isolated_atoms_after_a_relaxation(
        structures):
    from almat.relaxation import RelaxSettings, relax_structure

    model = load_chgnet()
    isolated = Structure(Lattice.cubic(20), ["Li"], [[0, 0, 0]])
    try:
        model.graph_converter.set_isolated_atom_response("warn")
        score_structures(structures[:1], cache=False, model=model)
        assert model.graph_converter.on_isolated_atoms == "warn"
        with pytest.raises(ScoringError, match="no neighbour within"):
            score_structures([isolated], cache=False, model=model)
        assert model.graph_converter.on_isolated_atoms == "warn"
        relax_structure(structures[0], model, RelaxSettings(steps=1))
        assert model.graph_converter.on_isolated_atoms == "warn"
        with pytest.raises(ScoringError, match="no neighbour within"):
            score_structures([isolated], cache=False, model=model)
    finally:
        model.graph_converter.set_isolated_atom_response("error")


def test_an_unwritable_cache_file_warns_and_scoring_goes_on(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    cache = ScoreCache(blocker / "scores.jsonl")
    with pytest.warns(ScoreCacheWarning, match="Cannot append"):
        cache.put("m", "k", {"e": -4.0})
    assert cache.get("m", "k", "e") == {"e": -4.0}
