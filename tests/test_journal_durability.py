"""One durability suite for the journal, run against each of its users: labels, relaxations, scores.

Each trial acts as a user's processes would (forked from the test process,
so that they start in milliseconds) and then checks the journal's promises:

- every record a writer acknowledged (its call returned) is in the file exactly once;
- the file is readable by its user afterwards, with one header, every line whole;
- a cut last line is dropped, never appended onto, and writing goes on after it.

The users: a :class:`~almat.ledger.Ledger` labelling candidates (an exclusive
journal: a second writer is refused, never interleaved), the relaxed oracle's
cache (relaxations replaced by a stand-in that returns at once), and a score
cache (energies put directly).
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import sys
import time
import warnings

import numpy as np
import pytest

import almat.relaxation
from almat.enumeration import enumerate_table
from almat.journal import JournalError
from almat.labels import LabelsFileError
from almat.ledger import Ledger, Query
from almat.oracles import RelaxedCHGNetOracle
from almat.pool_build import make_pool
from almat.relaxation import Relaxation, RelaxSettings
from almat.scoring import ScoreCache, ScoreCacheWarning
from reliability_helpers import collect, fill_disk, forked

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="forks writing processes")

N = 48
ENERGIES = -4.30 + 0.15 * np.cos(np.arange(N) * 2.4 + 0.3)


def fake_relax(structure, model=None, settings=RelaxSettings(), on_step=None):
    """A relaxation stand-in: an energy that depends on the structure, at once."""
    energy = -4.3 - 1e-3 * float(np.mod(structure.frac_coords, 1.0).sum() % 10)
    return Relaxation(energy, energy + 0.02, 3, True, structure, 0.001)


class Labels:
    """Labels of a campaign, through a Ledger: an exclusive journal."""

    exclusive = True

    def __init__(self, pool):
        self.pool = pool

    def writer(self, path):
        return Ledger(self.pool, path)

    def write(self, writer, i: int) -> str:
        query = Query(i, self.pool.ids[i], 1, math.nan, math.nan, "manual", "durability trial")
        writer.add("label", query, by="trial", source="trial", energy=float(ENERGIES[i]))
        return self.pool.ids[i]

    def keys(self, path) -> list[str]:
        """Ids of the records in the file, read through the user (which must accept it)."""
        Ledger(self.pool, path)
        return [r["id"] for r in records(path)]


class Relaxations:
    """The relaxed oracle's cache: a shared journal of relaxation records."""

    exclusive = False

    def __init__(self, pool):
        self.pool = pool

    def writer(self, path):
        return RelaxedCHGNetOracle(cache=path)

    def write(self, writer, i: int) -> str:
        writer.label(self.pool, i)
        return self.pool.orderings.key(i)

    def keys(self, path) -> list[str]:
        RelaxedCHGNetOracle(cache=path)._cache(self.pool)
        return [r["key"] for r in records(path)]


class Scores:
    """A score cache: a shared journal of energies; a put that is not saved warns."""

    exclusive = False

    def __init__(self, pool):
        self.pool = pool

    def writer(self, path):
        return ScoreCache(path)

    def write(self, writer, i: int) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ScoreCacheWarning)  # not saved: not acknowledged
            writer.put("model", f"k{i}", {"e": float(ENERGIES[i])})
        return f"k{i}"

    def keys(self, path) -> list[str]:
        ScoreCache(path)
        return [r["key"] for r in records(path)]


USERS = {"labels": Labels, "relaxations": Relaxations, "scores": Scores}


