"""Batches: k picks per round, labelled on Dask, and nothing lost or labelled twice when a round is killed.

The campaigns run on the shipped pool and its relaxed CHGNet energies
(:class:`~almat.oracles.TableOracle`). Reference results come from a
campaign labelled one by one in this process, uninterrupted; the batch
campaigns are labelled on a two-worker ``LocalCluster`` on 127.0.0.1, where a
worker, or the campaign's own process, is killed mid-round.
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
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import BayesianRidge

from almat.batches import BatchError, check_batch
from almat.campaign import Campaign
from almat.features import ClusterVectorFeaturizer
from almat.labels import TruncatedLabelsWarning
from almat.ledger import CampaignError, StaleQueryError
from almat.oracles import TableOracle
from almat.parallel import SchedulerError, local_cluster
from almat.pool import load_pool
from almat.surrogates import BayesianClusterExpansion

K, ROUNDS = 4, 3


@pytest.fixture(scope="module")
def pool():
    return load_pool("li6ps5cl")


@pytest.fixture(scope="module")
def X(pool):
    return ClusterVectorFeaturizer(pool.orderings.parent).transform(pool)


@pytest.fixture(scope="module")
def reference(pool, X):
    """The uninterrupted batch campaign, labelled here one pick after the other."""
    campaign = Campaign(pool, TableOracle(), features=X)
    campaign.run_batch(K, ROUNDS, in_process=True, progress=False)
    return campaign


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as c:
        yield c


def slow_table(delay: float, markers: Path | None = None, fail: int | None = None):
    """A table oracle that takes ``delay`` s per label, notes each start in ``markers`` as
    ``time-index-pid``, and raises on candidate ``fail``. Defined here so that Dask sends it by value."""

    class SlowTable(TableOracle):
        def label(self, pool, index, on_step=None):
            if markers is not None:
                (markers / f"{time.time_ns()}-{index}-{os.getpid()}").touch()
            if index == fail:
                raise RuntimeError(f"the oracle broke on candidate {index}")
            time.sleep(delay)
            return super().label(pool, index)

    return SlowTable()


def lines(path: Path) -> list[dict]:
    """The whole lines of a labels file written so far (a line being written is left out)."""
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        out.append(json.loads(line))
    return out


def outcome(campaign: Campaign) -> tuple[list, dict]:
    """What must not depend on how the rounds went: each batch's picks, and every label by candidate."""
    picks = [[p["index"] for p in b["picks"]] for b in campaign.ledger.batch_book.events]
    labels = dict(zip(campaign.labelled["index"], campaign.labelled["energy"]))
    return picks, labels


# ------------------------------------------------------------------ picking
@pytest.mark.parametrize("options", [{}, {"initial": "random", "strategy": "lcb", "seed": 3},
                                     {"strategy": "ei", "n_initial": 4}])
def test_a_batch_of_one_is_the_sequential_campaign(pool, X, options):
    sequential = Campaign(pool, TableOracle(), features=X, **options)
    sequential.run(14)
    batched = Campaign(pool, TableOracle(), features=X, **options)
    batched.run_batch(1, 14, in_process=True, progress=False)
    columns = ["event", "index", "strategy", "mu", "sigma", "energy", "reason"]
    assert sequential.history[columns].equals(batched.history[columns])


def test_a_batch_in_the_head_start_takes_the_next_cheapest(pool, X):
    campaign = Campaign(pool, TableOracle(), features=X)
    picks = campaign.suggest_batch(K)
    cheapest = pool.reference[campaign.initial].to_numpy(dtype=float).argsort(kind="stable")[:K]
    assert [q.index for q in picks] == cheapest.tolist()
    assert all(q.strategy == "cheap ranking" for q in picks)
    assert "surrogate needs 2 labels" in picks[3].reason


def test_believer_refits_with_each_pick_at_its_predicted_energy(pool, X):
    campaign = Campaign(pool, TableOracle(), features=X, n_initial=3)
    campaign.run(3)
    first, second = campaign.suggest_batch(2, method="believer")
    idx = campaign.labelled["index"].to_numpy()
    y = campaign.labelled["energy"].to_numpy()
    # Fitted here from scratch: scale, Bayesian ridge, believe the first pick, pick the lowest again.
    def fit(i, e):
        mean, std = X[i].mean(0), X[i].std(0)
        std[std == 0] = 1
        model = BayesianRidge().fit((X[i] - mean) / std, e)
        return model.predict((X - mean) / std)
    mu = fit(idx, y)
    free = np.setdiff1d(np.arange(len(pool)), idx)
    assert first.index == free[np.argmin(mu[free])]
    mu2 = fit(np.append(idx, first.index), np.append(y, mu[first.index]))
    free = free[free != first.index]
    assert second.index == free[np.argmin(mu2[free])]
    assert "kriging believer" in second.reason


