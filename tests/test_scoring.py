"""score_structures against direct CHGNet calls: same numbers, input order, caching, errors."""

import numpy as np
import pytest

from almat.enumeration import enumerate_orderings
from almat.scoring import ScoreCache, load_chgnet, score_structures


@pytest.fixture(scope="module")
def structures(half):
    return enumerate_orderings(half, 1)


@pytest.fixture(scope="module")
def direct(structures):
    """Energies from the documented CHGNet call, one structure at a time."""
    model = load_chgnet()
    return np.array([float(model.predict_structure(s, task="e")["e"]) for s in structures])


def test_energies_equal_direct_chgnet_calls(structures, direct):
    df = score_structures(structures, cache=False)
    assert list(df.columns) == ["formula", "n_atoms", "energy_per_atom", "total_energy"]
    assert np.abs(df["energy_per_atom"].to_numpy() - direct).max() < 1e-6
    assert np.allclose(df["total_energy"], df["energy_per_atom"] * 13)


def test_input_order_is_kept_and_results_deterministic(structures, direct):
    order = np.random.default_rng(0).permutation(len(structures))
    df = score_structures([structures[i] for i in order], cache=False, chunk_size=7, batch_size=3)
    assert np.abs(df["energy_per_atom"].to_numpy() - direct[order]).max() < 1e-6


def test_forces_stress_magmoms_on_request(structures, direct):
    model = load_chgnet()
    ref = model.predict_structure(structures[0], task="efsm")
    df = score_structures(structures[:3], forces=True, stress=True, magmoms=True, cache=False)
    assert df["forces"][0].shape == (13, 3)
    assert df["stress"][0].shape == (3, 3)
    assert df["magmoms"][0].shape == (13,)
    assert np.allclose(df["forces"][0], ref["f"], atol=1e-5)
    assert np.allclose(df["stress"][0], ref["s"], atol=1e-4)
    assert abs(df["energy_per_atom"][0] - direct[0]) < 1e-6


def test_cache_skips_the_model(structures):
    cache = ScoreCache()
    model = load_chgnet()
    first = score_structures(structures[:5], cache=cache, model=model)
    calls = []
    original = model.predict_graph
    model.predict_graph = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        again = score_structures(structures[:5], cache=cache, model=model)
    finally:
        del model.predict_graph
    assert calls == []
    assert again.equals(first)


def test_cache_file_survives_a_restart(structures, tmp_path):
    path = tmp_path / "scores.jsonl"
    first = score_structures(structures[:2], cache=ScoreCache(path))
    reloaded = ScoreCache(path)  # a new process would do this
    assert len(reloaded) == 2
    again = score_structures(structures[:2], cache=reloaded)
    assert np.array_equal(again["energy_per_atom"], first["energy_per_atom"])


def test_disordered_structure_is_refused(half):
    with pytest.raises(ValueError, match="partially occupied"):
        score_structures([half])


def test_not_a_structure_is_refused(structures):
    with pytest.raises(TypeError, match="not a pymatgen Structure"):
        score_structures([structures[0], "POSCAR"])
