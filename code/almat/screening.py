"""Screening a whole enumeration with a trained surrogate.

Labels are expensive, predictions are not: once a surrogate has learnt from a
few hundred labels, it can rank every ordering of a cell size (395,632 for
Li6PS5Cl at cell size 2) in seconds, and the oracle labels only the few it
ranks lowest.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from almat.errors import AlmatError
from almat.features import as_featurizer, orderings_of


class ScreeningError(AlmatError, ValueError):
    """Screening was asked something it cannot answer: a bad ``top`` or ``kappa``, no model, bad predictions."""


def _checked_options(model: Any, top: Any, kappa: Any) -> None:
    """Refuse a missing model or a ``top``/``kappa`` that is not a sensible number, before any work."""
    if model is None:
        raise ScreeningError("screen got model=None: a campaign's model is None until it has two labels. "
                             "Label at least two candidates first, then pass campaign.model.")
    if not callable(getattr(model, "predict", None)):
        raise ScreeningError(f"screen needs a fitted surrogate with predict(X, return_std=True); got {model!r}.")
    if not isinstance(top, numbers.Integral) or isinstance(top, bool) or top < 1:
        raise ScreeningError(f"top must be a whole number of candidates, 1 or more; got {top!r}.")
    if not isinstance(kappa, numbers.Real) or isinstance(kappa, bool) or not np.isfinite(kappa) or kappa < 0:
        raise ScreeningError(f"kappa must be a finite number >= 0 (0 ranks by μ alone); got {kappa!r}.")


def _predictions(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's μ and σ (eV/atom) of every row of ``X``, refused unless finite and one per row."""
    name = type(model).__name__
    try:
        mu, sigma = model.predict(X, return_std=True)
    except (TypeError, ValueError) as err:  # no return_std, or not a (mu, sigma) pair
        raise ScreeningError(f"{name}.predict(X, return_std=True) must return μ and σ; it failed: {err}") from None
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if mu.dtype.kind not in "biuf" or sigma.dtype.kind not in "biuf":
        raise ScreeningError(f"{name}.predict returned {mu.dtype.name} and {sigma.dtype.name} values; "
                             "μ and σ must be numbers (eV/atom).")
    mu, sigma = mu.astype(float), sigma.astype(float)
    if mu.shape != (len(X),) or sigma.shape != (len(X),):
        raise ScreeningError(f"{name}.predict returned μ of shape {mu.shape} and σ of shape {sigma.shape} "
                             f"for {len(X)} candidates; it must give one of each per candidate. Was it "
                             "fitted with this featurizer?")
    bad = int((~np.isfinite(mu) | ~np.isfinite(sigma)).sum())
    if bad:
        raise ScreeningError(f"{name}.predict returned NaN or infinite μ or σ for {bad} of {len(X)} "
                             "candidates; check its training labels and features, nothing is ranked.")
    if (sigma < 0).any():
        raise ScreeningError(f"{name}.predict returned negative σ for {int((sigma < 0).sum())} candidates; "
                             "a standard deviation is never negative.")
    return mu, sigma


def screen(candidates: Any, model: Any, featurizer: Any, top: int = 10,
           kappa: float = 0.0) -> pd.DataFrame:
    """Rank every candidate by the surrogate's lower confidence bound, μ − κσ.

    Parameters
    ----------
    candidates
        A :class:`~almat.pool.Pool` or :class:`~almat.orderings.Orderings`.
    model
        A fitted surrogate with ``predict(X, return_std=True)``.
    featurizer
        The featurizer the model was trained with.
    top
        How many of the lowest-ranked candidates to return (all of them if there are fewer).
    kappa
        Weight of the uncertainty σ, a finite number >= 0; 0 ranks by the mean μ alone (greedy).

    Returns
    -------
    pandas.DataFrame
        ``top`` rows, lowest μ − κσ first: ``index`` (row in ``candidates``),
        ``mu`` and ``sigma`` (eV/atom), ``score`` (μ − κσ), and ``id`` and
        ``min_li_li`` when ``candidates`` is a pool.

    Raises
    ------
    ScreeningError
        Before any work: no model (``None``, as a campaign's before two labels),
        or ``top``/``kappa`` out of range. After predicting: μ or σ that are
        not one finite number per candidate. Nothing is ranked then.
    """
    _checked_options(model, top, kappa)
    X = as_featurizer(featurizer).transform(candidates)
    mu, sigma = _predictions(model, X)
    score = mu - kappa * sigma
    top = min(int(top), len(score))
    best = np.argpartition(score, top - 1)[:top] if top < len(score) else np.arange(len(score))
    best = best[np.argsort(score[best], kind="stable")]
    out = pd.DataFrame({"index": best, "mu": mu[best], "sigma": sigma[best], "score": score[best]})
    reference = getattr(candidates, "reference", None)
    if reference is not None:
        out.insert(0, "id", reference.index[best])
        out["min_li_li"] = reference["min_li_li"].to_numpy()[best]
    out.attrs["n_screened"] = len(orderings_of(candidates))
    return out
