"""Discovery metrics and cheap baselines, against hand counts and a Monte Carlo of random picking."""

import numpy as np
import pandas as pd
import pytest

import almat
from almat.evaluation import (Goals, baseline_curves, compare_strategies, discovery_metrics, quartiles,
                              random_expectation, run_until, subsample, summarize)


def test_metrics_by_hand():
    goals = Goals.of([3.0, 1.0, 2.0, 5.0, 4.0], tolerance=1.0, top=2)
    assert (goals.minimum, goals.near, goals.top, goals.n, goals.n_near) == (1.0, 2.0, 2.0, 5, 2)
    m = discovery_metrics([3.0, 5.0, 2.0, 1.0], goals, of_top=2, at=2)
    # minimum at the 4th label, first label <= 2.0 at the 3rd, both of the 2 lowest by the 4th,
    # and none of the first 2 labels is near the minimum
    assert m == {"to_minimum": 4, "to_near": 3, "to_top": 4, "daf": 0.0}
    # 1 hit in the first 2 labels against 2/5 expected: 0.5 / 0.4
    assert discovery_metrics([2.0, 5.0], goals, at=2)["daf"] == pytest.approx(1.25)
    assert discovery_metrics([5.0, 4.0], goals)["to_minimum"] is None


def test_random_expectation_matches_a_simulation():
    rng = np.random.default_rng(0)
    energies = rng.normal(size=60)
    goals = Goals.of(energies, tolerance=0.3, top=5)
    exact = random_expectation(goals, of_top=3)
    runs = [discovery_metrics(energies[rng.permutation(60)], goals, of_top=3) for _ in range(20000)]
    for key in ("to_minimum", "to_near", "to_top"):
        assert np.mean([r[key] for r in runs]) == pytest.approx(exact[key], rel=0.02), key
    assert np.mean([r["daf"] for r in runs]) == pytest.approx(1.0, rel=0.03)


def test_baselines_label_in_the_order_of_a_cheap_energy():
    pool = almat.load_pool()
    curves = baseline_curves(pool)
    assert set(curves["strategy"]) == {"Ewald order", "unrelaxed order"}
    ewald = curves[curves["strategy"] == "Ewald order"]
    order = np.argsort(pool.reference["ewald_energy_per_atom"].to_numpy(), kind="stable")
    assert np.array_equal(ewald["energy"].to_numpy(), pool.energies[order])
    assert len(ewald) == len(pool) and ewald["regret_meV"].iloc[-1] == 0


def test_summarize_counts_runs_that_never_found_the_minimum_as_budget_plus_one():
    energies = np.array([1.0, 2.0, 3.0, 4.0])
    curves = pd.concat([
        pd.DataFrame({"strategy": "a", "seed": s, "n_labels": [1, 2], "energy": labels})
        for s, labels in enumerate([[2.0, 1.0], [3.0, 4.0], [1.0, 2.0]])])
    table = summarize(curves, energies, tolerance=0.5, top=2, of_top=1, at=2)
    assert table.loc["a", "to_minimum"] == 2  # median of 2, 3 (never: budget + 1), 1
    assert table.loc["a", "found"] == "2/3"
    assert table.loc["random (expected)", "to_minimum"] == 2.5


def test_quartiles_are_numpys_linear_percentiles_by_hand():
    assert quartiles([5, 1, 3, 2, 4]) == (3.0, 2.0, 4.0)
    # four values: the quartiles lie 3/4 and 9/4 of the way along the sorted 1, 2, 3, 4
    assert quartiles([4, 3, 2, 1]) == (2.5, 1.75, 3.25)


def test_a_subsample_is_a_fixed_random_fraction_in_pool_order():
    pool = almat.load_pool()
    sub, idx = subsample(pool, 0.8, seed=3)
    assert len(sub) == len(idx) == 504  # 0.8 * 630
    assert np.all(np.diff(idx) > 0)
    assert sub.ids == [pool.ids[i] for i in idx]
    np.testing.assert_array_equal(sub.energies, pool.energies[idx])
    np.testing.assert_array_equal(subsample(pool, 0.8, seed=3)[1], idx)
    assert not np.array_equal(subsample(pool, 0.8, seed=4)[1], idx)
    with pytest.raises(almat.AlmatError, match=r"fraction must lie in \(0, 1\]; got 1.5"):
        subsample(pool, 1.5)


def test_run_until_stops_at_the_first_label_at_or_below_the_target():
    pool = almat.load_pool().subset(np.arange(40), name="first40")
    order = np.argsort(pool.reference["unrelaxed_energy_per_atom"].to_numpy(), kind="stable")
    target = np.sort(pool.energies)[5]
    # no fit is needed: a head start as long as the budget labels in the cheap order
    campaign = almat.Campaign(pool, almat.TableOracle(), features=np.zeros((40, 1)), n_initial=40)
    labels = run_until(campaign, target)
    hit = int(np.flatnonzero(pool.energies[order] <= target)[0])
    np.testing.assert_array_equal(labels, pool.energies[order[:hit + 1]])
    campaign.budget = len(labels) + 3  # a target never reached: stops when the budget is spent
    assert len(run_until(campaign, target - 1.0)) == len(labels) + 3


def test_compare_strategies_takes_a_list_of_seeds_and_the_campaigns_start():
    pool = almat.load_pool().subset(np.arange(40), name="first40")
    X = np.random.default_rng(0).normal(size=(40, 3))
    curves = compare_strategies(pool, ["random"], seeds=[7, 9], n_labels=4, features=X,
                                initial="random", n_initial=2)
    assert sorted(set(curves["seed"])) == [7, 9]
    for seed, run in curves.groupby("seed"):
        alone = almat.Campaign(pool, almat.TableOracle(), strategy="random", seed=seed, features=X,
                               initial="random", n_initial=2, budget=4)
        np.testing.assert_array_equal(run["energy"], run_until(alone))
