"""How well a campaign does: parity, MAE, regret, labels to the minimum, and strategy comparisons.

Each metric is a plain function of a :class:`~almat.campaign.Campaign` and
a reference energy per candidate (the pool's reference by default)::

    regret(campaign)              # eV/atom above the pool's lowest energy
    mae(campaign)                 # eV/atom, over every candidate with a reference

:func:`compare_strategies` runs many campaigns and returns their
best-so-far curves in one long table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from almat.acquisition import STRATEGIES, Strategy
from almat.campaign import Campaign
from almat.features import ClusterVectorFeaturizer, as_featurizer
from almat.ledger import CampaignError
from almat.oracles import Oracle, TableOracle
from almat.pool import Pool

#: A reference energy per candidate (eV/atom): an array in pool order, or a Series indexed by id.
Reference = Sequence[float] | np.ndarray | pd.Series


def reference_energies(pool: Pool, reference: Reference | None = None) -> np.ndarray:
    """One reference energy (eV/atom) per candidate of ``pool``, NaN where unknown.

    ``None`` means the pool's own reference energies; a Series is matched to
    the candidates by id.
    """
    if reference is None:
        return pool.energies
    if isinstance(reference, pd.Series):
        return reference.reindex(pool.ids).to_numpy(dtype=float)
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (len(pool),):
        raise CampaignError(
            f"reference must hold one energy per candidate ({len(pool)}), or be a Series "
            f"indexed by candidate id; got shape {ref.shape}."
        )
    return ref


def parity(campaign: Campaign, reference: Reference | None = None) -> pd.DataFrame:
    """Reference against predicted energy (eV/atom) of every candidate with a known reference.

    Columns ``reference``, ``predicted``, ``std`` and ``labelled``, indexed by id.
    """
    ref = reference_energies(campaign.pool, reference)
    mu, sigma = campaign.predict()
    labelled = np.zeros(len(ref), dtype=bool)
    labelled[campaign.ledger.labelled_indices()] = True
    known = np.isfinite(ref)
    return pd.DataFrame({"reference": ref[known], "predicted": mu[known], "std": sigma[known],
                         "labelled": labelled[known]},
                        index=pd.Index(np.asarray(campaign.pool.ids)[known], name="id"))


def mae(campaign: Campaign, reference: Reference | None = None) -> float:
    r"""Mean absolute error (eV/atom) of the surrogate over the candidates with a reference.

    :math:`\mathrm{MAE} = \frac{1}{n}\sum_i |\mu_i - E_i|` over every such
    candidate, labelled or not; NaN before the surrogate is fitted.
    """
    return _mean_absolute_error(campaign.predict()[0], reference_energies(campaign.pool, reference))


def _mean_absolute_error(mu: np.ndarray, ref: np.ndarray) -> float:
    known = np.isfinite(ref)
    return float(np.mean(np.abs(mu[known] - ref[known]))) if known.any() else math.nan


def regret(campaign: Campaign, reference: Reference | None = None) -> float:
    """Reference energy of the best candidate labelled so far minus the pool's lowest (eV/atom).

    Zero once the pool minimum has been labelled; NaN before any label.
    With labels from the reference itself this is the best label minus the minimum.
    """
    ref = reference_energies(campaign.pool, reference)
    found = ref[campaign.ledger.labelled_indices()]
    found = found[np.isfinite(found)]
    return float(found.min() - np.nanmin(ref)) if found.size else math.nan


def labels_to_minimum(campaign: Campaign, reference: Reference | None = None) -> int | None:
    """Number of labels it took to label the pool's lowest-energy candidate; None if not yet."""
    ref = reference_energies(campaign.pool, reference)
    lowest = np.flatnonzero(ref == np.nanmin(ref))
    for n, index in enumerate(campaign.ledger.labelled_indices(), start=1):
        if index in lowest:
            return n
    return None


def _curve(name: str, seed: int, labels: np.ndarray, lowest: float) -> pd.DataFrame:
    """Best-so-far curve of labels given in order: ``strategy, seed, n_labels, best, regret``."""
    best = np.minimum.accumulate(labels)
    return pd.DataFrame({"strategy": name, "seed": seed, "n_labels": np.arange(1, len(labels) + 1),
                         "best": best, "regret": 1000 * (best - lowest)})


def compare_strategies(pool: Pool, strategies: Sequence[str | Callable | Strategy] = tuple(STRATEGIES),
                       seeds: int = 3, n_labels: int = 40, *, oracle: Oracle | None = None,
                       features: Any = None, featurizer: Any = None, n_initial: int = 10,
                       mae: bool = False) -> pd.DataFrame:
    """Run one campaign per strategy and seed on a pool with known energies; one row per label.

    The features are computed once and shared by every campaign.

    Parameters
    ----------
    pool
        Candidates with reference energies (``pool.energies``).
    strategies
        Names, functions or :class:`~almat.acquisition.Strategy` values; all of
        :data:`~almat.acquisition.STRATEGIES` by default.
    seeds
        Campaigns per strategy, with seeds ``0 .. seeds - 1``.
    n_labels
        Labels per campaign (the budget), the random initial ones included.
    oracle
        The labeller; a :class:`~almat.oracles.TableOracle` of the pool's energies by default.
    features, featurizer
        The pool's feature matrix, or what computes it (cluster vectors of the
        pool's parent by default); not both.
    n_initial
        Random labels before the strategy takes over.
    mae
        Also record the surrogate's MAE over the pool after every label (slower).

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``seed``, ``n_labels``, ``best`` (lowest label so far,
        eV/atom), ``regret`` (``best`` minus the pool's lowest energy, meV/atom) and,
        with ``mae=True``, ``mae`` (meV/atom).
    """
    if features is None:
        features = as_featurizer(featurizer or ClusterVectorFeaturizer(pool.orderings.parent)).transform(pool)
    elif featurizer is not None:
        raise CampaignError("Give the feature matrix (features=) or a featurizer, not both.")
    oracle = TableOracle() if oracle is None else oracle
    lowest = float(np.nanmin(pool.energies))
    curves = []
    for strategy in strategies:
        for seed in range(seeds):
            campaign = Campaign(pool, oracle, strategy=strategy, seed=seed, n_initial=n_initial,
                                budget=n_labels, features=features)
            errors = []
            while not campaign.done:
                campaign.step()
                if mae:
                    errors.append((campaign.n_labels,
                                   1000 * _mean_absolute_error(campaign.predict()[0], pool.energies)))
            curve = _curve(campaign.strategy, seed, campaign.labelled["label"].to_numpy(), lowest)
            if mae:
                curve["mae"] = curve["n_labels"].map(dict(errors))
            curves.append(curve)
    return pd.concat(curves, ignore_index=True)
