"""Acquisition: hand-derived scores, orderings on small pools, names, explanations and bad input."""

import functools
import math

import numpy as np
import pytest

from almat.acquisition import (
    STRATEGIES,
    AcquisitionError,
    Strategy,
    as_strategy,
    expected_improvement,
    explain,
    get_strategy,
    greedy,
    lcb,
    random,
    uncertainty,
)

# three candidates: μ - 2σ = [-0.02, -0.10, -0.05]
MU = np.array([0.0, 0.1, -0.05])
SIGMA = np.array([0.01, 0.1, 0.0])


def ranking(scores):
    return list(np.argsort(-scores, kind="stable"))


def test_lcb_greedy_uncertainty_rank_three_candidates():
    assert ranking(lcb(MU, SIGMA)) == [1, 2, 0]
    np.testing.assert_allclose(lcb(MU, SIGMA), [0.02, 0.10, 0.05])
    assert ranking(lcb(MU, SIGMA, kappa=0.0)) == ranking(greedy(MU, SIGMA)) == [2, 0, 1]
    assert ranking(uncertainty(MU, SIGMA)) == [1, 0, 2]


def test_ei_closed_forms():
    # μ = best, σ = 1: EI = σ φ(0) = 1/sqrt(2π)
    assert expected_improvement([0.0], [1.0], best=0.0)[0] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-12)
    # σ = 0: EI = max(best - μ - ξ, 0)
    np.testing.assert_allclose(expected_improvement([-1.0, 1.0], [0.0, 0.0], best=0.0, xi=0.25), [0.75, 0.0])
    # μ = best - σ, z = 1: EI = σ (Φ(1) + φ(1)); Φ(1) = (1 + erf(1/√2)) / 2
    cdf1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    pdf1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    assert expected_improvement([-4.2], [0.1], best=-4.1)[0] == pytest.approx(0.1 * (cdf1 + pdf1), rel=1e-10)


def test_ei_matches_monte_carlo():
    """EI is the mean of max(best - ξ - E, 0) over E ~ N(μ, σ²)."""
    rng = np.random.default_rng(0)
    mu, sigma, best, xi = -4.10, 0.02, -4.105, 0.001
    samples = rng.normal(mu, sigma, size=2_000_000)
    expected = np.maximum(best - xi - samples, 0).mean()
    assert expected_improvement([mu], [sigma], best=best, xi=xi)[0] == pytest.approx(expected, rel=5e-3)


def test_ei_prefers_low_mean_then_high_sigma():
    scores = expected_improvement([0.0, 0.0, -0.1], [0.01, 0.1, 0.01], best=0.0)
    assert ranking(scores) == [2, 1, 0]


def test_random_is_seeded_and_uniform():
    a = random(np.zeros(1000), np.zeros(1000), rng=np.random.default_rng(5))
    b = random(np.zeros(1000), np.zeros(1000), rng=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random(np.zeros(1000), np.zeros(1000), rng=6))
    assert a.min() >= 0 and a.max() < 1 and abs(a.mean() - 0.5) < 0.05


def test_strategies_leave_input_alone():
    mu, sigma = MU.copy(), SIGMA.copy()
    for func in STRATEGIES.values():
        func(mu, sigma, best=0.0, rng=0)
    np.testing.assert_array_equal(mu, MU)
    np.testing.assert_array_equal(sigma, SIGMA)


def test_get_strategy():
    assert set(STRATEGIES) == {"random", "uncertainty", "greedy", "lcb", "ei"}
    assert get_strategy("LCB") is lcb
    assert get_strategy("expected_improvement") is expected_improvement

    def mine(mu, sigma, **kwargs):
        return -np.abs(mu)

    assert get_strategy(mine) is mine
    with pytest.raises(AcquisitionError, match="random, uncertainty, greedy, lcb, ei"):
        get_strategy("thompson")
    with pytest.raises(AcquisitionError, match="Unknown"):
        get_strategy(3)