@pytest.mark.parametrize("method", ["believer", "liar", "thompson"])
def test_batch_picks_are_distinct_new_and_reproducible(pool, X, method):
    def picks(seed):
        campaign = Campaign(pool, TableOracle(), features=X, seed=seed)
        campaign.run_batch(K, 4, method=method, in_process=True, progress=False)
        return outcome(campaign)[0]

    first = picks(1)
    flat = [i for batch in first for i in batch]
    assert len(flat) == len(set(flat)) == 4 * K and first == picks(1)
    if method == "thompson":
        assert picks(2) != first  # the draws depend on the seed


def test_thompson_draws_spread_as_the_posterior_says(pool, X):
    idx = np.arange(0, len(pool), 20)
    model = BayesianClusterExpansion().fit(X[idx], pool.energies[idx])
    mu, sd = model.predict(X, return_std=True)
    draws = model.sample_y(X, 4000, random_state=0)
    # scikit-learn's predictive sigma is sqrt(noise 1/alpha + the coefficients' share): take the noise out
    latent = np.sqrt(sd**2 - 1 / model.alpha_)
    assert draws.shape == (len(pool), 4000)
    assert np.abs(draws.mean(1) - mu).max() < 5 * latent.max() / np.sqrt(4000)
    assert np.allclose(draws.std(1), latent, rtol=0.06)


def test_the_budget_and_the_pool_cut_the_last_batch(pool, X):
    campaign = Campaign(pool, TableOracle(), features=X, budget=6)
    campaign.run_batch(K, 5, in_process=True, progress=False)
    assert [len(b["picks"]) for b in campaign.ledger.batch_book.events] == [4, 2] and campaign.done
    with pytest.raises(CampaignError, match="budget of 6 labels is spent"):
        campaign.suggest_batch(K)


def test_best_by_batch_counts_whole_rounds(pool, reference):
    rounds = reference.best_by_batch()
    picks = [[p["index"] for p in b["picks"]] for b in reference.ledger.batch_book.events]
    best = np.minimum.accumulate([pool.energies[batch].min() for batch in picks])
    assert rounds["batch"].tolist() == [1, 2, 3] and rounds["n_labels"].tolist() == [4, 8, 12]
    assert np.allclose(rounds["best"], best)


@pytest.mark.parametrize("k,method,words", [(0, "believer", "positive integer"), (2.5, "believer", "positive"),
                                            (True, "believer", "positive"), (2, "greedy", "Unknown batch method")])
def test_bad_batch_sizes_and_methods_are_refused_in_one_line(pool, X, tmp_path, k, method, words):
    with pytest.raises(BatchError, match=words) as err:
        Campaign(pool, TableOracle(), features=X, ledger_path=tmp_path / "l.jsonl").run_batch(k, method=method)
    assert "\n" not in str(err.value) and len(lines(tmp_path / "l.jsonl")) == 1
    assert check_batch(3, "liar") == (3, "liar")


# ------------------------------------------------------------- the ledger
def test_picks_are_saved_before_their_labels_and_a_resumed_campaign_finishes_them(pool, X, tmp_path, reference):
    path = tmp_path / "labels.jsonl"

    class DiesMidRound(TableOracle):
        asked: list[int] = []

        def label(self, pool, index, on_step=None):
            if len(self.asked) == K + 2:
                raise KeyboardInterrupt  # the kernel is stopped after 2 labels of round 2
            self.asked.append(index)
            return super().label(pool, index)

    with pytest.raises(KeyboardInterrupt):
        Campaign(pool, DiesMidRound(), features=X, ledger_path=path).run_batch(K, ROUNDS, in_process=True,
                                                                               progress=False)
    types = [r["type"] for r in lines(path)]
    assert types == ["header", "batch"] + ["label"] * K + ["batch"] + ["label"] * 2

    resumed = Campaign(pool, TableOracle(), features=X, ledger_path=path)
    recorded = [p["index"] for p in resumed.ledger.batch_book.events[1]["picks"]]
    pending = [q.index for q in resumed.ledger.pending()]
    assert pending == recorded[2:] and [q.index for q in resumed.suggest_batch(K)] == pending
    assert resumed.suggest().index == pending[0]

    class Counting(TableOracle):
        asked: list[int] = []

        def label(self, pool, index, on_step=None):
            self.asked.append(index)
            return super().label(pool, index)

    resumed.oracle = Counting()
    resumed.run_batch(K, ROUNDS - 1, in_process=True, progress=False)
    assert Counting.asked[:2] == pending and not set(Counting.asked) & set(DiesMidRound.asked)
    assert outcome(resumed) == outcome(reference)


