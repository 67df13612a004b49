"""Screening a whole enumeration with a trained surrogate.

Labels are expensive, predictions are not: once a surrogate has learnt from a
few hundred labels, it can rank every ordering of a cell size (395,632 for
Li6PS5Cl at cell size 2) in seconds, and the oracle labels only the few it
ranks lowest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from almat.features import as_featurizer, orderings_of


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
        How many of the lowest-ranked candidates to return.
    kappa
        Weight of the uncertainty σ; 0 ranks by the mean μ alone (greedy).

    Returns
    -------
    pandas.DataFrame
        ``top`` rows, lowest μ − κσ first: ``index`` (row in ``candidates``),
        ``mu`` and ``sigma`` (eV/atom), ``score`` (μ − κσ), and ``id`` and
        ``min_li_li`` when ``candidates`` is a pool.
    """
    X = as_featurizer(featurizer).transform(candidates)
    mu, sigma = model.predict(X, return_std=True)
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
