"""The ledger on its own: events, books, undo and replay, with no surrogate anywhere."""

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import almat
from almat.enumeration import enumerate_table
from almat.ledger import CampaignError, LabelError, Ledger, Query
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
    assert {m for m in imported if m.startswith("almat.")} <= {"almat.errors", "almat.pool"}


def test_books_follow_labels_skips_and_undos_and_a_replay_gives_the_same(pool, tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(pool, path, seed=3)
    ledger.add("label", pick(pool, 5), by="human", source="human", label="-4.30")
    ledger.add("skip", pick(pool, 7), by="human", source="human", reason="did not converge")
    ledger.add("label", pick(pool, 2), by="table", source="table", label=-4.35)
    with pytest.raises(LabelError, match="already has the label"):
        ledger.add("label", pick(pool, 5), by="human", source="human", label=-4.3)
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
