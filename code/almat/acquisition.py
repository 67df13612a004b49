"""Acquisition strategies: which candidate to label next, when looking for the lowest energy.

Each strategy is a plain function of the surrogate's predictions for the
unlabelled candidates, ``mu`` (predicted energy, eV/atom) and ``sigma`` (its
standard deviation, eV/atom), that returns one score per candidate. The
candidate with the HIGHEST score is labelled next::

    scores = lcb(mu, sigma, kappa=2.0)
    pick = int(np.argmax(scores))

Your own strategy is any function with the same signature,
``f(mu, sigma, *, best=None, rng=None, **kwargs) -> scores``; pass it
wherever a strategy name is accepted (:func:`get_strategy`).

A campaign resolves its strategy once, with :func:`as_strategy`, into a
:class:`Strategy`: the name it is recorded under, the score function, and
the sentence that explains a pick.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from almat.errors import AlmatError

#: A score function ``f(mu, sigma, *, best=None, rng=None, **kwargs) -> scores``.
ScoreFunction = Callable[..., np.ndarray]


class AcquisitionError(AlmatError, ValueError):
    """Predictions or a strategy name that acquisition cannot use."""


def _check(mu: Any, sigma: Any) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    if mu.ndim != 1 or mu.shape != sigma.shape:
        raise AcquisitionError(
            f"mu and sigma must be 1-D arrays of the same length, one value per candidate; got shapes "
            f"{mu.shape} and {sigma.shape}. Use model.predict(X, return_std=True)."
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise AcquisitionError("mu or sigma holds NaN or infinite values; check the surrogate's predictions.")
    if np.any(sigma < 0):
        raise AcquisitionError("sigma holds negative values; a standard deviation is never negative.")
    return mu, sigma


def random(mu: Any, sigma: Any, *, best: float | None = None,
           rng: np.random.Generator | int | None = None, **kwargs: Any) -> np.ndarray:
    """Random picking, the baseline: ``score ~ U(0, 1)``, ignoring the model.

    ``rng`` is a NumPy Generator or a seed; None means seed 0, so that runs
    repeat. A campaign passes its own Generator.
    """
    mu, _ = _check(mu, sigma)
    return np.random.default_rng(0 if rng is None else rng).random(len(mu))


def uncertainty(mu: Any, sigma: Any, *, best: float | None = None, rng: Any = None, **kwargs: Any) -> np.ndarray:
    """Uncertainty sampling (pure exploration): ``score = σ``.

    Labels the candidate the model knows least about; this improves the
    model everywhere but does not aim for low energies.
    """
    _, sigma = _check(mu, sigma)
    return sigma.copy()


def greedy(mu: Any, sigma: Any, *, best: float | None = None, rng: Any = None, **kwargs: Any) -> np.ndarray:
    """Greedy (pure exploitation): ``score = -μ``, the lowest predicted energy first."""
    mu, _ = _check(mu, sigma)
    return -mu


def lcb(mu: Any, sigma: Any, *, best: float | None = None, rng: Any = None, kappa: float = 2.0,
        **kwargs: Any) -> np.ndarray:
    """Lower confidence bound: ``score = -(μ - κσ)``.

    Picks the lowest optimistic energy ``μ - κσ``: a low prediction or a large
    uncertainty both raise the score. ``κ = 0`` is greedy; a large ``κ`` tends
    to uncertainty sampling.

    Parameters
    ----------
    kappa
        Weight ``κ`` of the uncertainty (dimensionless), 2 by default.
    """
    mu, sigma = _check(mu, sigma)
    if not isinstance(kappa, numbers.Real) or isinstance(kappa, bool) or not np.isfinite(kappa) \
            or kappa < 0:
        raise AcquisitionError(f"kappa must be a finite number >= 0; got {kappa!r}.")
    return -(mu - kappa * sigma)


def expected_improvement(mu: Any, sigma: Any, *, best: float | None = None, rng: Any = None, xi: float = 0.0,
                         **kwargs: Any) -> np.ndarray:
    """Expected improvement below the best energy so far (for minimisation).

    ``EI = (best - μ - ξ) Φ(z) + σ φ(z)`` with ``z = (best - μ - ξ) / σ``, where
    ``Φ`` and ``φ`` are the standard normal CDF and PDF: the mean amount by
    which the candidate's energy falls below ``best - ξ`` if its energy is
    ``N(μ, σ²)``. Where ``σ = 0``, ``EI = max(best - μ - ξ, 0)``. In eV/atom.

    Parameters
    ----------
    best
        Lowest energy labelled so far (eV/atom); required.
    xi
        Margin ``ξ`` (eV/atom) an improvement must exceed; 0 by default.
    """
    mu, sigma = _check(mu, sigma)
    if best is None or not np.isfinite(best):
        raise AcquisitionError(
            "Expected improvement needs best=, the lowest energy labelled so far (eV/atom), as a finite number."
        )
    gain = best - mu - xi
    ei = np.maximum(gain, 0.0)
    positive = sigma > 0
    z = gain[positive] / sigma[positive]
    ei[positive] = gain[positive] * norm.cdf(z) + sigma[positive] * norm.pdf(z)
    return ei


#: Strategies by name.
STRATEGIES: dict[str, ScoreFunction] = {
    "random": random,
    "uncertainty": uncertainty,
    "greedy": greedy,
    "lcb": lcb,
    "ei": expected_improvement,
}


def get_strategy(name_or_callable: str | ScoreFunction) -> ScoreFunction:
    """The strategy function for a name in :data:`STRATEGIES`, or your own function unchanged."""
    if callable(name_or_callable):
        return name_or_callable
    if isinstance(name_or_callable, str):
        key = name_or_callable.strip().lower()
        key = "ei" if key == "expected_improvement" else key
        if key in STRATEGIES:
            return STRATEGIES[key]
    raise AcquisitionError(
        f"Unknown acquisition strategy {name_or_callable!r}. Choose one of {', '.join(STRATEGIES)}, or pass "
        "your own function f(mu, sigma, *, best=None, rng=None, **kwargs) returning one score per "
        "candidate (highest is picked)."
    )


def explain(name: str | ScoreFunction, mu: float, sigma: float, best: float | None = None, **kwargs: Any) -> str:
    """One sentence on why a strategy picked a candidate with prediction ``mu ± sigma`` (eV/atom).

    Every energy in it, μ, σ and differences alike, is in eV/atom: one unit
    per line, so that μ and σ can be compared at a glance.

    Parameters
    ----------
    name
        Strategy name or function.
    mu, sigma
        The picked candidate's predicted energy and its standard deviation, eV/atom.
    best
        Lowest energy labelled so far (eV/atom), used by EI.
    kwargs
        The strategy's options (``kappa``, ``xi``).
    """
    func = get_strategy(name)
    pred = f"μ ± σ = {mu:.4f} ± {sigma:.4f} eV/atom"
    if func is random:
        return f"Random: picked uniformly at random ({pred}), the baseline the other strategies must beat."
    if func is uncertainty:
        return f"Uncertainty: σ = {sigma:.4f} eV/atom, the largest in the pool (μ = {mu:.4f} eV/atom)."
    if func is greedy:
        return (f"Greedy: μ = {mu:.4f} eV/atom, the lowest predicted energy in the pool "
                f"(σ = {sigma:.4f} eV/atom).")
    if func is lcb:
        kappa = float(kwargs.get("kappa", 2.0))
        return f"LCB: μ − {kappa:g}σ = {mu - kappa * sigma:.4f} eV/atom, the lowest of the pool ({pred})."
    if func is expected_improvement:
        if best is None:
            return f"EI: the largest expected improvement in the pool ({pred})."
        xi = float(kwargs.get("xi", 0.0))
        ei = float(expected_improvement([mu], [sigma], best=best, xi=xi)[0])
        return (f"EI: expected improvement {ei:.5f} eV/atom below the best label {best:.4f} eV/atom, "
                f"the largest in the pool ({pred}).")
    label = getattr(func, "__name__", "custom")
    return f"Custom strategy {label!r}: the highest score in the pool ({pred})."


def _name(func: ScoreFunction) -> str:
    for key, known in STRATEGIES.items():
        if func is known:
            return key
    if isinstance(func, functools.partial):
        args = ", ".join(f"{k}={v!r}" for k, v in func.keywords.items())
        return f"{_name(func.func)}({args})"
    return getattr(func, "__name__", type(func).__name__)


@dataclass(frozen=True)
class Strategy:
    """A query strategy resolved once: its name, its score function, and its explanations.

    Make one with :func:`as_strategy`. Calling it scores candidates like the
    function, and checks that there is one finite score per candidate.

    Attributes
    ----------
    name
        The key in :data:`STRATEGIES`, or the function's name with the
        keywords of a :func:`functools.partial`, e.g. ``"lcb(kappa=1.0)"``.
    score
        The plain score function.
    """

    name: str
    score: ScoreFunction

    def __call__(self, mu: Any, sigma: Any, *, best: float | None = None,
                 rng: np.random.Generator | None = None) -> np.ndarray:
        """Scores of the candidates with predictions ``mu`` and ``sigma`` (highest is picked)."""
        scores = np.asarray(self.score(mu, sigma, best=best, rng=rng))
        if scores.dtype.kind not in "biuf":
            raise AcquisitionError(
                f"Strategy {self.name!r} must return one number per candidate; it returned "
                f"{scores.dtype.name} values such as {str(scores.flat[0])[:30]!r}." if scores.size else
                f"Strategy {self.name!r} must return one number per candidate; it returned nothing.")
        scores = scores.astype(float)
        if scores.shape != np.shape(mu) or not np.isfinite(scores).all():
            raise AcquisitionError(
                f"Strategy {self.name!r} must return one finite score per candidate ({len(mu)}); "
                f"it returned shape {scores.shape} with {int((~np.isfinite(scores)).sum())} "
                "non-finite values."
            )
        return scores

    def explain(self, mu: float, sigma: float, best: float | None = None) -> str:
        """One sentence on why this strategy picked a candidate with prediction ``mu ± sigma`` (eV/atom)."""
        func, options = self.score, {}
        if isinstance(func, functools.partial):
            func, options = func.func, func.keywords
        return explain(func, mu, sigma, best=best, **options)


def _check_callable(func: ScoreFunction, name: str) -> None:
    """Refuse a score function that cannot be called as ``f(mu, sigma, *, best=..., rng=...)``."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some built-in callables have none: called as documented
        return
    try:
        signature.bind(np.zeros(1), np.zeros(1), best=None, rng=None)
    except TypeError as err:
        raise AcquisitionError(
            f"Strategy {name!r} cannot be called as {name}(mu, sigma, *, best=None, rng=None) "
            f"({err}); define it as def {name}(mu, sigma, *, best=None, rng=None, **kwargs).") from None


def as_strategy(strategy: str | ScoreFunction | Strategy) -> Strategy:
    """Resolve a strategy name, a score function or a :class:`Strategy` into a :class:`Strategy`.

    Raises
    ------
    AcquisitionError
        An unknown name, or a function that does not take ``mu``, ``sigma``
        and the keywords ``best`` and ``rng`` (add ``**kwargs`` to ignore them).
    """
    if isinstance(strategy, Strategy):
        return strategy
    func = get_strategy(strategy)
    name = _name(func)
    _check_callable(func, name)
    return Strategy(name, func)