def test_explain():
    assert explain("lcb", -4.1, 0.0115) == (
        "LCB: μ − 2σ = -4.1230 eV/atom, the lowest of the pool (μ ± σ = -4.1000 ± 0.0115 eV/atom).")
    for name in ("random", "uncertainty", "greedy", "lcb", "ei"):  # one unit on the line: eV/atom
        text = explain(name, -4.1, 0.0115, best=-4.09)
        assert "meV" not in text and "0.0115" in text, text
    assert "μ − 1σ = -4.1100" in explain("lcb", -4.1, 0.01, kappa=1.0)
    assert "σ = 0.0115 eV/atom" in explain("uncertainty", -4.1, 0.0115)
    assert "μ = -4.1000 eV/atom" in explain("greedy", -4.1, 0.0115)
    assert "Random" in explain("random", -4.1, 0.0115)
    ei_text = explain("ei", -4.1, 0.0, best=-4.09)  # σ = 0: EI = best - μ = 10 meV/atom
    assert "0.01000 eV/atom below the best label -4.0900" in ei_text

    def mine(mu, sigma, **kwargs):
        return -mu

    assert "'mine'" in explain(mine, -4.1, 0.01)


def test_bad_input():
    with pytest.raises(AcquisitionError, match="same length"):
        lcb([0.0, 1.0], [0.1])
    with pytest.raises(AcquisitionError, match="NaN"):
        greedy([np.nan], [0.1])
    with pytest.raises(AcquisitionError, match="negative"):
        uncertainty([0.0], [-0.1])
    with pytest.raises(AcquisitionError, match="best="):
        expected_improvement([0.0], [0.1])
    with pytest.raises(AcquisitionError, match="kappa"):
        lcb([0.0], [0.1], kappa=-1)


def test_a_strategy_is_resolved_once_into_name_function_and_explanation():
    s = as_strategy("LCB")
    assert s == Strategy("lcb", lcb) and as_strategy(s) is s
    assert as_strategy("expected_improvement").name == "ei"
    gentle = as_strategy(functools.partial(lcb, kappa=0.5))
    assert gentle.name == "lcb(kappa=0.5)"
    assert "μ − 0.5σ = -4.1050" in gentle.explain(-4.1, 0.01)  # the partial's kappa, not 2
    np.testing.assert_array_equal(gentle(MU, SIGMA), lcb(MU, SIGMA, kappa=0.5))

    def mine(mu, sigma, *, best=None, rng=None):
        return -mu

    assert as_strategy(mine).name == "mine" and "'mine'" in as_strategy(mine).explain(-4.1, 0.01)
    with pytest.raises(AcquisitionError, match="thompson"):
        as_strategy("thompson")


@pytest.mark.parametrize("bad", [lambda mu, sigma, **kw: mu[:-1], lambda mu, sigma, **kw: mu * np.nan])
def test_a_strategy_must_return_one_finite_score_per_candidate(bad):
    with pytest.raises(AcquisitionError, match="one finite score per candidate"):
        as_strategy(bad)(MU, SIGMA)


def test_a_strategy_that_returns_text_is_refused_in_one_line():
    def words(mu, sigma, **kwargs):
        return np.array(["high"] * len(mu))

    with pytest.raises(AcquisitionError, match=r"^Strategy 'words' must return one number per "
                                               r"candidate; it returned str\d* values such as 'high'\.$"):
        as_strategy(words)(MU, SIGMA)
    with pytest.raises(AcquisitionError, match="one number per candidate"):
        as_strategy(lambda mu, sigma, **kw: [None] * len(mu))(MU, SIGMA)


def test_a_strategy_without_the_best_keyword_is_refused_when_it_is_chosen():
    def plain(mu, sigma):
        return -mu

    with pytest.raises(AcquisitionError) as refused:
        as_strategy(plain)
    message = str(refused.value)
    assert "\n" not in message and "'plain'" in message
    assert "def plain(mu, sigma, *, best=None, rng=None, **kwargs)" in message
    as_strategy(lambda mu, sigma, **kw: -mu)  # **kwargs takes best and rng
    as_strategy(functools.partial(lcb, kappa=1.0))  # a partial of ours too


@pytest.mark.parametrize("kappa", [np.nan, np.inf, -1, "2", None, True])
def test_lcb_refuses_a_kappa_that_is_not_a_finite_number_from_0(kappa):
    with pytest.raises(AcquisitionError, match=r"^kappa must be a finite number >= 0; got "):
        lcb(MU, SIGMA, kappa=kappa)
