"""Campaign: picks, labels, refusals, undo, metrics, and a labels file that survives a restart.

The pool is the 48 orderings of Li6PS5Cl at cell size 1 with a synthetic
energy, so no test here needs CHGNet. A kernel restart is simulated by
deleting the campaign and creating it again from its labels file.
"""

import functools
import gc
import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from almat.campaign import Campaign
from almat.acquisition import lcb
from almat.pool import POOL_DIR, Pool, load_pool
from almat.enumeration import enumerate_table
from almat.evaluation import compare_strategies, labels_to_minimum, mae, parity, regret
from almat.labels import LabelsFileError, TruncatedLabelsWarning
from almat.acquisition import AcquisitionError
from almat.ledger import CampaignError, LabelError, StaleQueryError
from almat.oracles import Label, OracleRefusal, TableOracle
from almat.pool_build import make_pool
from almat.surrogates import BayesianClusterExpansion

N = 48
#: Synthetic energies (eV/atom), all distinct, from -4.45 to -4.15; the lowest is
#: candidate 30, since 30 * 2.4 + 0.3 = 72.3 rad lies 0.04 rad from 23π.
ENERGIES = -4.30 + 0.15 * np.cos(np.arange(N) * 2.4 + 0.3)
LOWEST = int(np.argmin(ENERGIES))


@pytest.fixture(scope="module")
def table(half):
    return enumerate_table(half, max_cell_size=1)


@pytest.fixture(scope="module")
def pool(table):
    return make_pool(table, ENERGIES, name="size1")


@pytest.fixture(scope="module")
def features(pool):
    from almat.features import ClusterVectorFeaturizer

    return ClusterVectorFeaturizer(pool.orderings.parent).transform(pool)


@pytest.fixture
def new(pool, features):
    """Campaign on the test pool; the features are computed once for the module."""
    def make(*args, **kwargs):
        if "featurizer" not in kwargs:
            kwargs.setdefault("features", features)
        return Campaign(pool, *args, **kwargs)

    return make


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_synthetic_pool_is_what_the_tests_assume():
    assert LOWEST == 30
    assert len(np.unique(ENERGIES)) == N
    assert ENERGIES.min() == pytest.approx(-4.45, abs=1e-3)


def test_first_labels_are_random_then_the_strategy_picks_among_the_unlabelled(pool):
    c = Campaign(pool, TableOracle(), strategy="greedy", seed=3, n_initial=5)
    c.run(12)
    h = c.history
    assert list(h["step"]) == list(range(1, 13))
    assert list(h["strategy"]) == ["initial"] * 5 + ["greedy"] * 7
    assert h["index"].is_unique
    assert np.array_equal(h["energy"].to_numpy(), ENERGIES[h["index"].to_numpy()])
    assert (h["labelled_by"] == "table").all() and (h["event"] == "label").all()
    # mu and sigma are recorded once two labels exist
    assert h["mu"].iloc[:2].isna().all() and h["mu"].iloc[2:].notna().all()
    assert (h["sigma"].iloc[2:] > 0).all()
    assert pd.to_datetime(h["time"]).dt.tz is not None
    # greedy labels the lowest predicted energy among those still unlabelled
    mu, _ = c.predict()
    q = c.suggest()
    free = np.setdiff1d(np.arange(N), h["index"])
    assert q.index == free[np.argmin(mu[free])]
    assert q.mu == pytest.approx(mu[q.index])


def test_suggest_is_stable_until_something_happens_and_step_labels_it(new):
    c = new(TableOracle(), seed=0, n_initial=3)
    c.run(4)
    q = c.suggest()
    assert c.suggest() == q
    row = c.step()
    assert row["index"] == q.index and row["energy"] == ENERGIES[q.index]
    assert row["mu"] == pytest.approx(q.mu) and row["strategy"] == "lcb"
    assert c.suggest().index != q.index


def test_same_seed_same_picks_other_seed_other_picks(new):
    def picks(seed):
        c = new(TableOracle(), strategy="lcb", seed=seed)
        c.run(20)
        return c.history["index"].tolist()

    assert picks(7) == picks(7)
    assert picks(7) != picks(8)