def records(path) -> list[dict]:
    """The records of a file, checked by hand: one header first, every line whole and JSON."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the file ends inside a line"
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert lines[0].get("type") == "header" and all(r.get("type") != "header" for r in lines[1:])
    return [r for r in lines[1:] if r.get("type") != "strategy"]


@pytest.fixture(scope="module")
def pool(half):
    return make_pool(enumerate_table(half, max_cell_size=1), ENERGIES, name="size1")


@pytest.fixture(params=list(USERS))
def user(request, pool, monkeypatch):
    monkeypatch.setattr(almat.relaxation, "relax_structure", fake_relax)  # forked writers inherit it
    return USERS[request.param](pool)


def write_all(user, path, indices):
    """Work for a forked writer: write ``indices`` in order, acknowledging each key once written."""
    def work(ack):
        writer = user.writer(path)
        for i in indices:
            ack(user.write(writer, i))
    return work


def assert_kept_once(user, path, acknowledged):
    keys = user.keys(path)
    assert len(keys) == len(set(keys)), f"a record is in {path.name} twice"
    assert set(acknowledged) <= set(keys), f"acknowledged but lost: {set(acknowledged) - set(keys)}"
    return keys


# ------------------------------------------------------------------ kill -9
KILL_TRIALS = 8
PER_WRITER = 8


def test_kill_9_at_random_moments_loses_nothing_acknowledged(user, tmp_path):
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    assert collect(*forked(write_all(user, tmp_path / "timing", range(PER_WRITER))))[0] == 0
    duration = time.perf_counter() - start
    cut = 0
    for trial in range(KILL_TRIALS):
        path = tmp_path / f"kill-{trial}"
        pid, read = forked(write_all(user, path, range(PER_WRITER)))
        time.sleep(rng.uniform(0, duration))
        os.kill(pid, signal.SIGKILL)
        _, acks = collect(pid, read)
        assert not [a for a in acks if a.startswith("error")], acks
        if not path.exists() or not path.stat().st_size:
            assert not acks
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert_kept_once(user, path, acks)
        cut += any("cut short" in str(w.message) for w in caught)
        writer, done = user.writer(path), set(user.keys(path))  # resume: the rest
        for i in range(PER_WRITER):
            if key_of(user, i) not in done:
                user.write(writer, i)
        assert sorted(assert_kept_once(user, path, acks)) == sorted(key_of(user, i) for i in range(PER_WRITER))
    print(f"{type(user).__name__}: {KILL_TRIALS} kills, {cut} cut lines dropped")


# ------------------------------------------------------------------ two writers at once
def race_trials(user, tmp_path, trials):
    refused = 0
    for trial in range(trials):
        path = tmp_path / f"race-{trial}"
        start_at = time.monotonic() + 0.03
        shared = [40, 41] if not user.exclusive else [44 + 2 * trial % 4, 45 + 2 * trial % 4]
        mine = [[0, 1, 2, 3, shared[0]], [10, 11, 12, 13, shared[1]]]  # caches: both write 40 and 41
        if not user.exclusive:
            mine = [m + [shared[1]] for m in mine]

        def work(indices):
            def run(ack):
                while time.monotonic() < start_at:
                    pass
                try:
                    write_all(user, path, indices)(ack)
                except LabelsFileError as err:
                    ack(f"refused {err}")
            return run

        processes = [forked(work(indices)) for indices in mine]  # both start, then both are waited for
        runs = [collect(*process) for process in processes]
        lines = [line for _, out in runs for line in out]
        assert all(status == 0 for status, _ in runs) and not [a for a in lines if a.startswith("error")], runs
        refusals = [a for a in lines if a.startswith("refused")]
        assert all("changed since" in r for r in refusals), refusals
        assert not refusals or user.exclusive, "a shared journal refused a writer"
        refused += len(refusals)
        acks = [a for a in lines if not a.startswith("refused")]
        keys = assert_kept_once(user, path, acks)
        if not user.exclusive:
            assert sorted(keys) == sorted(set(acks)), "a record was written that nobody acknowledged"
    return refused


@pytest.mark.parametrize("trials", [100])
def test_two_writers_creating_and_appending_one_file_keep_every_record_once(user, tmp_path, trials):
    refused = race_trials(user, tmp_path, trials if not user.exclusive else 15)
    assert not user.exclusive or refused > 0  # the two did write at once, and one was refused


# ------------------------------------------------------------------ a cut last line
CUT_TRIALS = 100


def test_a_line_cut_by_a_crash_is_dropped_and_never_appended_onto(user, tmp_path):
    """A writer dies halfway through a line; one opened before it and a new one go on; all resume."""
    rng = np.random.default_rng(2)
    trials = CUT_TRIALS if not user.exclusive else 30
    for trial in range(trials):
        path = tmp_path / f"cut-{trial}"
        before = user.writer(path)  # a session that wrote to the file before the crash
        user.write(before, 0)
        real_write, fraction = os.write, rng.uniform(0.05, 0.95)

        def crash_mid_line(ack):
            writer = user.writer(path)
            user.write(writer, 1)
            ack("1")

            def dying_write(fd, data):  # some bytes reach the file, then the process dies
                real_write(fd, bytes(data)[: max(1, int(len(data) * fraction))])
                os.kill(os.getpid(), signal.SIGKILL)
            os.write = dying_write
            user.write(writer, 2)

        status, acks = collect(*forked(crash_mid_line))
        assert acks == ["1"] and os.WIFSIGNALED(status), acks
        assert not path.read_bytes().endswith(b"\n")  # the cut line is there
        if user.exclusive:
            with pytest.raises(LabelsFileError, match="changed since"):
                user.write(before, 21)
        else:
            with pytest.warns(UserWarning, match="cut short"):
                user.write(before, 3)  # the earlier session: catches up, drops the cut line, appends
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            after = user.writer(path)
        user.write(after, 4)
        assert user.exclusive == any("cut short" in str(w.message) for w in caught)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing left to repair
            keys = assert_kept_once(user, path, [])
        expected = [0, 1, 4] if user.exclusive else [0, 1, 3, 4]
        assert sorted(keys) == sorted(key_of(user, i) for i in expected), keys


def key_of(user, i):
    return {Labels: user.pool.ids[i], Relaxations: user.pool.orderings.key(i), Scores: f"k{i}"}[type(user)]


# ------------------------------------------------------------------ a full disk
def test_a_full_disk_acknowledges_nothing_it_did_not_save(user, tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    for trial in range(10):
        path = tmp_path / f"full-{trial}"
        writer = user.writer(path)
        user.write(writer, 0)
        before = path.read_bytes()
        fill_disk(monkeypatch, room=int(rng.integers(0, 90)))  # less than a record
        with pytest.raises((JournalError, ScoreCacheWarning),
                           match=f"{re.escape(str(path))}.*(No space left|only [0-9]+ of)"):
            with warnings.catch_warnings():
                warnings.simplefilter("error", ScoreCacheWarning)
                user.write(writer, 1)
        monkeypatch.undo()
        monkeypatch.setattr(almat.relaxation, "relax_structure", fake_relax)
        assert path.read_bytes() == before  # the part that fitted was taken back
        user.write(writer, 1)  # space was freed: the same writer goes on
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert sorted(user.keys(path)) == sorted([key_of(user, 0), key_of(user, 1)])


def test_a_file_size_limit_ulimit_f_acknowledges_nothing_it_did_not_save(user, tmp_path):
    """A real limit (``ulimit -f``, RLIMIT_FSIZE) in the writing process: a write past it fails."""
    probe = tmp_path / "probe"
    user.write(user.writer(probe), 47)
    one = probe.stat().st_size  # the header and one record
    for trial, limit in enumerate([one // 2, one + 10, 2 * one, int(3.3 * one)]):
        path = tmp_path / f"limit-{trial}"

        def limited(ack):
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", ScoreCacheWarning)
                    writer = user.writer(path)
                    for i in range(PER_WRITER):
                        ack(user.write(writer, i))
            except (JournalError, ScoreCacheWarning) as err:
                ack(f"refused {err}")

        _, lines = collect(*forked(limited))
        assert not [a for a in lines if a.startswith("error")], lines
        refusals = [a for a in lines if a.startswith("refused")]
        assert len(refusals) == 1 and str(path) in refusals[0], lines
        assert re.search("File too large|only [0-9]+ of [0-9]+ bytes", refusals[0]), refusals
        acks = [a for a in lines if not a.startswith("refused")]
        assert path.stat().st_size <= limit
        if path.stat().st_size:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # nothing half-written was left behind
                assert sorted(user.keys(path)) == sorted(acks)
        else:
            assert not acks
