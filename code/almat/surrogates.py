"""Surrogate models: predict an energy and its uncertainty from features.

Both models follow scikit-learn's estimator conventions (``fit(X, y)``
returns the model, ``predict(X, return_std=True)`` returns the mean and the
standard deviation, ``get_params``/``clone`` work)::

    model = BayesianClusterExpansion().fit(X_labelled, y_labelled)
    mu, sigma = model.predict(X_pool, return_std=True)    # eV/atom

* :class:`BayesianClusterExpansion` (the default): a cluster expansion
  ``E = J_0 + Σ_α J_α Φ_α`` fitted by Bayesian linear regression.
* :class:`GaussianProcessSurrogate`: a Gaussian process on the same features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import StandardScaler

from almat.errors import AlmatError


class SurrogateError(AlmatError, ValueError):
    """Training or query data a surrogate cannot use."""


class SurrogateNotFittedError(SurrogateError, NotFittedError):
    """``predict`` was called before ``fit``."""


def _features(X: Any, what: str = "X") -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise SurrogateError(f"{what} must be a numeric array of shape (n_samples, n_features): {exc}") from exc
    if arr.ndim != 2:
        raise SurrogateError(
            f"{what} must be 2-D, (n_samples, n_features); got shape {arr.shape}. "
            "For a single sample use X.reshape(1, -1)."
        )
    if arr.shape[0] == 0:
        raise SurrogateError(f"{what} has no rows.")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise SurrogateError(
            f"{what} has {bad.sum()} NaN or infinite values (first at row {rows[0]}, column {cols[0]}). "
            "Check the featurizer output; a custom featurizer must return finite numbers."
        )
    return arr


def _targets(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y, dtype=float).ravel()
    if len(arr) != n:
        raise SurrogateError(f"X has {n} rows but y has {len(arr)} values; give one energy per row.")
    if not np.all(np.isfinite(arr)):
        raise SurrogateError("y has NaN or infinite energies; drop skipped candidates before fitting.")
    return arr


class _Surrogate(RegressorMixin, BaseEstimator):
    """Shared input checks and prediction: fit sets ``scaler_``, ``model_`` and
    ``n_features_in_``; predict refuses anything else."""

    def _check_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X = _features(X)
        y = _targets(y, len(X))
        if len(X) < 2:
            raise SurrogateError(f"At least 2 labelled samples are needed to fit a {type(self).__name__}.")
        return X, y

    def predict(self, X: Any, return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted energies (eV/atom), and their standard deviations when ``return_std``."""
        X = self._check_predict(X)
        return self.model_.predict(self.scaler_.transform(X), return_std=return_std)

    def _check_predict(self, X: Any) -> np.ndarray:
        if not hasattr(self, "n_features_in_"):
            raise SurrogateNotFittedError(
                f"This {type(self).__name__} has not been fitted yet: call .fit(X, y) with the "
                "labelled candidates before .predict(X)."
            )
        arr = _features(X)
        if arr.shape[1] != self.n_features_in_:
            raise SurrogateError(
                f"X has {arr.shape[1]} feature columns but the model was fitted on {self.n_features_in_}. "
                "Use the same featurizer for training and prediction."
            )
        return arr


