"""The shipped pools: what they hold, checked against independent references, and how they are built."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import almat
from almat.pool import POOL_DIR, PoolError, load_pool, save_pool
from almat.pool_build import BuildError, build_pool, shortest_distances
from almat.relaxation import relax_structure
from almat.scoring import load_chgnet


@pytest.fixture(scope="module")
def pool():
    return load_pool("li6ps5cl")


@pytest.fixture(scope="module")
def half():
    return almat.set_occupancy(almat.load_parent(), 0.5)


def test_loads_in_a_second_or_two():
    start = time.perf_counter()
    load_pool("li6ps5cl")
    assert time.perf_counter() - start < 2.0


def test_pool_is_every_allowed_ordering_of_sizes_1_and_2(pool, half):
    """Independent reference: filter the unconstrained enumeration by the measured Li-Li distance."""
    every = almat.enumerate_table(half, 2, 1)
    allowed = {every.key(int(i)) for i in np.flatnonzero(shortest_distances(every) >= 2.0)}
    assert {pool.orderings.key(i) for i in range(len(pool))} == allowed
    assert pool.reference["cell_size"].value_counts().to_dict() == {1: 4, 2: 626}
    assert (pool.reference["min_li_li"] >= 2.0).all()
    assert pool.reference.index.is_unique


def test_every_candidate_has_three_finite_fidelities(pool):
    ref = pool.reference
    for column in ("energy_per_atom", "unrelaxed_energy_per_atom", "ewald_energy_per_atom"):
        assert np.isfinite(ref[column]).all(), column
    assert ref["converged"].all()
    # relaxing only lowers the energy
    assert (ref["energy_per_atom"] < ref["unrelaxed_energy_per_atom"]).all()
    info = json.loads((POOL_DIR / "li6ps5cl.json").read_text())
    assert info["command"].startswith("almat build-pool")
    assert info["relaxation"]["fmax"] == 0.05 and info["relaxation"]["relax_cell"] is True
    assert info["fingerprint"] == pool.fingerprint


def test_structures_rebuilt_from_the_table_are_li6ps5cl(pool):
    for i in (0, 3, 4, len(pool) - 1):
        s = pool.structure(i)
        assert s.composition.reduced_formula == "Li6PS5Cl"
        assert len(s) == 13 * pool.reference["cell_size"].iloc[i]


@pytest.mark.slow
def test_relaxed_energies_equal_a_direct_struct_optimizer_run(pool):
    """CHGNet's own StructOptimizer with the stated settings, on a random sample of the pool."""
    from chgnet.model.dynamics import StructOptimizer

    optimizer = StructOptimizer(model=load_chgnet())
    rng = np.random.default_rng(7)
    for i in rng.choice(len(pool), size=3, replace=False):
        s = pool.structure(int(i))
        out = optimizer.relax(s, fmax=0.05, steps=500, relax_cell=True, verbose=False)
        energy = out["trajectory"].energies[-1] / len(s)
        assert abs(energy - pool.energies[i]) < 1e-4, pool.ids[i]


@pytest.mark.slow
def test_cheap_fidelities_equal_direct_calls(pool):
    """Unrelaxed CHGNet one structure at a time, and pymatgen's Ewald sum of one structure."""
    from pymatgen.analysis.ewald import EwaldSummation

    model = load_chgnet()
    rng = np.random.default_rng(2024)
    idx = np.sort(rng.choice(len(pool), size=12, replace=False))
    direct = [float(model.predict_structure(pool.structure(i), task="e")["e"]) for i in idx]
    assert np.abs(np.array(direct) - pool.reference["unrelaxed_energy_per_atom"].to_numpy()[idx]).max() < 1e-5
    for i in idx[:3]:
        s = pool.structure(int(i))
        assert abs(EwaldSummation(s).total_energy / len(s)
                   - pool.reference["ewald_energy_per_atom"].iloc[i]) < 1e-6


def test_screening_set_holds_allowed_size_3_orderings_with_cheap_energies(half):
    screen = load_pool("li6ps5cl-size3")
    assert len(screen) == 2000
    assert (screen.reference["cell_size"] == 3).all()
    assert (screen.reference["min_li_li"] >= 2.0).all()
    assert screen.reference["energy_per_atom"].isna().all()
    assert np.isfinite(screen.reference["unrelaxed_energy_per_atom"]).all()
    assert almat.count_orderings(half, 3, 3, min_distance=2.0) == 47340


def test_pool_files_with_the_occupations_table_under_its_old_name_still_load(pool, tmp_path):
    # The shipped .npz files name the occupations table "labels"; a pool saved now names it
    # "occupations". Both load to the same table, with the same fingerprint.
    with np.load(POOL_DIR / "li6ps5cl.npz") as shipped:
        assert "labels" in shipped.files and "occupations" not in shipped.files
    save_pool(pool, tmp_path)
    with np.load(tmp_path / "li6ps5cl.npz") as saved:
        assert "occupations" in saved.files and "labels" not in saved.files
        assert np.array_equal(saved["occupations"], pool.orderings.occupations)
    again = load_pool("li6ps5cl", tmp_path)
    assert again.fingerprint == pool.fingerprint
    assert json.loads((POOL_DIR / "li6ps5cl.json").read_text())["fingerprint"] == pool.fingerprint


def test_unknown_pool_names_the_known_ones():
    with pytest.raises(PoolError, match="li6ps5cl"):
        load_pool("lipon")


def test_build_pool_refuses_the_shipped_folder_unless_asked():
    with pytest.raises(BuildError, match="replace-shipped"):
        build_pool(POOL_DIR, cell_sizes=(1,), screen_size=None)


@pytest.mark.slow
def test_build_pool_survives_a_killed_worker(tmp_path):
    """build-pool on a two-worker LocalCluster; one worker is killed mid-run; the pool is complete and right."""
    from dask.distributed import Client, LocalCluster

    out = tmp_path / "pools"
    records = out / "li6ps5cl.relaxations.jsonl"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        built: dict = {}
        runner = threading.Thread(target=lambda: built.update(pool=build_pool(
            out, cell_sizes=(1,), screen_size=None, scheduler=cluster.scheduler_address,
            progress=False)))
        runner.start()
        deadline = time.time() + 300
        while time.time() < deadline and (not records.exists()
                                          or len(records.read_text().splitlines()) < 2):
            time.sleep(0.2)
        os.kill(pids[0], signal.SIGKILL)
        runner.join(timeout=600)
    assert not runner.is_alive() and "pool" in built
    small = load_pool("li6ps5cl", out)
    assert len(small) == 4 and small.reference["converged"].all()
    keys = [json.loads(line)["key"] for line in records.read_text().splitlines()[1:]]
    assert len(keys) == len(set(keys)) == 4
    for i in range(len(small)):
        assert abs(relax_structure(small.structure(i)).energy_per_atom - small.energies[i]) < 1e-6
