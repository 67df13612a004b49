"""The ledger on its own: events, books, undo and replay, with no surrogate anywhere."""

import ast
import json
import math
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import almat
from almat.enumeration import enumerate_table
from almat.ledger import CampaignError, LabelError, Ledger, Query, StaleQueryError
from almat.pool_build import make_pool

N = 48


@pytest.fixture(scope="module")
def pool(half):
    return make_pool(enumerate_table(half, max_cell_size=1), np.linspace(-4.4, -4.2, N), name="size1")


def pick(pool, index, strategy="manual"):
    return Query(index, pool.ids[index], 1, math.nan, math.nan, strategy, "chosen by hand")


def test_the_ledger_imports_nothing_of_surrogates_acquisition_or_campaigns():
    tree = ast.parse((Path(almat.__file__).parent / "ledger.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {m for m in imported if m.startswith("almat.")} <= {"almat.batch_book", "almat.errors", "almat.labels",
                                                                 "almat.pool"}


def test_books_follow_labels_skips_and_undos_and_a_replay_gives_the_same(pool, tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(pool, path, seed=3)
    ledger.add("label", pick(pool, 5), by="human", source="human", energy="-4.30")
    ledger.add("skip", pick(pool, 7), by="human", source="human", reason="did not converge")
    ledger.add("label", pick(pool, 2), by="table", source="table", energy=-4.35)
    with pytest.raises(LabelError, match="already has the label"):
        ledger.add("label", pick(pool, 5), by="human", source="human", energy=-4.3)
    with pytest.raises(CampaignError, match="skipped already"):
        ledger.add("skip", pick(pool, 7), by="human", source="human", reason="again")
    row = ledger.undo()
    assert row["event"] == "undo" and row["undoes"] == 3
    assert ledger.labelled_indices().tolist() == [5] and ledger.labelled_energies().tolist() == [-4.3]
    assert ledger.n_skipped == 1 and np.flatnonzero(ledger.taken()).tolist() == [5, 7]
    assert ledger.best()["index"] == 5 and ledger.best_so_far()["best"].tolist() == [-4.3]
    assert [json.loads(line)["type"] for line in path.read_text().splitlines()] == \
        ["header", "label", "skip", "label", "undo"]
    again = Ledger(pool, path, seed=3)
    pd.testing.assert_frame_equal(again.history, ledger.history)
    pd.testing.assert_frame_equal(again.labelled, ledger.labelled)
    pd.testing.assert_frame_equal(again.skipped, ledger.skipped)


def test_threads_recording_at_once_get_consecutive_steps_and_the_file_replays(pool, tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(pool, path)
    n_threads = 6
    start, failures = threading.Barrier(n_threads), []

    def work(first):
        start.wait()
        try:
            for index in range(first, N, n_threads):  # each thread labels candidates of its own
                ledger.add("label", pick(pool, index), by="thread", source="thread", energy=-4.3 - index / 1000)
                if index % 5 == 0:
                    ledger.record_strategy(f"s{index}")
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert ledger.history["step"].tolist() == list(range(1, N + 1))
    assert sorted(ledger.labelled_indices().tolist()) == list(range(N))
    again = Ledger(pool, path)
    pd.testing.assert_frame_equal(again.history, ledger.history)
    assert again.strategy == ledger.strategy


def test_a_suggestion_made_before_the_latest_event_is_refused_and_nothing_recorded(pool, tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(pool, path)
    shown = replace(pick(pool, 3, "lcb"), n_events=0)  # what the app showed before step 1
    ledger.add("label", pick(pool, 5), by="human", source="human", energy=-4.3)  # by hand: any state
    content = path.read_bytes()
    for kind in ("label", "skip"):
        with pytest.raises(StaleQueryError, match=fr"moved on \(step 1 labelled {pool.ids[5]}\), so "
                                                  f"this {kind} of {pool.ids[3]} is not recorded"):
            ledger.add(kind, shown, by="human", source="human", energy=-4.2, reason="no")
    assert path.read_bytes() == content and ledger.n_labels == 1 and ledger.n_skipped == 0
    ledger.add("label", replace(shown, n_events=1), by="human", source="human", energy=-4.2)
    assert ledger.labelled_indices().tolist() == [5, 3]


def test_two_threads_submitting_the_shown_candidate_record_it_once(pool, tmp_path):
    """The app's two clicks at once: both hold the suggestion made at the same state; one is refused."""
    for trial in range(10):
        ledger = Ledger(pool, tmp_path / f"race-{trial}.jsonl")
        shown = replace(pick(pool, 7, "lcb"), n_events=0)
        start, outcomes = threading.Barrier(2), []

        def submit(value):
            start.wait()
            try:
                outcomes.append(ledger.add("label", shown, by="human", source="human", energy=value)["step"])
            except StaleQueryError:
                outcomes.append("stale")
            except LabelError:
                outcomes.append("labelled")

        threads = [threading.Thread(target=submit, args=(v,)) for v in (-4.3, -4.2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes, key=str) == [1, "stale"], outcomes
        assert Ledger(pool, ledger.path).history["step"].tolist() == [1]