class BayesianClusterExpansion(_Surrogate):
    """Cluster expansion fitted by Bayesian ridge regression (the default surrogate).

    The model is ``y = J_0 + Σ_k J_k x_k + ε`` with a Gaussian prior
    ``J_k ~ N(0, 1/λ)`` and noise ``ε ~ N(0, 1/α)``; ``α`` and ``λ`` are set by
    maximising the evidence (scikit-learn's :class:`~sklearn.linear_model.BayesianRidge`).
    Features are standardised (zero mean, unit variance) so that one prior
    width suits all of them, and targets are centred.

    The predictive standard deviation is
    ``σ(x) = sqrt(1/α + x^T Σ x)`` (noise plus posterior uncertainty of the
    coefficients, ``Σ`` the posterior covariance), in the units of ``y``.

    Parameters
    ----------
    alpha_init, lambda_init
        Starting noise and weight precisions for the evidence maximisation;
        scikit-learn's defaults (``1/Var(y)`` and 1) when None.
    standardize
        Scale every feature to unit variance before fitting.

    Attributes
    ----------
    coef_
        ``J_k`` in the units of ``y`` per unit of the (unscaled) feature.
    intercept_
        ``J_0``.
    alpha_, lambda_
        Fitted noise and weight precisions (of the scaled problem).
    """

    def __init__(self, alpha_init: float | None = None, lambda_init: float | None = None,
                 standardize: bool = True) -> None:
        self.alpha_init = alpha_init
        self.lambda_init = lambda_init
        self.standardize = standardize

    def fit(self, X: Any, y: Any) -> BayesianClusterExpansion:
        """Fit to features ``X`` (n, k) and energies ``y`` (n,)."""
        X, y = self._check_fit(X, y)
        self.scaler_ = StandardScaler(with_std=self.standardize).fit(X)
        self.model_ = BayesianRidge(alpha_init=self.alpha_init, lambda_init=self.lambda_init, fit_intercept=True)
        self.model_.fit(self.scaler_.transform(X), y)
        self.coef_ = self.model_.coef_ / self.scaler_.scale_ if self.standardize else self.model_.coef_.copy()
        self.intercept_ = float(self.model_.intercept_ - self.coef_ @ self.scaler_.mean_)
        self.alpha_ = float(self.model_.alpha_)
        self.lambda_ = float(self.model_.lambda_)
        self.n_features_in_ = X.shape[1]
        return self

    def sample_y(self, X: Any, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Energies (eV/atom) of ``X`` under coefficients drawn from the posterior, shape (n, n_samples).

        Each draw is ``J ~ N(m, Σ)``, the posterior of the coefficients, and gives
        ``μ(x) + (x − x̄) (J − m)`` for every row (``x̄`` the mean of the scaled
        training features): the model's energy function, without the noise ``1/α``.
        ``random_state`` is a seed or a :class:`numpy.random.Generator`.
        """
        X = self._check_predict(X)
        rng = np.random.default_rng(random_state)
        model = self.model_
        values, vectors = np.linalg.eigh(model.sigma_)  # Σ = V diag(λ) Vᵀ, symmetric
        spread = vectors * np.sqrt(np.clip(values, 0.0, None))
        shifts = spread @ rng.standard_normal((len(values), int(n_samples)))  # J − m, one column per draw
        scaled = self.scaler_.transform(X)
        return model.predict(scaled)[:, None] + (scaled - model.X_offset_) @ shifts


class GaussianProcessSurrogate(_Surrogate):
    """Gaussian-process regression on the features.

    Default kernel on standardised features:
    ``k(x, x') = c · Matern_{ν=5/2}(|x - x'| / ℓ) + s² δ(x, x')``, with the
    amplitude ``c``, length ``ℓ`` and noise ``s²`` fitted by maximising the
    marginal likelihood; targets are normalised (``normalize_y=True``). The
    predictive standard deviation includes the fitted noise ``s``, so it is
    small, not exactly zero, at training points.

    Parameters
    ----------
    kernel
        A scikit-learn kernel to use instead of the default.
    seed
        Seed for the optimiser restarts.
    n_restarts
        Extra optimiser starts from random hyperparameters.
    """

    def __init__(self, kernel: Kernel | None = None, seed: int = 0, n_restarts: int = 2) -> None:
        self.kernel = kernel
        self.seed = seed
        self.n_restarts = n_restarts

    def fit(self, X: Any, y: Any) -> GaussianProcessSurrogate:
        """Fit to features ``X`` (n, k) and energies ``y`` (n,)."""
        X, y = self._check_fit(X, y)
        kernel = self.kernel
        if kernel is None:
            kernel = (ConstantKernel(1.0, (1e-5, 1e5)) * Matern(length_scale=np.sqrt(X.shape[1]),
                                                                length_scale_bounds=(1e-2, 1e3), nu=2.5)
                      + WhiteKernel(1e-2, (1e-8, 1e1)))
        self.scaler_ = StandardScaler().fit(X)
        self.model_ = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                               n_restarts_optimizer=self.n_restarts, random_state=self.seed)
        self.model_.fit(self.scaler_.transform(X), y)
        self.kernel_ = self.model_.kernel_
        self.n_features_in_ = X.shape[1]
        return self

    def sample_y(self, X: Any, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Energies (eV/atom) of ``X`` drawn jointly from the posterior process, shape (n, n_samples)."""
        X = self._check_predict(X)
        seed = np.random.default_rng(random_state).integers(2**32)
        return self.model_.sample_y(self.scaler_.transform(X), n_samples, random_state=int(seed))
