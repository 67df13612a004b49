"""The labels file under faults: kill -9, two writers, a full disk, read-only targets.

Each test acts as a user's kernel would and then checks the promise of the
labels file: every label a campaign acknowledged (``step()`` returned) is in
the file once, and the file loads. Labelling processes are forked from the
test process, so that they start in milliseconds with the pool and features
already built; the labels come from a :class:`~almat.oracles.TableOracle`.
"""

import errno
import json
import os
import signal
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import almat.ledger
from almat.campaign import Campaign
from almat.enumeration import enumerate_table
from almat.labels import LabelsFileError, LabelsFileWriteError, TruncatedLabelsWarning
from almat.ledger import Ledger
from almat.oracles import TableOracle
from almat.pool_build import make_pool
from reliability_helpers import collect, forked

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="forks labelling processes")

N = 48
ENERGIES = -4.30 + 0.15 * np.cos(np.arange(N) * 2.4 + 0.3)
#: Candidates the oracle refuses, so that runs hold skips as well as labels.
REFUSED = np.arange(N) % 7 == 3
BUDGET = 24
#: Number of events after which the run switches strategy (as a learner might in the widget).
SWITCH_AT = 12
COLUMNS = ["step", "event", "index", "strategy", "energy", "labelled_by", "reason"]


@pytest.fixture(scope="module")
def pool(half):
    return make_pool(enumerate_table(half, max_cell_size=1), ENERGIES, name="size1")


@pytest.fixture(scope="module")
def features(pool):
    from almat.features import ClusterVectorFeaturizer

    return ClusterVectorFeaturizer(pool.orderings.parent).transform(pool)


def campaign(pool, features, path=None):
    return Campaign(pool, TableOracle(np.where(REFUSED, np.nan, ENERGIES)), strategy="lcb", seed=1,
                    ledger_path=path, features=features, n_initial=4, budget=BUDGET)


def drive(c, acknowledge=lambda row: None):
    """Label until the budget is spent, switching to greedy after SWITCH_AT events."""
    while not c.done:
        if len(c.history) >= SWITCH_AT and c.strategy != "greedy":
            c.set_strategy("greedy")
        acknowledge(c.step())


def ack_row(row):
    return json.dumps({"step": int(row["step"]), "event": row["event"], "index": int(row["index"]),
                       "energy": None if pd.isna(row["energy"]) else float(row["energy"])})


def assert_acknowledged_are_recorded(acks, history):
    """Every acknowledged event is in the history, at its step, exactly as acknowledged."""
    for ack in map(json.loads, acks):
        row = history.loc[ack["step"] - 1]
        assert (row["event"], int(row["index"])) == (ack["event"], ack["index"]), ack
        assert (pd.isna(row["energy"]) and ack["energy"] is None) or row["energy"] == ack["energy"], ack


@pytest.fixture(scope="module")
def uninterrupted(pool, features):
    c = campaign(pool, features)
    drive(c)
    return c.history