def test_a_pick_of_a_closed_batch_is_refused_and_nothing_is_recorded(pool, X, tmp_path):
    campaign = Campaign(pool, TableOracle(), features=X, ledger_path=tmp_path / "l.jsonl")
    picks = campaign.ledger.record_batch(campaign.suggest_batch(3), "believer")
    campaign.submit(pool.energies[picks[1].index], index=picks[1].index)  # out of order: still open
    campaign.ledger.add("label", picks[0], by="t", source="t", energy=pool.energies[picks[0].index])
    assert campaign.labelled["index"].tolist() == [picks[1].index, picks[0].index]  # as they came
    assert campaign.ledger.labels_in_pick_order()[0].tolist() == [picks[0].index, picks[1].index]
    with pytest.raises(CampaignError, match="still has 1 picks to label"):
        campaign.ledger.record_batch(campaign.suggest_batch(2), "believer")
    campaign.undo()  # an event outside the batch closes it
    before = (tmp_path / "l.jsonl").read_bytes()
    with pytest.raises(StaleQueryError, match="batch 1, which is closed") as err:
        campaign.ledger.add("label", picks[2], by="t", source="t", energy=pool.energies[picks[2].index])
    assert "\n" not in str(err.value) and (tmp_path / "l.jsonl").read_bytes() == before
    assert not campaign.ledger.pending() and campaign.suggest().batch is None


def test_an_app_bound_to_the_open_batch_labels_its_picks_and_can_undo(pool, X):
    """The labeling app shows campaign.suggest() and binds step/undo to it: it works through an open batch."""
    campaign = Campaign(pool, TableOracle(), features=X)
    picks = campaign.ledger.record_batch(campaign.suggest_batch(3), "liar")
    shown = campaign.suggest()
    assert shown.index == picks[0].index and shown.batch == 1
    campaign.step(query=shown)
    shown = campaign.suggest()  # the next pending pick, bound to the state now
    assert shown.index == picks[1].index and shown.n_events == len(campaign.ledger.events)
    campaign.undo(n_events=shown.n_events)  # an undo closes the batch ...
    assert not campaign.ledger.pending()
    with pytest.raises(StaleQueryError, match="batch 1, which is closed"):
        campaign.step(query=shown)  # ... and a pick shown before it is refused
    assert campaign.n_labels == 0


def test_a_batch_line_that_picks_a_labelled_candidate_is_refused(pool, X, tmp_path):
    from almat.journal import checksum
    from almat.labels import LabelsFileError

    path = tmp_path / "l.jsonl"
    Campaign(pool, TableOracle(), features=X, ledger_path=path).run_batch(2, 2, in_process=True, progress=False)
    records = lines(path)
    records[4]["picks"][0]["index"] = records[2]["index"]  # batch 2 picks a candidate of batch 1
    records[4]["picks"][0]["id"] = records[2]["id"]
    del records[4]["check"]
    records[4]["check"] = checksum(records[4])
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(LabelsFileError, match="Line 5 .* picks candidate .* taken or picked twice"):
        Campaign(pool, TableOracle(), features=X, ledger_path=path)


# ------------------------------------------------------------------- Dask
def test_an_oracle_that_cannot_run_in_parallel_labels_here(pool, X, monkeypatch, reference):
    import almat.batches

    def no_cluster(*args, **kwargs):
        raise AssertionError("no Dask cluster should be started")

    monkeypatch.setattr(almat.batches, "dask_client", no_cluster)

    class Person:  # no `parallel` attribute: labels in this process
        name = "person"

        def label(self, pool, index):
            return TableOracle().label(pool, index)

    campaign = Campaign(pool, Person(), features=X)
    campaign.run_batch(K, ROUNDS, progress=False)
    assert outcome(campaign) == outcome(reference)


def test_a_malformed_scheduler_is_refused_before_anything_is_recorded(pool, X, tmp_path):
    path = tmp_path / "l.jsonl"
    with pytest.raises(SchedulerError, match="no host and port") as err:
        Campaign(pool, TableOracle(), features=X, ledger_path=path).run_batch(K, scheduler="tcp://127.0.0.1:x")
    assert "\n" not in str(err.value) and [r["type"] for r in lines(path)] == ["header"]


