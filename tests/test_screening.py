"""Screening: the surrogate ranks every candidate, and the ranking is what predict() says."""

import numpy as np
import pytest

import almat
from almat.enumeration import enumerate_table
from almat.pool_build import make_pool
from almat.screening import ScreeningError, screen
from almat.structures import min_li_li


@pytest.fixture(scope="module")
def trained(half):
    """A cluster expansion fitted to a synthetic energy: +50 meV per Li on both ends of a 1.8 A pair."""
    table = enumerate_table(half, 1)
    pool = make_pool(table, name="size1")
    energy = -4.3 + 0.05 * (pool.reference["min_li_li"] < 2.0)
    featurizer = almat.ClusterVectorFeaturizer(half)
    model = almat.BayesianClusterExpansion().fit(featurizer.transform(pool), energy)
    return featurizer, model


def test_screen_returns_the_lowest_predictions_in_order(half, trained):
    featurizer, model = trained
    space = make_pool(enumerate_table(half, 1), name="again")
    out = screen(space, model, featurizer, top=5, kappa=1.0)
    mu, sigma = model.predict(featurizer.transform(space), return_std=True)
    score = mu - sigma
    assert list(out["score"]) == pytest.approx(sorted(score)[:5])
    assert np.all(np.diff(out["score"]) >= 0)
    assert out.attrs["n_screened"] == 48


@pytest.mark.slow
def test_screen_all_of_cell_size_2(half, trained):
    featurizer, model = trained
    space = make_pool(enumerate_table(half, 2, 2), name="cell size 2")
    assert len(space) == 395_632
    out = screen(space, model, featurizer, top=3)
    # The synthetic energy penalises the short pair, so the winners avoid it; check by building them.
    for i in out["index"]:
        assert min_li_li(space.structure(int(i))) > 2.0


@pytest.mark.parametrize("options, message", [
    ({"top": -5}, r"^top must be a whole number of candidates, 1 or more; got -5\.$"),
    ({"top": 0}, "top must be"),
    ({"top": float("nan")}, r"top must be .*got nan"),
    ({"top": "5"}, "top must be"),
    ({"kappa": float("nan")}, r"^kappa must be a finite number >= 0 .*got nan\.$"),
    ({"kappa": -1.0}, "kappa must be"),
])
def test_bad_top_or_kappa_is_refused_before_any_work(half, trained, options, message):
    featurizer, model = trained
    space = make_pool(enumerate_table(half, 1), name="again")

    class Untouchable:
        def transform(self, candidates):
            raise AssertionError("featurized before the options were checked")

    with pytest.raises(ScreeningError, match=message):
        screen(space, model, Untouchable(), **options)
    with pytest.raises(ScreeningError, match=message):
        screen(space, model, featurizer, **options)


def test_more_than_the_pool_returns_the_whole_pool_ranked(half, trained):
    featurizer, model = trained
    out = screen(make_pool(enumerate_table(half, 1), name="again"), model, featurizer, top=1000)
    assert len(out) == 48 and np.all(np.diff(out["score"]) >= 0)


def test_a_campaign_model_before_two_labels_is_refused_with_what_to_do(half, trained):
    featurizer, _ = trained
    campaign = almat.Campaign(make_pool(enumerate_table(half, 1), np.linspace(-4.4, -4.2, 48), name="s"),
                              almat.TableOracle(), n_initial=2)
    campaign.step()
    assert campaign.model is None  # one label: nothing fitted yet
    with pytest.raises(ScreeningError, match=r"^screen got model=None: .* two labels\. Label at least two"):
        screen(campaign.pool, campaign.model, featurizer)


class Fixed:
    """A stand-in surrogate that predicts what it is given, whatever it is asked."""

    def __init__(self, mu, sigma):
        self.mu, self.sigma = mu, sigma

    def predict(self, X, return_std=False):
        return np.asarray(self.mu), np.asarray(self.sigma)


@pytest.mark.parametrize("mu, sigma, message", [
    ([np.nan] + [-4.3] * 47, [0.01] * 48, r"NaN or infinite μ or σ for 1 of 48 candidates"),
    ([-4.3] * 48, [np.inf] * 48, r"NaN or infinite μ or σ for 48 of 48"),
    ([-4.3] * 47, [0.01] * 47, r"μ of shape \(47,\) and σ of shape \(47,\) for 48 candidates"),
    ([-4.3] * 48, [0.01] * 49, r"σ of shape \(49,\) for 48"),
    ([-4.3] * 48, [-0.01] * 48, "negative σ for 48"),
    (["low"] * 48, [0.01] * 48, "must be numbers"),
])
def test_predictions_that_are_not_one_finite_number_per_candidate_are_refused(half, trained, mu, sigma,
                                                                              message):
    featurizer, _ = trained
    space = make_pool(enumerate_table(half, 1), name="again")
    with pytest.raises(ScreeningError, match=message) as refused:
        screen(space, Fixed(mu, sigma), featurizer)
    assert "\n" not in str(refused.value)


def test_a_model_without_return_std_is_refused(half, trained):
    featurizer, _ = trained

    class MeanOnly:
        def predict(self, X):
            return np.zeros(len(X))

    with pytest.raises(ScreeningError, match=r"MeanOnly.predict\(X, return_std=True\) must return μ and σ"):
        screen(make_pool(enumerate_table(half, 1), name="again"), MeanOnly(), featurizer)