def kill_trials(pool, features, uninterrupted, tmp_path, trials, seed):
    """Kill a labelling process at random times; resume each file and compare with the uninterrupted run."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    status, _ = collect(*forked(lambda ack: drive(campaign(pool, features, tmp_path / "timing.jsonl"))))
    assert status == 0
    duration = time.perf_counter() - start
    outcome = {"trials": trials, "acknowledged": 0, "lost": 0, "duplicated": 0, "unreadable": 0,
               "cut_lines": 0, "finished_before_kill": 0, "no_file": 0}
    for trial in range(trials):
        path = tmp_path / f"kill-{trial}.jsonl"
        pid, read = forked(lambda ack: drive(campaign(pool, features, path), lambda row: ack(ack_row(row))))
        time.sleep(rng.uniform(0, duration))
        os.kill(pid, signal.SIGKILL)
        status, acks = collect(pid, read)
        assert not [a for a in acks if a.startswith("error")], acks
        outcome["finished_before_kill"] += status == 0
        outcome["acknowledged"] += len(acks)
        if not path.exists() or path.stat().st_size == 0:
            outcome["no_file"] += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                resumed = campaign(pool, features, path)
            except LabelsFileError:
                outcome["unreadable"] += 1
                continue
        outcome["cut_lines"] += any(issubclass(w.category, TruncatedLabelsWarning) for w in caught)
        history = resumed.history
        steps = {json.loads(a)["step"] for a in acks}
        outcome["lost"] += len(steps - set(history["step"]))
        assert_acknowledged_are_recorded([a for a in acks if json.loads(a)["step"] in set(history["step"])],
                                         history)
        outcome["duplicated"] += int(history["index"].duplicated().sum())
        drive(resumed)
        pd.testing.assert_frame_equal(resumed.history[COLUMNS], uninterrupted[COLUMNS])
        np.testing.assert_allclose(resumed.history["mu"], uninterrupted["mu"], rtol=1e-10)
    return outcome


def test_kill_9_while_labelling_loses_nothing_acknowledged(pool, features, uninterrupted, tmp_path):
    outcome = kill_trials(pool, features, uninterrupted, tmp_path, trials=4, seed=0)
    assert outcome["lost"] == outcome["duplicated"] == outcome["unreadable"] == 0, outcome


@pytest.mark.slow
def test_kill_9_at_random_times_many_trials(pool, features, uninterrupted, tmp_path):
    outcome = kill_trials(pool, features, uninterrupted, tmp_path, trials=30, seed=1)
    print(outcome)
    assert outcome["lost"] == outcome["duplicated"] == outcome["unreadable"] == 0, outcome
    assert outcome["acknowledged"] > 0 and outcome["finished_before_kill"] < outcome["trials"], outcome


#: Steps each racing process tries to record.
RACE_STEPS = 6


def race(pool, features, path, start_at):
    """Create or open the file at ``start_at`` and label; returns what the process acknowledged."""
    def work(ack):
        while time.monotonic() < start_at:
            pass
        try:
            c = campaign(pool, features, path)
            for _ in range(RACE_STEPS):
                ack(ack_row(c.step()))
        except LabelsFileError as err:
            ack(f"refused {err}")
    return forked(work)


@pytest.mark.parametrize("trials", [15])
def test_two_processes_creating_and_appending_one_file_never_interleave(pool, features, tmp_path, trials):
    refused = 0
    for trial in range(trials):
        path = tmp_path / f"race-{trial}.jsonl"
        start_at = time.monotonic() + 0.05  # both forked by then, then both start at once
        runs = [collect(*p) for p in [race(pool, features, path, start_at), race(pool, features, path, start_at)]]
        acks = [a for _, lines in runs for a in lines if a.startswith("{")]
        refusals = [a for _, lines in runs for a in lines if a.startswith("refused")]
        assert all(status == 0 for status, _ in runs), runs
        assert all("changed since" in r for r in refusals), refusals
        refused += len(refusals)
        text = path.read_text().splitlines()
        assert [json.loads(t)["type"] for t in text].count("header") == 1, f"trial {trial}: two headers"
        history = Ledger(pool, path, seed=1).history  # loads: one header, consecutive steps
        steps = [json.loads(a)["step"] for a in acks]
        assert len(steps) == len(set(steps)), f"trial {trial}: both processes acknowledged one step"
        assert sorted(steps) == history["step"].tolist()  # every line written was acknowledged once
        assert_acknowledged_are_recorded(acks, history)
    assert refused > 0  # the processes did write at the same time, and one was refused


class CountingOracle(TableOracle):
    """The table's energies, counting the calls: the work a refusal must come before."""

    calls = 0

    def label(self, pool, index):
        CountingOracle.calls += 1
        return super().label(pool, index)


