"""Surrogates: recover a known linear model, shrink uncertainty with data, follow sklearn conventions."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from almat.surrogates import (
    BayesianClusterExpansion,
    GaussianProcessSurrogate,
    SurrogateError,
    SurrogateNotFittedError,
)

TRUE_COEF = np.array([0.05, -0.02, 0.0, 0.01, -0.04])
TRUE_INTERCEPT = -4.1


def linear_data(n, noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    # features on different scales, as cluster correlations and distance counts are
    X = rng.normal(size=(n, 5)) * np.array([1.0, 0.5, 2.0, 0.1, 1.0])
    y = TRUE_INTERCEPT + X @ TRUE_COEF + rng.normal(scale=noise, size=n)
    return X, y


@pytest.mark.parametrize("standardize", [True, False])
def test_bayesian_ce_recovers_known_coefficients(standardize):
    X, y = linear_data(300)
    model = BayesianClusterExpansion(standardize=standardize).fit(X, y)
    np.testing.assert_allclose(model.coef_, TRUE_COEF, atol=2e-3)
    assert model.intercept_ == pytest.approx(TRUE_INTERCEPT, abs=1e-3)
    # coef_ and intercept_ are in the units of the raw features
    np.testing.assert_allclose(model.predict(X), model.intercept_ + X @ model.coef_, atol=1e-10)
    # the fitted noise precision matches the noise put in (σ = 2 meV)
    assert 1 / np.sqrt(model.alpha_) == pytest.approx(0.002, rel=0.2)


def test_bayesian_ce_std_shrinks_with_data():
    """σ² = 1/α (noise) + xᵀΣx (coefficients); the coefficient part shrinks as labels come in."""
    X_test, _ = linear_data(200, seed=9)
    epistemic, total = [], []
    for n in (10, 100, 1000):
        X, y = linear_data(n, seed=1)
        model = BayesianClusterExpansion().fit(X, y)
        _, std = model.predict(X_test, return_std=True)
        epistemic.append(np.sqrt(np.mean(std**2 - 1 / model.alpha_)))
        total.append(std.mean())
    # ~ σ·sqrt(k/n): about a factor sqrt(10) per step
    assert epistemic[0] > 2 * epistemic[1] > 4 * epistemic[2]
    assert total[2] == pytest.approx(0.002, rel=0.2)  # down to the 2 meV noise put in


def test_bayesian_ce_leaves_input_alone():
    X, y = linear_data(20)
    X0, y0 = X.copy(), y.copy()
    BayesianClusterExpansion().fit(X, y).predict(X, return_std=True)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_gp_interpolates_training_points():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(40, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    model = GaussianProcessSurrogate().fit(X, y)
    mu, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(mu, y, atol=0.01)
    far = model.predict(np.array([[6.0, 6.0], [-6.0, 6.0]]), return_std=True)[1]
    assert std.max() < 0.02
    assert far.min() > 20 * std.max()


def test_gp_accepts_a_kernel_and_seed_is_a_param():
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    X, y = linear_data(30)
    model = GaussianProcessSurrogate(kernel=RBF(3.0) + WhiteKernel(1e-4), seed=3).fit(X, y)
    assert "RBF" in str(model.kernel_)
    assert model.get_params()["seed"] == 3


@pytest.mark.parametrize("cls", [BayesianClusterExpansion, GaussianProcessSurrogate])
def test_sklearn_conventions(cls):
    model = cls()
    params = model.get_params()
    copy = clone(model.set_params(**params))
    assert copy.get_params() == params
    X, y = linear_data(25)
    assert model.fit(X, y) is model
    assert not hasattr(clone(model), "n_features_in_")  # clone is unfitted
    assert model.predict(X).shape == (25,)
    mu, std = model.predict(X, return_std=True)
    assert mu.shape == std.shape == (25,) and np.all(std > 0)
    assert model.score(X, y) > 0.9  # RegressorMixin's R²


@pytest.mark.parametrize("cls", [BayesianClusterExpansion, GaussianProcessSurrogate])
def test_clear_errors(cls):
    X, y = linear_data(10)
    with pytest.raises(SurrogateNotFittedError, match="fit"):
        cls().predict(X)
    assert issubclass(SurrogateNotFittedError, NotFittedError)
    assert issubclass(SurrogateNotFittedError, ValueError)
    model = cls().fit(X, y)
    with pytest.raises(SurrogateError, match="4 feature columns but the model was fitted on 5"):
        model.predict(X[:, :4])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(SurrogateError, match="row 3, column 2"):
        model.predict(bad)
    with pytest.raises(SurrogateError, match="NaN"):
        cls().fit(bad, y)
    with pytest.raises(SurrogateError, match="one energy per row"):
        cls().fit(X, y[:-1])
    with pytest.raises(SurrogateError, match="2-D"):
        model.predict(X[0])
    with pytest.raises(SurrogateError, match="NaN or infinite energies"):
        cls().fit(X, np.where(np.arange(10) == 2, np.inf, y))