@pytest.mark.slow
def test_a_worker_killed_mid_round_loses_no_label_and_labels_none_twice(pool, X, tmp_path, reference):
    """Issue 17's test: k = 4 on a two-worker LocalCluster; the worker of round 2's first label is killed."""
    markers = tmp_path / "markers"
    markers.mkdir()
    path = tmp_path / "labels.jsonl"
    killed: list[tuple[int, int]] = []

    def kill_round_two() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = sorted(markers.iterdir(), key=lambda p: int(p.name.split("-")[0]))
            if len(started) > K:
                _, index, pid = started[K].name.split("-")
                os.kill(int(pid), signal.SIGKILL)
                killed.append((int(index), int(pid)))
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_round_two, daemon=True)
    killer.start()
    campaign = Campaign(pool, slow_table(0.8, markers), features=X, ledger_path=path)
    campaign.run_batch(K, ROUNDS, n_workers=2, progress=False)
    killer.join(1)

    assert killed, "no worker was killed"
    index, pid = killed[0]
    starts = [p.name.split("-") for p in markers.iterdir()]
    assert sum(int(i) == index for _, i, _ in starts) == 2  # killed mid-label, then labelled again
    records = lines(path)
    labelled = [r["index"] for r in records if r["type"] == "label"]
    assert len(labelled) == len(set(labelled)) == K * ROUNDS  # none lost, none twice
    assert outcome(campaign) == outcome(reference)
    assert outcome(Campaign(pool, TableOracle(), features=X, ledger_path=path)) == outcome(reference)


@pytest.mark.slow
def test_the_campaign_process_killed_mid_round_resumes_as_if_never_stopped(pool, X, tmp_path, cluster,
                                                                           reference):
    path = tmp_path / "labels.jsonl"
    script = tmp_path / "campaign.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from almat.campaign import Campaign
        from almat.oracles import TableOracle
        from almat.pool import load_pool

        class SlowTable(TableOracle):
            def label(self, pool, index, on_step=None):
                time.sleep(0.5)
                return super().label(pool, index)

        if __name__ == "__main__":
            Campaign(load_pool("li6ps5cl"), SlowTable(), ledger_path={str(path)!r}).run_batch(
                {K}, {ROUNDS}, scheduler={cluster.scheduler_address!r}, progress=False)
    """))
    child = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and child.poll() is None:
            records = lines(path) if path.exists() else []
            batches = [i for i, r in enumerate(records) if r["type"] == "batch"]
            if len(batches) == 2 and 1 <= len(records) - 1 - batches[1] < K:
                os.kill(child.pid, signal.SIGKILL)  # mid-round 2
                break
            time.sleep(0.01)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL, "the campaign ended before it was killed"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedLabelsWarning)  # a kill mid-write leaves a cut line
        resumed = Campaign(pool, TableOracle(), features=X, ledger_path=path)
    pending = resumed.ledger.pending()
    assert len(resumed.ledger.batch_book.events) == 2 and 1 <= len(pending) < K
    resumed.run_batch(K, ROUNDS - 1, scheduler=cluster.scheduler_address, progress=False)
    labelled = [r["index"] for r in lines(path) if r["type"] == "label"]
    assert len(labelled) == len(set(labelled)) == K * ROUNDS
    assert outcome(resumed) == outcome(reference)


@pytest.mark.slow
def test_a_refusal_on_a_worker_is_a_skip_and_an_error_comes_after_the_other_labels(pool, X, cluster):
    values = pool.energies.copy()
    campaign = Campaign(pool, TableOracle(values), features=X, n_initial=4)
    picks = campaign.suggest_batch(K)
    values[picks[1].index] = np.nan  # the table refuses it
    campaign.oracle = TableOracle(values)
    campaign.run_batch(K, scheduler=cluster.scheduler_address, progress=False)
    skipped = campaign.skipped
    assert skipped["index"].tolist() == [picks[1].index] and "no finite energy" in skipped["reason"].iloc[0]

    campaign.oracle = slow_table(0.2, fail=campaign.suggest_batch(K)[0].index)
    broken = campaign.suggest_batch(K)[0]
    with pytest.raises(RuntimeError, match=f"broke on candidate {broken.index}"):
        campaign.run_batch(K, scheduler=cluster.scheduler_address, progress=False)
    assert [q.index for q in campaign.ledger.pending()] == [broken.index]  # the three others are saved
