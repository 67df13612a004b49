"""Relaxed CHGNet energies: equal to CHGNet's own StructOptimizer, resumable, robust to killed workers.

The first tests, of settings and input, refuse before CHGNet is loaded and run fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Molecule, Structure

import almat
import almat.scoring
from almat.journal import CutLineWarning
from almat.oracles import OracleRefusal, RelaxedCHGNetOracle
from almat.parallel import RelaxationsInterrupted, read_relaxations, relax_many
from almat.pool_build import make_pool, shortest_distances
from almat.relaxation import (RelaxationsFileError, RelaxSettings, RelaxSettingsError, relax_structure,
                              settings_dict)
from almat.structures import StructureError


@pytest.fixture
def no_chgnet(monkeypatch):
    """Fail the test if CHGNet is loaded: refusals must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("CHGNet was loaded although the input should have been refused first")
    monkeypatch.setattr(almat.scoring, "load_chgnet", refuse)


@pytest.mark.parametrize("fmax", [float("nan"), -1, 0, 0.0, float("inf"), "0.05", True, None])
def test_force_thresholds_that_no_relaxation_can_meet_are_refused(fmax):
    with pytest.raises(RelaxSettingsError, match="fmax") as info:
        RelaxSettings(fmax=fmax)
    assert "\n" not in str(info.value) and "--fmax" in str(info.value)


@pytest.mark.parametrize("steps", [0, -5, 2.5, 20.0, "20", True])
def test_step_limits_that_are_not_whole_positive_numbers_are_refused(steps):
    with pytest.raises(RelaxSettingsError, match="steps") as info:
        RelaxSettings(steps=steps)
    assert "\n" not in str(info.value) and "--steps" in str(info.value)


@pytest.mark.parametrize("relax_cell", ["yes", 1, None])
def test_relax_cell_must_be_true_or_false(relax_cell):
    with pytest.raises(RelaxSettingsError, match="relax_cell"):
        RelaxSettings(relax_cell=relax_cell)


def test_numpy_settings_become_plain_numbers_for_the_records():
    settings = RelaxSettings(fmax=np.float32(0.5), steps=np.int64(20), relax_cell=np.bool_(False))
    assert settings_dict(settings) == {"fmax": 0.5, "steps": 20, "relax_cell": False}
    assert json.loads(json.dumps(settings_dict(settings))) == settings_dict(settings)
    assert settings == RelaxSettings(0.5, 20, False)


def _lattice():
    return Lattice.cubic(6.0)