def test_a_restart_loses_nothing_and_carries_on_as_if_uninterrupted(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    straight = new(TableOracle(), seed=5, n_initial=4)
    straight.run(15)

    c = new(TableOracle(), seed=5, n_initial=4, ledger_path=path)
    c.run(9)
    before, next_pick = c.history, c.suggest()
    assert len(lines(path)) == 1 + 9  # header and one line per label, written at once
    del c
    gc.collect()

    again = new(TableOracle(), seed=5, n_initial=4, ledger_path=path)
    pd.testing.assert_frame_equal(again.history, before)
    assert again.suggest() == next_pick
    again.run(6)
    cols = ["index", "strategy", "energy"]
    pd.testing.assert_frame_equal(again.history[cols], straight.history[cols])
    np.testing.assert_allclose(again.history["mu"], straight.history["mu"], rtol=1e-12)
    np.testing.assert_allclose(again.history["sigma"], straight.history["sigma"], rtol=1e-12)


def test_the_file_is_plain_json_lines_with_a_header(pool, tmp_path, new):
    path = tmp_path / "run.jsonl"
    c = new(TableOracle(), seed=2, ledger_path=path)
    c.step()
    c.submit("-4.3", index=(int(c.history["index"].iloc[0]) + 1) % N)
    header, first, second = lines(path)
    assert header["type"] == "header" and header["pool"] == "size1"
    assert header["fingerprint"] == pool.fingerprint and header["seed"] == 2
    assert {"created", "almat"} <= header.keys()
    assert first["type"] == "label" and first["labelled_by"] == "table"
    assert first["energy"] == ENERGIES[first["index"]] and first["id"] == pool.ids[first["index"]]
    assert second["labelled_by"] == "human" and second["energy"] == -4.3
    assert second["strategy"] == "manual"


def test_a_file_of_another_pool_is_refused_and_left_alone(pool, table, tmp_path, new):
    path = tmp_path / "labels.jsonl"
    new(TableOracle(), ledger_path=path).run(2)
    content = path.read_bytes()
    other = make_pool(table.subset(np.arange(40)), ENERGIES[:40], name="first40")
    with pytest.raises(LabelsFileError) as err:
        Campaign(other, TableOracle(), ledger_path=path)
    message = str(err.value)
    assert "'size1'" in message and "'first40'" in message
    assert pool.fingerprint in message and other.fingerprint in message
    assert "labels-first40-" in message  # a new file name is suggested
    assert path.read_bytes() == content


@pytest.mark.parametrize("bad", ["abc", "", "   ", "nan", "inf", "-inf", "1,5", 1e6, -1e6,
                                 float("nan"), float("inf"), None, True, [-4.3]])
def test_a_bad_entry_is_refused_and_nothing_is_written(new, tmp_path, bad):
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), ledger_path=path, n_initial=2)
    c.run(3)
    content, query = path.read_bytes(), c.suggest()
    with pytest.raises(LabelError):
        c.submit(bad)
    assert path.read_bytes() == content
    assert c.n_labels == 3 and len(c.history) == 3 and c.suggest() == query


def test_the_plausible_range_is_the_reference_range_widened_by_one_ev(new, tmp_path):
    # reference -4.45 .. -4.15 eV/atom, so labels from -5.45 to -3.15 are accepted
    low, high = ENERGIES.min() - 1.0, ENERGIES.max() + 1.0
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), ledger_path=path)
    for value in (low - 0.01, high + 0.01, -4300.0, -0.0043):  # meV or total energy by mistake
        with pytest.raises(LabelError, match="eV/atom"):
            c.submit(value)
    assert len(lines(path)) == 1
    c.submit(f"  {low + 0.01} ")
    c.submit("\u22124.2")  # a typographic minus sign, as copied from a PDF
    assert c.labelled["energy"].tolist() == [pytest.approx(low + 0.01), -4.2]


def test_without_a_reference_labels_must_be_physical_and_no_slip_sets_the_range(table, features):
    c = Campaign(make_pool(table, None, name="unknown"), TableOracle(), features=features)
    for slip in (-4250, 1e308, "-1e308", -15.01, 5.01):  # meV for eV, a stray exponent, out of bounds
        with pytest.raises(LabelError, match="no reference energies"):
            c.submit(slip, index=0)
    assert c.n_labels == 0 and c.history.empty
    c.submit(-4.3, index=0)  # the slips above set nothing: correct values are accepted
    c.submit(-9.3, index=1)  # far from -4.3, yet a possible energy per atom
    c.submit(-15.0, index=2)
    c.submit(5.0, index=3)
    with pytest.raises(LabelError, match="-15.00 to 5.00 eV/atom"):
        c.submit(-4300.0, index=4)
    assert c.labelled["energy"].tolist() == [-4.3, -9.3, -15.0, 5.0]


def test_labels_are_never_overwritten_undo_is_recorded_not_erased(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), ledger_path=path, n_initial=2)
    c.run(3)
    target = int(c.history["index"].iloc[-1])
    with pytest.raises(LabelError, match="undo"):
        c.submit(-4.2, index=target)
    assert len(lines(path)) == 4
    undone = c.undo()
    assert undone["event"] == "undo" and undone["undoes"] == 3 and undone["index"] == target
    assert c.n_labels == 2 and target not in c.labelled["index"].tolist()
    c.submit(-4.2, index=target)
    events = lines(path)[1:]
    assert [e["type"] for e in events] == ["label", "label", "label", "undo", "label"]
    assert events[2]["energy"] == ENERGIES[target]  # the undone label is still in the file
    assert events[3]["undoes"] == 3 and events[4]["energy"] == -4.2
    assert c.labelled.set_index("index").loc[target, "energy"] == -4.2
    # the resumed campaign sees the same effective labels
    again = new(TableOracle(), ledger_path=path, n_initial=2)
    pd.testing.assert_frame_equal(again.labelled, c.labelled)


