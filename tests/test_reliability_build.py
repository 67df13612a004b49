"""Probes of ``almat build-pool``: bad options and folders are refused before any work, nothing is
overwritten, unconverged relaxations are not energies, and a killed build resumes to the same pool.

Most tests stop the build before it could enumerate or relax (``no_work``); the few that relax
with CHGNet use the smallest build and are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import files_in, fill_disk

import almat.parallel
import almat.pool
import almat.pool_build
import almat.scoring
from almat.cli import main
from almat.oracles import OracleRefusal, TableOracle
from almat.pool import POOL_DIR, load_pool
from almat.pool_build import BuildError, UnconvergedWarning, build_plan, build_pool, claim_folder
from almat.relaxation import RelaxSettings

#: The smallest build that converges: the 4 allowed orderings of cell size 1, atoms only.
SMALL = ["--cell-sizes", "1", "--no-screen", "--fixed-cell", "--fmax", "0.1", "--steps", "200",
         "--workers", "1"]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the build gets as far as enumerating or relaxing."""
    def refuse(*args, **kwargs):
        raise AssertionError("the build started its work although it should have refused first")
    monkeypatch.setattr(almat.pool_build, "allowed_orderings", refuse)
    monkeypatch.setattr(almat.parallel, "relax_many", refuse)