@pytest.mark.parametrize("structure,words", [
    (lambda: Structure(_lattice(), ["Li", "Li"], [[0, 0, 0], [0.1 / 6, 0, 0]]), "0.100 Å apart"),
    (lambda: Structure(_lattice(), ["Li", "Cl"], [[0, 0, 0], [np.nan, 0.5, 0.5]]), "NaN"),
    (lambda: Molecule(["Li", "Cl"], [[0, 0, 0], [2.1, 0, 0]]), "not a Molecule"),
    (lambda: Structure(_lattice(), [{"Li": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
     "partially occupied"),
    (lambda: {"species": ["Li"]}, "not a dict"),
])
def test_relax_structure_refuses_nonsense_before_chgnet(no_chgnet, structure, words):
    with pytest.raises(StructureError, match=words) as info:
        relax_structure(structure())
    assert "\n" not in str(info.value) and "isolated" not in str(info.value)


@pytest.mark.parametrize("settings", [{"fmax": 0.05}, None])
def test_relax_structure_refuses_settings_that_are_not_relax_settings(no_chgnet, settings):
    structure = Structure(_lattice(), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(RelaxSettingsError, match="RelaxSettings"):
        relax_structure(structure, settings=settings)


@pytest.fixture(scope="module")
def allowed():
    """The 4 size-1 orderings with no Li-Li distance under 2 Å, by filtering all 48."""
    half = almat.set_occupancy(almat.load_parent(), 0.5)
    table = almat.enumerate_table(half, 1, 1)
    keep = np.flatnonzero(shortest_distances(table) >= 2.0)
    assert len(keep) == 4
    return table.subset(keep)


@pytest.mark.slow
def test_relax_structure_equals_struct_optimizer(allowed):
    from chgnet.model.dynamics import StructOptimizer

    structure = allowed.structure(0)
    before = structure.copy()
    steps = []
    ours = relax_structure(structure, on_step=lambda n, f: steps.append((n, f)))
    theirs = StructOptimizer(model=almat.load_chgnet()).relax(
        structure, fmax=0.05, steps=500, relax_cell=True, verbose=False)
    e = theirs["trajectory"].energies[-1] / len(structure)
    assert abs(ours.energy_per_atom - e) < 1e-6
    assert ours.converged and ours.steps == len(steps) - 1 == steps[-1][0]
    assert steps[-1][1] < 0.05 <= steps[0][1]
    assert np.allclose(ours.structure.lattice.matrix, theirs["final_structure"].lattice.matrix,
                       atol=1e-4)
    assert structure == before  # the input is left alone
    assert ours.energy_per_atom < ours.unrelaxed_energy_per_atom


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


@pytest.mark.slow
def test_killed_build_resumes_without_redoing(allowed, tmp_path):
    path = tmp_path / "relax.jsonl"
    script = textwrap.dedent(f"""
        import numpy as np, almat
        from almat.parallel import relax_many
        from almat.pool_build import shortest_distances
        if __name__ == "__main__":
            half = almat.set_occupancy(almat.load_parent(), 0.5)
            t = almat.enumerate_table(half, 1, 1)
            keep = np.flatnonzero(shortest_distances(t) >= 2.0)
            relax_many({{t.key(int(i)): t.structure(int(i)) for i in keep}}, {str(path)!r},
                       torch_threads=1, progress=False)
    """)
    (tmp_path / "build.py").write_text(script)
    proc = subprocess.Popen([sys.executable, "build.py"], cwd=tmp_path, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not path.exists() or len(_records(path)) < 1):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its Dask workers
    proc.wait()
    first = _records(path)
    assert 1 <= len(first) < 4
    subprocess.run([sys.executable, "build.py"], cwd=tmp_path, check=True, timeout=600)
    after = _records(path)
    assert after[: len(first)] == first  # finished work kept as it was
    keys = [r["key"] for r in after]
    assert len(keys) == len(set(keys)) == 4


@pytest.mark.slow
def test_relaxations_file_refuses_other_settings_and_skips_a_cut_line(allowed, tmp_path):
    path = tmp_path / "relax.jsonl"
    relax_many({allowed.key(1): allowed.structure(1)}, path, torch_threads=1, progress=False)
    with pytest.raises(RelaxationsFileError, match="fmax"):
        read_relaxations(path, RelaxSettings(fmax=0.1))
    with open(path, "a") as f:
        f.write('{"key": "cut sh')
    with pytest.warns(CutLineWarning, match="cut short"):
        assert list(read_relaxations(path, RelaxSettings())) == [allowed.key(1)]
    assert path.read_text().endswith("}\n")  # taken away, so that the next record starts a line
    other = tmp_path / "other.jsonl"
    other.write_text("key,energy\n")
    with pytest.raises(RelaxationsFileError, match="is not a relaxations file"):
        read_relaxations(other)


@pytest.mark.slow
def test_relaxed_oracle_caches_across_sessions_and_refuses_unconverged(allowed, tmp_path):
    pool = make_pool(allowed, name="size1-allowed")
    cache = tmp_path / "cache.jsonl"
    label = RelaxedCHGNetOracle(cache=cache).label(pool, 2)
    direct = relax_structure(pool.structure(2))
    assert abs(label.energy - direct.energy_per_atom) < 1e-6
    # A new process (a restarted kernel) answers from the file without relaxing.
    code = textwrap.dedent(f"""
        import almat, numpy as np
        import almat.relaxation as r
        from almat.oracles import RelaxedCHGNetOracle
        from almat.pool_build import make_pool, shortest_distances
        def refuse(*a, **k):
            raise AssertionError("relaxed again")
        r.relax_structure = refuse
        half = almat.set_occupancy(almat.load_parent(), 0.5)
        t = almat.enumerate_table(half, 1, 1)
        pool = make_pool(t.subset(np.flatnonzero(shortest_distances(t) >= 2.0)))
        print(repr(RelaxedCHGNetOracle(cache={str(cache)!r}).label(pool, 2).energy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout.strip().splitlines()[-1]) == label.energy
    with pytest.raises(OracleRefusal, match="did not reach fmax"):
        RelaxedCHGNetOracle(RelaxSettings(steps=2), cache=None).label(pool, 3)


def test_a_killed_scheduler_ends_the_build_in_one_line_and_keeps_what_finished(allowed, tmp_path):
    """A scheduler and a worker in their own processes; the scheduler is killed after the first result."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(almat.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                  "127.0.0.1", "--port", str(port), "--no-dashboard"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nthreads", "1", "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = tmp_path / "relax.jsonl"
    try:
        deadline = time.time() + 120
        while True:  # the scheduler is up once it answers
            try:
                almat.parallel.check_scheduler(address)
                break
            except almat.parallel.SchedulerError:
                assert time.time() < deadline, "the scheduler did not start"
        outcome = []

        def build():
            try:
                relax_many({allowed.key(i): allowed.structure(i) for i in range(4)}, path,
                           scheduler=address, progress=False)
                outcome.append("finished")
            except Exception as err:  # noqa: BLE001 - checked below
                outcome.append(err)

        runner = threading.Thread(target=build)
        runner.start()
        while time.time() < deadline and (not path.exists() or len(_records(path)) < 1):
            time.sleep(0.1)
        scheduler.kill()
        runner.join(timeout=120)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    assert not runner.is_alive() and len(outcome) == 1
    if outcome[0] == "finished":
        pytest.skip("every relaxation finished before the scheduler was killed")
    kept = len(read_relaxations(path, RelaxSettings()))
    assert isinstance(outcome[0], RelaxationsInterrupted), repr(outcome[0])
    assert str(outcome[0]).endswith(f"{kept} finished relaxations are kept in {path}; run the same command "
                                    "to resume.") and 1 <= kept < 4 and "\n" not in str(outcome[0])
