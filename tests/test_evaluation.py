"""Discovery metrics and cheap baselines, against hand counts and a Monte Carlo of random picking."""

import numpy as np
import pandas as pd
import pytest

import almat
from almat.evaluation import Goals, baseline_curves, discovery_metrics, random_expectation, summarize


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
    assert np.array_equal(ewald["label"].to_numpy(), pool.energies[order])
    assert len(ewald) == len(pool) and ewald["regret"].iloc[-1] == 0


def test_summarize_counts_runs_that_never_found_the_minimum_as_budget_plus_one():
    energies = np.array([1.0, 2.0, 3.0, 4.0])
    curves = pd.concat([
        pd.DataFrame({"strategy": "a", "seed": s, "n_labels": [1, 2], "label": labels})
        for s, labels in enumerate([[2.0, 1.0], [3.0, 4.0], [1.0, 2.0]])])
    table = summarize(curves, energies, tolerance=0.5, top=2, of_top=1, at=2)
    assert table.loc["a", "to_minimum"] == 2  # median of 2, 3 (never: budget + 1), 1
    assert table.loc["a", "found"] == "2/3"
    assert table.loc["random (expected)", "to_minimum"] == 2.5