def test_undo_takes_back_skips_too_and_stops_when_nothing_is_left(new):
    c = new(TableOracle())
    c.submit(-4.3, index=4)
    c.skip("did not converge", index=9)
    assert c.skipped["index"].tolist() == [9]
    c.undo()
    assert c.skipped.empty and c.n_labels == 1
    c.undo()
    assert c.n_labels == 0
    with pytest.raises(CampaignError, match="nothing to undo"):
        c.undo()
    assert [e for e in c.history["event"]] == ["label", "skip", "undo", "undo"]


def test_an_oracle_refusal_is_a_skip_with_its_reason(new):
    values = ENERGIES.copy()
    values[::2] = np.nan  # the table knows only odd candidates
    c = new(TableOracle(values), seed=1)
    c.run(30)
    h = c.history
    skips = h[h["event"] == "skip"]
    assert len(skips) > 0 and (skips["index"] % 2 == 0).all()
    assert skips["reason"].str.contains("no finite energy").all()
    assert (h.loc[h["event"] == "label", "index"] % 2 == 1).all()
    assert c.n_labels == len(h) - len(skips) and h["index"].is_unique  # never picked twice


def test_any_object_with_name_and_label_is_an_oracle(pool, new):
    class Picky:
        name = "picky"

        def label(self, pool, index):
            if pool.reference["min_li_li"].iloc[index] < 2.0:
                raise OracleRefusal("Li-Li closer than 2 Å")
            return Label(-4.0, "picky v1")

    c = new(Picky(), seed=0)
    c.run(10)
    h = c.history
    short = pool.reference["min_li_li"].to_numpy()[h["index"]] < 2.0
    assert (h["event"][short] == "skip").all() and (h["event"][~short] == "label").all()
    assert (h["source"][~short] == "picky v1").all() and (h["labelled_by"] == "picky").all()


def test_a_cut_last_line_is_dropped_with_a_warning_and_the_campaign_goes_on(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), ledger_path=path, seed=4)
    c.run(5)
    history, query = c.history, c.suggest()
    with path.open("ab") as fh:
        fh.write(b'{"type": "label", "step": 6, "index": 1')  # a crash in mid-write
    with pytest.warns(TruncatedLabelsWarning, match="cut short"):
        again = new(TableOracle(), ledger_path=path, seed=4)
    pd.testing.assert_frame_equal(again.history, history)
    assert again.suggest() == query
    again.step()
    assert [e["step"] for e in lines(path)[1:]] == [1, 2, 3, 4, 5, 6]


def test_files_that_are_not_this_pools_labels_are_never_modified(pool, table, new, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"energies I computed last week")  # one line, no newline
    with pytest.raises(LabelsFileError, match="no complete line"):
        new(TableOracle(), ledger_path=notes)
    assert notes.read_bytes() == b"energies I computed last week"
    # another pool's file with a cut last line: refused for the pool, not repaired
    other = tmp_path / "other.jsonl"
    Campaign(make_pool(table.subset(np.arange(40)), ENERGIES[:40], name="first40"), TableOracle(),
             ledger_path=other, features=np.ones((40, 1))).run(2)
    with other.open("ab") as fh:
        fh.write(b'{"type": "lab')
    content = other.read_bytes()
    with pytest.raises(LabelsFileError, match="first40"):
        new(TableOracle(), ledger_path=other)
    assert other.read_bytes() == content