def refused(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("almat build-pool: "), err
    for word in words:
        assert word in err, err
    return err


def shipped_files() -> dict[str, bytes]:
    return files_in(POOL_DIR)


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("options,words", [
    (["--threads", "0"], ["--threads", "not 0"]),
    (["--workers", "0"], ["--workers", "not 0"]),
    (["--workers", "-2"], ["--workers"]),
    (["--screen-sample", "0"], ["--screen-sample", "not 0"]),
    (["--screen-size", "0"], ["--screen-size", "not 0"]),
    (["--screen-size", "5"], ["--screen-size", "too many to enumerate"]),
    (["--cell-sizes", "0"], ["--cell-sizes"]),
    (["--cell-sizes", "1", "7"], ["--cell-sizes", "too many to enumerate"]),
    (["--min-distance", "nan"], ["--min-distance", "nan"]),
    (["--min-distance", "-1"], ["--min-distance"]),
    (["--cell-sizes", "1", "--min-distance", "10"], ["no ordering", "lower --min-distance"]),
    (["--seed", "-1"], ["--seed"]),
    (["--fmax", "nan"], ["fmax", "--fmax 0.05"]),
    (["--fmax", "-1"], ["fmax"]),
    (["--fmax", "0"], ["fmax"]),
    (["--fmax", "inf"], ["fmax"]),
    (["--steps", "0"], ["steps", "--steps 500"]),
    (["--steps", "-5"], ["steps"]),
])
def test_bad_options_end_in_one_line_before_any_work(tmp_path, capsys, no_work, options, words):
    out = tmp_path / "pools"
    start = time.perf_counter()
    assert main(["build-pool", "--out", str(out), *options]) == 2
    message = refused(capsys, *words)
    assert "--limit" not in message and "max_rows" not in message  # options build-pool does not have
    assert not out.exists()  # nothing claimed
    assert time.perf_counter() - start < 30


def test_the_api_checks_the_same_options(no_work, tmp_path):
    with pytest.raises(BuildError, match="--workers"):
        build_pool(tmp_path, n_workers=0)
    with pytest.raises(BuildError, match="--cell-sizes"):
        build_pool(tmp_path, cell_sizes=[])
    with pytest.raises(BuildError, match="RelaxSettings"):
        build_pool(tmp_path, settings={"fmax": 0.05})
    assert build_plan(cell_sizes=np.array([2, 1, 2]), screen_size=None)["li6ps5cl"]["cell_sizes"] == [1, 2]


# ---------------------------------------------------------------- the shipped folder
def _spellings(tmp_path: Path) -> dict[str, str]:
    link = tmp_path / "link"
    link.symlink_to(POOL_DIR, target_is_directory=True)
    return {"absolute": str(POOL_DIR), "relative": os.path.relpath(POOL_DIR),
            "dot-dot": str(POOL_DIR / ".." / "pools"), "symlink": str(link)}


@pytest.mark.parametrize("spelling", ["absolute", "relative", "dot-dot", "symlink"])
def test_the_shipped_folder_needs_replace_shipped(tmp_path, capsys, no_work, spelling):
    before = shipped_files()
    assert main(["build-pool", "--out", _spellings(tmp_path)[spelling]]) == 2
    refused(capsys, "--replace-shipped", "labels files")
    assert shipped_files() == before


def test_replace_shipped_with_out_is_refused(tmp_path, capsys, no_work):
    before = shipped_files()
    assert main(["build-pool", "--replace-shipped", "--out", str(tmp_path / "p")]) == 2
    refused(capsys, "--replace-shipped", "--out", "give one of the two")
    assert shipped_files() == before and not (tmp_path / "p").exists()


def test_replace_shipped_in_the_api_names_only_the_shipped_folder(tmp_path, no_work):
    with pytest.raises(BuildError, match="replace_shipped"):
        build_pool(tmp_path, replace_shipped=True)


# ---------------------------------------------------------------- the output folder
def _claimed(folder: Path, **options) -> Path:
    """``folder`` as an earlier build with ``options`` left it when it was killed at once."""
    claim_folder(folder, build_plan(**options))
    return folder


def test_a_folder_of_a_build_with_other_options_is_refused_and_left_alone(tmp_path, capsys, no_work):
    out = _claimed(tmp_path / "pools", cell_sizes=[1], min_distance=1.0, screen_size=None)
    (out / "li6ps5cl.relaxations.jsonl").write_text("relaxations of the 1.0 Å build\n")
    before = files_in(out)
    assert main(["build-pool", "--out", str(out), "--cell-sizes", "1", "--no-screen"]) == 2
    refused(capsys, "min_distance 1.0 (this build: 2.0)", "another --out")
    assert files_in(out) == before


def test_a_finished_pool_of_other_options_is_refused(tmp_path, capsys, no_work):
    out = tmp_path / "pools"
    shutil.copytree(POOL_DIR, out)
    before = files_in(out)
    assert main(["build-pool", "--out", str(out), "--cell-sizes", "1"]) == 2
    refused(capsys, "cell_sizes [1, 2] (this build: [1])")
    assert main(["build-pool", "--out", str(out), "--screen-sample", "100"]) == 2
    refused(capsys, "li6ps5cl-size3", "sample 2000 (this build: 100)")
    assert files_in(out) == before


@pytest.mark.parametrize("name,content", [("li6ps5cl.csv", "id,energy\nmine,-1\n"),
                                          ("li6ps5cl.json", '{"my": "notes"}'),
                                          ("li6ps5cl.relaxations.jsonl", "my own lines\n"),
                                          ("notes.txt", "mine")])
def test_a_users_own_file_is_refused_not_overwritten(tmp_path, capsys, no_work, name, content):
    out = tmp_path / "pools"
    out.mkdir()
    (out / name).write_text(content)
    assert main(["build-pool", "--out", str(out), "--cell-sizes", "1", "--no-screen"]) == 2
    refused(capsys, name, "not empty", "Choose a new or empty folder")
    assert files_in(out) == {name: content.encode()}


def test_files_of_a_pool_this_build_does_not_write_are_refused(tmp_path, capsys, no_work):
    out = tmp_path / "pools"
    shutil.copytree(POOL_DIR, out)
    assert main(["build-pool", "--out", str(out), "--no-screen"]) == 2
    refused(capsys, "li6ps5cl-size3")


def test_a_file_for_a_folder_is_refused(tmp_path, capsys, no_work):
    (tmp_path / "pools").write_text("x")
    assert main(["build-pool", "--out", str(tmp_path / "pools")]) == 2
    refused(capsys, "is a file")


def test_the_same_build_is_recognised_with_almats_temporary_files(tmp_path, monkeypatch):
    """A folder of the same build, killed while a file was being written, is taken up again."""
    out = _claimed(tmp_path / "pools", cell_sizes=[1], screen_size=None)
    (out / ".almat-li6ps5cl.csv.x1y2.part").write_text("cut")  # write_atomic's temporary file
    reached = []

    def stop(*args, **kwargs):
        reached.append(True)
        raise KeyboardInterrupt
    monkeypatch.setattr(almat.parallel, "relax_many", stop)
    assert main(["build-pool", "--out", str(out), "--cell-sizes", "1", "--no-screen"]) == 130
    assert reached


def test_a_claimed_but_unfinished_pool_says_how_to_finish_it(tmp_path):
    out = _claimed(tmp_path / "pools", cell_sizes=[1], screen_size=None)
    with pytest.raises(almat.pool.PoolError, match="not finished"):
        load_pool("li6ps5cl", out)


# ---------------------------------------------------------------- rebuilding the shipped pool
@pytest.mark.slow
def test_the_shipped_pool_rebuilds_from_its_relaxations_to_the_same_fingerprint(tmp_path, monkeypatch):
    """Every relaxation is in the shipped file, so the build relaxes nothing and scores nothing."""
    out = tmp_path / "pools"
    shutil.copytree(POOL_DIR, out)
    monkeypatch.setattr(almat.scoring, "score_structures", lambda *a, **k: pytest.fail("scored again"))
    pool = build_pool(out, progress=False)
    shipped = load_pool()
    assert pool.fingerprint == load_pool("li6ps5cl", out).fingerprint == shipped.fingerprint
    assert (out / "li6ps5cl.csv").read_bytes() == (POOL_DIR / "li6ps5cl.csv").read_bytes()
    assert files_in(out)["li6ps5cl-size3.npz"] == (POOL_DIR / "li6ps5cl-size3.npz").read_bytes()


# ---------------------------------------------------------------- CHGNet: convergence, kill -9
@pytest.mark.slow
def test_unconverged_relaxations_are_not_energies(tmp_path, capsys):
    out = tmp_path / "pools"
    code = main(["build-pool", "--out", str(out), "--cell-sizes", "1", "--no-screen", "--steps", "2",
                 "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "4 of 4 relaxations did not reach fmax 0.05" in err and "--steps" in err, err
    pool = load_pool("li6ps5cl", out)
    ref = pool.reference
    assert ref["energy_per_atom"].isna().all() and not ref["converged"].any()
    assert (ref["relax_steps"] == 2).all() and np.isfinite(ref["unrelaxed_energy_per_atom"]).all()
    with pytest.raises(OracleRefusal, match="no finite energy"):
        TableOracle().label(pool, 0)


def test_the_unconverged_warning_is_a_warning_of_the_api(tmp_path, monkeypatch):
    from almat.relaxation import Relaxation

    def fake_relax_many(structures, path, settings, **kwargs):  # as relax_many returns them
        return {k: Relaxation(-4.0, -3.9, settings.steps, k.endswith("1"), s, 0.1)
                for k, s in structures.items()}
    monkeypatch.setattr(almat.parallel, "relax_many", fake_relax_many)
    monkeypatch.setattr(almat.pool_build, "provenance_versions", lambda: {})
    with pytest.warns(UnconvergedWarning, match="of 4 relaxations did not reach fmax"):
        pool = build_pool(tmp_path / "p", cell_sizes=[1], screen_size=None,
                          settings=RelaxSettings(steps=3), progress=False)
    converged = pool.reference["converged"].to_numpy()
    assert 0 < converged.sum() < 4
    assert np.array_equal(np.isnan(pool.energies), ~converged)


def _build(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "almat.cli", "build-pool", "--out", str(out), *SMALL],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its Dask workers
    proc.wait()


def _records(path: Path) -> int:
    return max(len(path.read_text().splitlines()) - 1, 0) if path.exists() else 0


def _pool_files(out: Path) -> dict[str, object]:
    info = json.loads((out / "li6ps5cl.json").read_text())
    info.pop("created")
    return {"npz": (out / "li6ps5cl.npz").read_bytes(), "csv": (out / "li6ps5cl.csv").read_bytes(),
            "json": info}


@pytest.mark.slow
def test_a_killed_or_failed_build_resumes_to_the_same_pool(tmp_path, monkeypatch, capsys):
    """SIGKILL just after the folder is claimed, then after the first relaxation, each resumed; a
    full disk while the pool is saved, resumed: each gives the pool of an uninterrupted build."""
    reference = tmp_path / "uninterrupted"
    whole = _build(reference)
    assert whole.wait(timeout=900) == 0, whole.stderr.read().decode()

    out = tmp_path / "killed"
    relaxations = out / "li6ps5cl.relaxations.jsonl"
    _kill_when(_build(out), lambda: (out / "li6ps5cl.json").exists())
    assert not (out / "li6ps5cl.npz").exists()
    _kill_when(_build(out), lambda: _records(relaxations) >= 1)
    assert 1 <= _records(relaxations) < 4, "killed too late to test a resume mid-way"
    resumed = _build(out)
    assert resumed.wait(timeout=900) == 0, resumed.stderr.read().decode()
    assert _pool_files(out) == _pool_files(reference)
    keys = [json.loads(line)["key"] for line in relaxations.read_text().splitlines()[1:]]
    assert len(keys) == len(set(keys)) == 4

    failed = tmp_path / "full-disk"  # claimed, every relaxation done: the disk fills while saving
    _claimed(failed, cell_sizes=[1], screen_size=None, settings=RelaxSettings(0.1, 200, False))
    shutil.copy(reference / "li6ps5cl.relaxations.jsonl", failed)
    fill_disk(monkeypatch, room=len(_pool_files(reference)["npz"]) + 100)  # the table fits, not the CSV
    assert main(["build-pool", "--out", str(failed), *SMALL]) == 2
    assert "disk is full" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["build-pool", "--out", str(failed), *SMALL]) == 0
    assert _pool_files(failed) == _pool_files(reference)