def failing(path, fault, real):
    """A stand-in for ``os.write`` or ``os.fsync`` that fails the way a full disk does, on ``path`` only."""
    def ours(fd):
        return path.exists() and os.fstat(fd).st_ino == path.stat().st_ino

    def write(fd, data):
        if ours(fd) and fault == "write":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if ours(fd) and fault == "short write":  # some bytes fit, then the disk is full
            return real(fd, data[: len(data) // 2])
        return real(fd, data)

    def fsync(fd):
        if ours(fd) and fault == "fsync":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    return fsync if real is os.fsync else write


@pytest.mark.parametrize("fault", ["write", "short write", "fsync"])
def test_a_full_disk_acknowledges_nothing_that_is_not_on_disk(pool, features, tmp_path, monkeypatch, fault):
    path = tmp_path / "labels.jsonl"
    c = campaign(pool, features, path)
    c.run(5)
    before, history = path.read_bytes(), c.history
    free = int(np.flatnonzero(~c.ledger.taken())[0])
    monkeypatch.setattr(almat.ledger.os, "write", failing(path, fault, os.write))
    monkeypatch.setattr(almat.ledger.os, "fsync", failing(path, fault, os.fsync))
    for action in (c.step, lambda: c.submit(-4.3, index=free), lambda: c.skip("no", index=free), c.undo,
                   lambda: c.set_strategy("greedy")):
        with pytest.raises(LabelsFileWriteError, match="No space left|only [0-9]+ of"):
            action()
        assert path.read_bytes() == before  # a half-written line was taken back
    pd.testing.assert_frame_equal(c.history, history)
    assert c.strategy == "lcb"
    monkeypatch.undo()  # space was freed: the same campaign goes on
    c.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no repair needed
        again = campaign(pool, features, path)
    pd.testing.assert_frame_equal(again.history, c.history)


def test_a_full_disk_while_the_header_is_written_leaves_an_empty_file_that_starts_afresh(
        pool, features, tmp_path, monkeypatch):
    path = tmp_path / "labels.jsonl"
    monkeypatch.setattr(almat.ledger.os, "write", failing(path, "short write", os.write))
    with pytest.raises(LabelsFileWriteError):
        campaign(pool, features, path)
    assert path.read_bytes() == b""
    monkeypatch.undo()
    c = campaign(pool, features, path)
    c.run(2)
    assert [json.loads(line)["type"] for line in path.read_text().splitlines()] == ["header", "label", "label"]


def refused_before_work(pool, features, path):
    """Create a campaign on ``path`` and label; returns the error's text and the oracle calls made."""
    CountingOracle.calls = 0
    try:
        Campaign(pool, CountingOracle(), ledger_path=path, features=features, n_initial=2).run(3)
    except LabelsFileWriteError as err:
        return str(err), CountingOracle.calls
    return None, CountingOracle.calls


@pytest.fixture
def shared_dir():
    """A folder others may enter (pytest's tmp_path is private to its owner)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="almat-readonly-")
    os.chmod(folder, 0o755)
    yield folder
    for root, dirs, _ in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(folder)


def test_read_only_targets_are_refused_before_any_work(pool, features, shared_dir):
    """A read-only labels file, and a new file in a read-only folder, for real.

    Root may write to any file whatever its mode, so when the tests run as root
    the campaigns are created in a forked process that has become ``nobody``.
    """
    from pathlib import Path

    folder = Path(shared_dir)
    existing = folder / "done.jsonl"
    campaign(pool, features, existing).run(3)
    content = existing.read_bytes()
    existing.chmod(0o444)
    locked = folder / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)

    def check(report):
        for path in (existing, locked / "new.jsonl"):
            message, calls = refused_before_work(pool, features, path)
            report(json.dumps([str(path), message, calls]))

    if os.geteuid() == 0:
        def as_nobody(report):
            os.setgid(65534)
            os.setuid(65534)
            check(report)
        status, lines = collect(*forked(as_nobody))
        assert status == 0, lines
    else:
        lines = []
        check(lines.append)
    for line in lines:
        path, message, calls = json.loads(line)
        assert message is not None and "Permission denied" in message and path in message, line
        assert calls == 0, f"the oracle was asked {calls} times before the refusal"
    assert existing.read_bytes() == content and not (locked / "new.jsonl").exists()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_file_system_that_refuses_writing_is_refused_before_any_work(pool, features, tmp_path,
                                                                       monkeypatch, code):
    """A read-only mount cannot be made in a test: its refusal (EROFS) is simulated at ``os.open``."""
    path = tmp_path / "labels.jsonl"
    campaign(pool, features, path).run(2)
    real_open = os.open

    def refusing_open(file, flags, *args, **kwargs):
        if os.fspath(file) == os.fspath(path) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(code, os.strerror(code), os.fspath(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(almat.ledger.os, "open", refusing_open)
    message, calls = refused_before_work(pool, features, path)
    assert message is not None and os.strerror(code) in message and calls == 0