def test_an_empty_file_starts_a_campaign_and_another_seed_is_flagged(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    path.touch()
    new(TableOracle(), ledger_path=path, seed=1).run(2)
    assert [e["type"] for e in lines(path)] == ["header", "label", "label"]
    with pytest.warns(UserWarning, match="seed 1"):
        again = new(TableOracle(), ledger_path=path, seed=2)
    assert again.n_labels == 2 and again.seed == 2


def test_a_damaged_line_in_the_middle_is_an_error_naming_the_line(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    new(TableOracle(), ledger_path=path).run(3)
    text = path.read_text().splitlines()
    text[2] = text[2][:20]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(LabelsFileError, match="Line 3"):
        new(TableOracle(), ledger_path=path)


def test_a_hand_edited_label_that_is_not_a_number_is_an_error(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    new(TableOracle(), ledger_path=path).run(2)
    text = path.read_text().splitlines()
    event = json.loads(text[2])
    event["energy"] = "oops"
    text[2] = json.dumps(event)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(LabelsFileError, match="Line 3.*not a number"):
        new(TableOracle(), ledger_path=path)


def test_two_campaigns_writing_one_file_is_caught(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    first = new(TableOracle(), ledger_path=path)
    second = new(TableOracle(), ledger_path=path)
    second.step()
    content = path.read_bytes()
    with pytest.raises(LabelsFileError, match="changed since"):
        first.step()
    assert path.read_bytes() == content


def test_the_budget_stops_the_campaign(new):
    c = new(TableOracle(), budget=6)
    assert len(c.run(100)) == 6 and c.done
    with pytest.raises(CampaignError, match="budget"):
        c.step()
    with pytest.raises(CampaignError, match="budget"):
        c.submit(-4.3, index=int(np.setdiff1d(np.arange(N), c.labelled["index"])[0]))
    c.budget = 8
    assert len(c.run(100)) == 2


def test_a_strategy_change_applies_to_the_next_pick(new):
    c = new(TableOracle(), strategy="uncertainty", n_initial=4, seed=0)
    c.run(6)
    q = c.suggest()
    _, sigma = c.predict()
    assert q.sigma == pytest.approx(np.max(np.delete(sigma, c.labelled["index"])))
    c.set_strategy("greedy")
    mu, _ = c.predict()
    assert c.suggest().mu == pytest.approx(np.min(np.delete(mu, c.labelled["index"])))
    c.step()
    assert c.history["strategy"].tolist()[-3:] == ["uncertainty", "uncertainty", "greedy"]


def test_a_users_own_strategy_is_called_with_mu_sigma_and_best(new):
    seen = {}

    def highest_mu(mu, sigma, *, best=None, rng=None):
        seen.update(n=len(mu), best=best)
        return mu

    c = new(TableOracle(), strategy=highest_mu, n_initial=3)
    c.run(4)
    assert seen == {"n": N - 3, "best": min(c.history["energy"].iloc[:3])}
    assert c.history["strategy"].iloc[-1] == "highest_mu"


def test_metrics_best_so_far_regret_labels_to_minimum_and_mae(pool, tmp_path, new):
    c = new(TableOracle(), strategy="random", seed=11, n_initial=2)
    assert c.best() is None and np.isnan(regret(c)) and labels_to_minimum(c) is None
    c.run(N)
    labels = c.history["energy"].to_numpy()
    curve = c.best_so_far()
    assert curve["n_labels"].tolist() == list(range(1, N + 1))
    assert curve["best"].tolist() == [min(labels[: k + 1]) for k in range(N)]
    where = c.history["index"].tolist().index(LOWEST) + 1
    assert labels_to_minimum(c) == where
    assert regret(c) == 0.0 and c.best()["index"] == LOWEST
    # every candidate is labelled: regret was positive before the minimum was found
    partial = new(TableOracle(), strategy="random", seed=11, n_initial=2)
    partial.run(where - 1)
    assert regret(partial) == pytest.approx(min(labels[: where - 1]) - ENERGIES.min())
    assert regret(partial) > 0
    # MAE is the mean |mu - reference| over the pool; parity lists both
    p = parity(c)
    assert len(p) == N and p["labelled"].all()
    assert mae(c) == pytest.approx(np.mean(np.abs(p["predicted"] - ENERGIES)))
    assert mae(c, np.zeros(N)) == pytest.approx(np.mean(np.abs(p["predicted"])))


def test_a_surrogate_learns_an_energy_that_is_linear_in_the_features(table, features):
    # E = X w exactly: with enough labels the fitted surrogate must reproduce it
    w = np.linspace(-0.01, 0.01, features.shape[1])
    energies = -4.3 + features @ w
    linear = make_pool(table, energies, name="linear")
    c = Campaign(linear, TableOracle(), strategy="uncertainty", seed=0,
                 features=features)
    c.run(2)
    early = mae(c)
    c.run(28)
    assert mae(c) < 0.2 * early
    assert mae(c) < 2e-3  # eV/atom


def test_bad_arguments_are_explained(new):
    with pytest.raises(CampaignError, match="seed"):
        new(TableOracle(), seed=-1)
    with pytest.raises(ValueError, match="one row per"):
        new(TableOracle(), featurizer=lambda o: np.zeros((3, 2))).features
    c = new(TableOracle())
    with pytest.raises(CampaignError, match="index"):
        c.submit(-4.3, index=N)
    with pytest.raises(CampaignError, match="reason"):
        c.skip("  ")


def test_compare_strategies_curves(pool, features, new):
    curves = compare_strategies(pool, ["greedy", "random"], seeds=2, n_labels=12,
                                features=features, n_initial=4, mae=True)
    assert len(curves) == 2 * 2 * 12
    assert list(curves.columns) == ["strategy", "seed", "n_labels", "energy", "best", "regret_meV",
                                   "mae_meV"]
    for (strategy, seed), run in curves.groupby(["strategy", "seed"]):
        assert run["n_labels"].tolist() == list(range(1, 13))
        assert np.all(np.diff(run["best"]) <= 0)
        # regret in meV/atom against the hand-known lowest synthetic energy
        assert np.allclose(run["regret_meV"], 1000 * (run["best"] - ENERGIES[LOWEST]))
        assert np.isnan(run["mae_meV"].iloc[0])  # one label: no surrogate yet
        assert (run["mae_meV"].iloc[1:] >= 0).all()
        # the same campaign run by hand gives the same curve
        alone = new(TableOracle(), strategy=strategy, seed=seed, n_initial=4, budget=12)
        alone.run(12)
        assert np.array_equal(alone.best_so_far()["best"].to_numpy(), run["best"].to_numpy())
        assert np.array_equal(alone.labelled["energy"].to_numpy(), run["energy"].to_numpy())
        # one unit per name: the column is in meV/atom, regret() in eV/atom
        assert run["regret_meV"].iloc[-1] == pytest.approx(1000 * regret(alone), abs=1e-9)


def test_a_precomputed_feature_matrix_is_used_as_given(pool, features):
    c = Campaign(pool, TableOracle(), features=features)
    assert np.array_equal(c.features, features)  # used as given: no featurizer runs
    with pytest.raises(CampaignError, match="one row per candidate"):
        Campaign(pool, TableOracle(), features=features[:-1])
    with pytest.raises(CampaignError, match="not both"):
        Campaign(pool, TableOracle(), features=features, featurizer=lambda o: features)


def test_the_surrogate_is_cloned_and_never_fitted_in_place(new):
    mine = BayesianClusterExpansion()
    c = new(TableOracle(), surrogate=mine, n_initial=3)
    c.run(5)
    assert not hasattr(mine, "model_")  # the campaign fitted a clone
    assert c.model is not mine and type(c.model) is BayesianClusterExpansion
    assert c.model.get_params() == mine.get_params() and hasattr(c.model, "model_")


def test_a_strategy_with_options_is_named_and_explained_with_them(new):
    c = new(TableOracle(), strategy=functools.partial(lcb, kappa=0.5), n_initial=3)
    c.run(3)
    q = c.suggest()
    assert q.strategy == c.strategy == "lcb(kappa=0.5)"
    assert q.reason.startswith("LCB: μ − 0.5σ")
    mu, sigma = c.predict()
    free = np.setdiff1d(np.arange(N), c.labelled["index"])
    assert q.index == free[np.argmin(mu[free] - 0.5 * sigma[free])]


def test_a_resumed_campaign_goes_on_with_the_strategy_recorded_last(new, tmp_path, capsys):
    path = tmp_path / "labels.jsonl"
    straight = new(TableOracle(), strategy="lcb", seed=3, n_initial=3)
    straight.run(6)
    straight.set_strategy("greedy")
    straight.run(6)

    c = new(TableOracle(), strategy="lcb", seed=3, n_initial=3, ledger_path=path)
    c.run(6)
    c.set_strategy("greedy")  # e.g. from the widget's menu, then the kernel dies
    assert [(e["type"], e.get("strategy")) for e in lines(path)][-1] == ("strategy", "greedy")
    assert lines(path)[0]["strategy"] == "lcb"
    again = new(TableOracle(), seed=3, n_initial=3, ledger_path=path)
    assert again.strategy == "greedy" and again.note == "" and capsys.readouterr().out == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said as a plain line, not a warning with a path
        explicit = new(TableOracle(), strategy="lcb", seed=3, n_initial=3, ledger_path=path)
    assert explicit.strategy == "greedy"
    expected = ("labels.jsonl was last labelled with strategy 'greedy'; the campaign goes on with it, "
                "not 'lcb'. Call campaign.set_strategy('lcb') to change.")
    assert explicit.note == expected and capsys.readouterr().out == expected + "\n"
    assert str(tmp_path) not in explicit.note
    again.run(6)
    cols = ["index", "strategy", "energy"]
    pd.testing.assert_frame_equal(again.history[cols], straight.history[cols])
    # setting the strategy it already has writes nothing
    size = path.stat().st_size
    again.set_strategy("greedy")
    assert path.stat().st_size == size


def test_a_recorded_strategy_of_your_own_must_be_passed_again(new, tmp_path, capsys):
    path = tmp_path / "labels.jsonl"

    def highest_mu(mu, sigma, *, best=None, rng=None):
        return mu

    new(TableOracle(), strategy=highest_mu, n_initial=2, ledger_path=path).run(3)
    with pytest.raises(CampaignError, match="'highest_mu'.*strategy="):
        new(TableOracle(), n_initial=2, ledger_path=path)
    assert new(TableOracle(), strategy=highest_mu, n_initial=2, ledger_path=path).strategy == "highest_mu"
    other = new(TableOracle(), strategy="ei", n_initial=2, ledger_path=path)
    assert "cannot be rebuilt" in other.note and "cannot be rebuilt" in capsys.readouterr().out
    assert other.strategy == "ei" and lines(path)[-1] == dict(lines(path)[-1], type="strategy", strategy="ei")


def test_a_file_from_before_strategies_were_recorded_still_loads(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    new(TableOracle(), strategy="greedy", n_initial=2, ledger_path=path).run(4)
    old = lines(path)
    old[0]["format"] = 1
    del old[0]["strategy"]
    path.write_text("".join(json.dumps(e) + "\n" for e in old))
    c = new(TableOracle(), strategy="uncertainty", n_initial=2, ledger_path=path)
    assert c.n_labels == 4 and c.strategy == "uncertainty"
    assert lines(path)[-1]["type"] == "strategy"  # from now on the file says which one is used
    newer = [dict(old[0], format=99)] + old[1:]
    path.write_text("".join(json.dumps(e) + "\n" for e in newer))
    with pytest.raises(LabelsFileError, match="format 99"):
        new(TableOracle(), ledger_path=path)


def test_a_line_added_by_hand_is_dropped_if_unfinished_and_refused_if_complete(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), ledger_path=path, n_initial=2, seed=4)
    c.run(3)
    free = int(np.setdiff1d(np.arange(N), c.labelled["index"])[0])
    by_hand = dict(lines(path)[-1], step=4, index=free, id=c.pool.ids[free], energy=-4.2, labelled_by="me")
    # a line without its newline was never acknowledged (the journal's one rule): dropped, with a warning
    with path.open("a") as fh:
        fh.write(json.dumps(by_hand))
    with pytest.warns(TruncatedLabelsWarning, match="cut short"):
        again = new(TableOracle(), ledger_path=path, n_initial=2, seed=4)
    assert again.n_labels == 3 and path.read_text().endswith("\n") and len(lines(path)) == 4
    # complete lines added by hand are refused, naming the line, and nothing is deleted
    for line, words in [(json.dumps(by_hand), "Line 5 .*changed after almat wrote it"),
                        ("{'type': 'label', 'step': 4}", "Line 5 .*not valid JSON")]:
        with path.open("a") as fh:
            fh.write(line + "\n")
        content = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("error", TruncatedLabelsWarning)
            with pytest.raises(LabelsFileError, match=words):
                new(TableOracle(), ledger_path=path, n_initial=2, seed=4)
        assert path.read_bytes() == content
        path.write_bytes(content[: -len(line) - 1])


# --- the head start from cheap energies ------------------------------------------------------

#: Synthetic cheap energies (eV/atom) that rank the candidates in another order than
#: ENERGIES: candidate i gets 0.001 * ((7 * i) mod 48), so 0 is lowest, then 7, then 14.
CHEAP = 0.001 * ((7 * np.arange(N)) % N)
CHEAP_ORDER = [0, 7, 14, 21, 28]


def with_columns(pool, name="size1-cheap", **columns):
    return Pool(name, pool.orderings, pool.reference.assign(**columns))


@pytest.fixture(scope="module")
def cheap_pool(pool):
    return with_columns(pool, unrelaxed_energy_per_atom=CHEAP, ewald_energy_per_atom=CHEAP[::-1])


def test_the_cheap_energies_are_what_the_tests_assume():
    assert len(np.unique(CHEAP)) == N
    assert list(np.argsort(CHEAP)[:5]) == CHEAP_ORDER
    assert LOWEST not in CHEAP_ORDER[:2]


def test_a_pool_with_cheap_energies_starts_from_the_unrelaxed_ranking_then_picks_greedily(
        cheap_pool, features):
    c = Campaign(cheap_pool, TableOracle(), features=features)
    assert (c.initial, c.n_initial, c.strategy) == ("unrelaxed_energy_per_atom", 2, "greedy")
    c.run(6)
    h = c.history
    assert list(h["strategy"]) == ["cheap ranking"] * 2 + ["greedy"] * 4
    assert list(h["index"][:2]) == CHEAP_ORDER[:2]
    assert h["reason"][0] == ("Cheap ranking: the lowest unrelaxed CHGNet energy of the unlabelled "
                              "candidates (0.0000 eV/atom), head-start label 1 of 2.")
    assert "(0.0010 eV/atom), head-start label 2 of 2" in h["reason"][1]
    # then greedy: the lowest predicted energy among the unlabelled
    mu, _ = c.predict()
    free = np.setdiff1d(np.arange(N), h["index"])
    assert c.suggest().index == free[np.argmin(mu[free])]


def test_the_head_start_is_deterministic_whatever_the_seed(cheap_pool, features):
    def picks(seed):
        return Campaign(cheap_pool, TableOracle(), seed=seed, features=features).run(8)["index"].tolist()

    assert picks(0) == picks(1)


def test_the_head_start_uses_the_ewald_energy_when_it_is_the_only_cheap_energy(pool, features):
    ewald = with_columns(pool, ewald_energy_per_atom=CHEAP)
    c = Campaign(ewald, TableOracle(), features=features, n_initial=3)
    assert c.initial == "ewald_energy_per_atom"
    assert list(c.run(3)["index"]) == CHEAP_ORDER[:3]
    assert "the lowest Ewald energy" in c.history["reason"][0]


def test_without_cheap_energies_it_is_random_picks_then_lcb_as_before(pool, features):
    with_gaps = with_columns(pool, unrelaxed_energy_per_atom=np.where(np.arange(N) == 3, np.nan, CHEAP))
    for p in (pool, with_gaps):
        c = Campaign(p, TableOracle(), seed=2, features=features)
        assert (c.initial, c.n_initial, c.strategy) == ("random", 10, "lcb")
        h = c.run(12)
        assert list(h["strategy"]) == ["initial"] * 10 + ["lcb"] * 2
        assert h["reason"][0] == "Random pick for initial label 1 of 10 (seed 2)."
    # the same seed picks the same candidates on both pools: the cheap column is not used
    assert Campaign(pool, TableOracle(), seed=2, features=features).run(10)["index"].tolist() \
        == Campaign(with_gaps, TableOracle(), seed=2, features=features).run(10)["index"].tolist()


def test_initial_chooses_the_start_and_a_strategy_given_is_kept(cheap_pool, features):
    c = Campaign(cheap_pool, TableOracle(), features=features, initial="random", seed=4)
    assert (c.n_initial, c.strategy) == (10, "lcb")
    assert set(c.run(10)["strategy"]) == {"initial"}
    c = Campaign(cheap_pool, TableOracle(), features=features, initial="ewald_energy_per_atom",
                 strategy="ei", n_initial=4)
    assert list(c.run(5)["strategy"]) == ["cheap ranking"] * 4 + ["ei"]
    assert list(c.history["index"][:4]) == list(np.argsort(CHEAP[::-1])[:4])


@pytest.mark.parametrize("initial, message", [
    ("min_li_li_typo", "initial='min_li_li_typo' is neither 'random' nor a column of the pool's "
                       "reference table (cell_size, energy_per_atom, min_li_li)."),
    (3, "initial=3 is neither 'random' nor a column"),
])
def test_an_unknown_initial_is_refused_in_one_line(pool, features, initial, message):
    with pytest.raises(CampaignError) as err:
        Campaign(pool, TableOracle(), features=features, initial=initial)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_cheap_column_with_gaps_is_refused_when_asked_for(pool, features):
    gaps = with_columns(pool, ewald_energy_per_atom=np.where(np.arange(N) < 2, np.nan, CHEAP))
    with pytest.raises(CampaignError, match=r"initial='ewald_energy_per_atom': 2 candidates have no "
                                            r"finite value in that column; give a cheap energy"):
        Campaign(gaps, TableOracle(), features=features, initial="ewald_energy_per_atom")


def test_a_skipped_cheap_pick_passes_to_the_next_lowest_and_is_not_counted(cheap_pool, features):
    c = Campaign(cheap_pool, TableOracle(), features=features)
    assert c.suggest().index == CHEAP_ORDER[0]
    c.skip("did not converge")
    assert c.suggest().index == CHEAP_ORDER[1]
    c.step()
    q = c.suggest()
    assert (q.index, q.strategy) == (CHEAP_ORDER[2], "cheap ranking")
    c.submit(-4.2, index=40)  # a label given by hand counts towards the head start
    assert c.suggest().strategy == "greedy"


@pytest.mark.parametrize("stop", [1, 5])
def test_a_resumed_head_start_campaign_makes_the_same_picks(cheap_pool, features, tmp_path, stop):
    straight = Campaign(cheap_pool, TableOracle(), features=features)
    straight.run(10)
    path = tmp_path / "labels.jsonl"
    c = Campaign(cheap_pool, TableOracle(), features=features, ledger_path=path)
    c.run(stop)
    del c
    gc.collect()
    again = Campaign(cheap_pool, TableOracle(), features=features, ledger_path=path)
    again.run(10 - stop)
    cols = ["index", "strategy", "reason", "energy"]
    pd.testing.assert_frame_equal(again.history[cols], straight.history[cols])
    np.testing.assert_allclose(again.history["mu"], straight.history["mu"], rtol=1e-12)


def test_the_shipped_pool_starts_from_its_two_lowest_unrelaxed_energies():
    pool = load_pool()
    X = np.zeros((len(pool), 1))  # no fit happens during the head start
    c = Campaign(pool, TableOracle(), features=X)
    unrelaxed = pd.read_csv(POOL_DIR / "li6ps5cl.csv", index_col="id")["unrelaxed_energy_per_atom"]
    assert [q["id"] for _, q in c.run(2).iterrows()] == list(unrelaxed.nsmallest(2).index)


# ---------------------------------------------------------------- inputs refused in one line (issue 18)
@pytest.mark.parametrize("budget", ["5", 0, -1, 2.5, True, np.nan])
def test_a_budget_that_is_not_a_whole_number_from_1_is_refused(new, budget):
    with pytest.raises(CampaignError, match=r"^budget must be a whole number of labels, 1 or more, or "
                                            r"None for no limit; got .*\.$") as refused:
        new(TableOracle(), budget=budget)
    assert "\n" not in str(refused.value)
    c = new(TableOracle(), budget=np.int64(5))  # numpy's integers are whole numbers too
    assert c.budget == 5 and type(c.budget) is int


def test_a_strategy_without_best_is_refused_when_the_campaign_is_made(new):
    def lowest(mu, sigma):
        return -mu

    with pytest.raises(AcquisitionError, match=r"^Strategy 'lowest' cannot be called as lowest\(mu, sigma, "
                                               r"\*, best=None, rng=None\) .*\*\*kwargs\)\.$"):
        new(TableOracle(), strategy=lowest)
    c = new(TableOracle(), strategy="greedy", n_initial=2)
    with pytest.raises(AcquisitionError, match="'lowest' cannot be called"):
        c.set_strategy(lowest)
    assert c.strategy == "greedy"  # unchanged


def test_a_strategy_that_returns_text_is_refused_and_nothing_is_recorded(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), strategy=lambda mu, sigma, **kw: ["pick me"] * len(mu), n_initial=2,
            ledger_path=path)
    c.run(2)
    size = path.stat().st_size
    with pytest.raises(AcquisitionError, match=r"must return one number per candidate; it returned str"):
        c.step()
    assert path.stat().st_size == size and c.n_labels == 2


def test_something_that_is_no_oracle_is_refused_when_the_campaign_is_made(new):
    from almat.oracles import OracleError

    with pytest.raises(OracleError, match="is not an oracle"):
        new(object())
    c = new(TableOracle())
    with pytest.raises(OracleError, match="is not an oracle"):
        c.oracle = "chgnet"
    assert c.oracle.name == "table"


def test_an_action_bound_to_a_query_is_refused_once_the_campaign_moved_on(new, tmp_path):
    path = tmp_path / "labels.jsonl"
    c = new(TableOracle(), ledger_path=path, n_initial=2)
    shown = c.suggest()
    c.step()
    size = path.stat().st_size
    for act in (lambda: c.submit(-4.2, query=shown), lambda: c.skip("no", query=shown),
                lambda: c.step(query=shown), lambda: c.undo(n_events=0)):
        with pytest.raises(StaleQueryError, match=rf"^The campaign moved on \(step 1 labelled {shown.id}\)"):
            act()
    assert path.stat().st_size == size
    with pytest.raises(CampaignError, match="index= or as query=, not both"):
        c.submit(-4.2, index=3, query=c.suggest())
    other = replace(c.suggest(), id="c9-000000")
    with pytest.raises(CampaignError, match="is not in pool"):
        c.submit(-4.2, query=other)
    assert c.submit(-4.2, query=c.suggest())["step"] == 2


def test_a_labels_file_of_format_3_replays_with_its_energies_named_energy(tmp_path):
    # Written by almat at format 3 (before the energy was named "energy"): three labels, a skip,
    # a change of strategy, two labels, an undo and a label typed by hand, on the shipped pool.
    old = Path(__file__).parent / "data" / "labels-format-3.jsonl"
    path = tmp_path / "old.jsonl"
    shutil.copy(old, path)
    written = [json.loads(line) for line in old.read_text().splitlines()]
    assert written[0]["format"] == 3 and all("energy" not in e for e in written)
    c = Campaign(load_pool(), TableOracle(), strategy="lcb", seed=0, ledger_path=path)
    energies = [e["label"] for e in written[1:] if e["type"] == "label"]
    assert c.history["energy"].dropna().tolist() == energies
    assert c.labelled["energy"].tolist() == energies[:4] + energies[5:]  # the undone label no longer counts
    assert c.labelled["labelled_by"].tolist()[-1] == "by hand" and c.n_labels == 5
    c.step()  # goes on, appending a line that names its energy "energy"
    assert "energy" in json.loads(path.read_text().splitlines()[-1])
    again = Campaign(load_pool(), TableOracle(), strategy="lcb", seed=0, ledger_path=path)
    assert again.history["energy"].dropna().tolist() == c.history["energy"].dropna().tolist()
