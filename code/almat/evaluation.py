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
import numbers
from dataclasses import dataclass
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
    """Curve of labels given in order: ``strategy, seed, n_labels, energy, best, regret_meV``."""
    best = np.minimum.accumulate(labels)
    return pd.DataFrame({"strategy": name, "seed": seed, "n_labels": np.arange(1, len(labels) + 1),
                         "energy": labels, "best": best, "regret_meV": 1000 * (best - lowest)})


#: The cheap rankings an expensive campaign must beat: label in the order of a cheap energy.
CHEAP_BASELINES = {"Ewald order": "ewald_energy_per_atom",
                   "unrelaxed order": "unrelaxed_energy_per_atom"}


def baseline_curves(pool: Pool, baselines: dict[str, str] | None = None) -> pd.DataFrame:
    """Curves of labelling the whole pool in the order of a cheap energy, lowest first.

    Parameters
    ----------
    pool
        Candidates with reference energies and the cheap columns.
    baselines
        Name of the baseline -> column of ``pool.reference``; :data:`CHEAP_BASELINES` by default.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`compare_strategies`, one curve per baseline (``seed`` 0).
    """
    baselines = CHEAP_BASELINES if baselines is None else baselines
    energies = pool.energies
    curves = []
    for name, column in baselines.items():
        if column not in pool.reference.columns:
            raise CampaignError(f"Baseline {name!r}: the pool has no column {column!r}.")
        order = np.argsort(pool.reference[column].to_numpy(dtype=float), kind="stable")
        curves.append(_curve(name, 0, energies[order], float(np.nanmin(energies))))
    return pd.concat(curves, ignore_index=True)


def labels_to_reach(labels: Sequence[float], threshold: float, count: int = 1) -> int | None:
    """How many labels, taken in order, until ``count`` of them lie at or below ``threshold``.

    ``None`` if the labels never get there.
    """
    hits = np.flatnonzero(np.asarray(labels, dtype=float) <= threshold + 1e-12)
    return int(hits[count - 1]) + 1 if len(hits) >= count else None


@dataclass(frozen=True)
class Goals:
    """What counts as found, for a pool's reference energies (eV/atom).

    Attributes
    ----------
    minimum
        The lowest energy.
    near
        ``minimum + tolerance``: candidates at or below it are near-degenerate with the minimum.
    top
        The ``top``-th lowest energy: at or below it is one of the ``top`` lowest.
    n, n_near, n_top
        Candidates in all, near the minimum, and among the lowest ``top``.
    """

    minimum: float
    near: float
    top: float
    n: int
    n_near: int
    n_top: int

    @classmethod
    def of(cls, energies: Sequence[float], tolerance: float = 1e-3, top: int = 5) -> Goals:
        """Goals of a set of energies; ``tolerance`` in eV/atom."""
        e = np.sort(np.asarray(energies, dtype=float)[np.isfinite(energies)])
        return cls(float(e[0]), float(e[0] + tolerance), float(e[top - 1]), len(e),
                   int((e <= e[0] + tolerance + 1e-12).sum()), top)


def discovery_metrics(labels: Sequence[float], goals: Goals, of_top: int = 3, at: int = 30
                      ) -> dict[str, float | None]:
    """How fast a sequence of labels finds the low-energy candidates.

    Returns ``to_minimum`` (labels until the minimum), ``to_near`` (until one within
    the tolerance of it), ``to_top`` (until ``of_top`` of the ``goals.n_top`` lowest)
    and ``daf``, the discovery acceleration factor at ``at`` labels: the fraction
    of the first ``at`` labels that are near the minimum, divided by the fraction
    random picking expects, ``n_near / n`` (Riebesell et al., matbench-discovery).
    """
    labels = np.asarray(labels, dtype=float)
    first = labels[:at]
    hit_rate = float((first <= goals.near + 1e-12).mean()) if len(first) else float("nan")
    return {"to_minimum": labels_to_reach(labels, goals.minimum),
            "to_near": labels_to_reach(labels, goals.near),
            "to_top": labels_to_reach(labels, goals.top, of_top),
            "daf": hit_rate / (goals.n_near / goals.n)}


def random_expectation(goals: Goals, of_top: int = 3) -> dict[str, float]:
    """The same metrics for labelling in random order, exactly.

    Drawing without replacement from ``N`` candidates of which ``K`` are hits,
    the ``k``-th hit comes on average at draw ``k (N + 1) / (K + 1)``; the
    discovery acceleration factor of random picking is 1 by definition.
    """
    n = goals.n
    return {"to_minimum": (n + 1) / 2, "to_near": (n + 1) / (goals.n_near + 1),
            "to_top": of_top * (n + 1) / (goals.n_top + 1), "daf": 1.0}


def summarize(curves: pd.DataFrame, energies: Sequence[float], tolerance: float = 1e-3,
              top: int = 5, of_top: int = 3, at: int = 30, random: bool = True) -> pd.DataFrame:
    """One row per strategy or baseline: median metrics over seeds, and random's exact values.

    Parameters
    ----------
    curves
        Output of :func:`compare_strategies` and/or :func:`baseline_curves`.
    energies
        Reference energy of every candidate (eV/atom).
    tolerance, top, of_top, at
        See :class:`Goals` and :func:`discovery_metrics`.
    random
        Add the row ``random (expected)`` from :func:`random_expectation`.

    Returns
    -------
    pandas.DataFrame
        Columns ``to_minimum``, ``to_near``, ``to_top``, ``daf`` (medians; a run
        that never got there counts as its budget plus one), ``found`` (runs
        that reached the minimum / runs) and, where the curves have it,
        ``mae_meV_at`` (the MAE in meV/atom at ``at`` labels).
    """
    goals = Goals.of(energies, tolerance, top)
    rows = []
    for (name, seed), run in curves.groupby(["strategy", "seed"], sort=False):
        labels = run.sort_values("n_labels")["energy"].to_numpy()
        m = discovery_metrics(labels, goals, of_top, at)
        row = {"strategy": name, "seed": seed,
               **{k: (len(labels) + 1 if v is None else v) for k, v in m.items()},
               "found": m["to_minimum"] is not None}
        if "mae_meV" in run.columns:
            row["mae_meV_at"] = float(run.loc[run["n_labels"] == at, "mae_meV"].iloc[0]) if (
                run["n_labels"] == at).any() else float("nan")
        rows.append(row)
    per_run = pd.DataFrame(rows)
    table = per_run.groupby("strategy", sort=False).agg(
        to_minimum=("to_minimum", "median"), to_near=("to_near", "median"),
        to_top=("to_top", "median"), daf=("daf", "median"),
        found=("found", lambda f: f"{int(f.sum())}/{len(f)}"),
        **({"mae_meV_at": ("mae_meV_at", "median")} if "mae_meV_at" in per_run else {}))
    if random:
        table.loc["random (expected)"] = {**random_expectation(goals, of_top), "found": "-"}
    return table


def subsample(pool: Pool, fraction: float = 0.8, seed: int = 0) -> tuple[Pool, np.ndarray]:
    """A random ``fraction`` of the pool's candidates, in pool order: a perturbed problem.

    Benchmarks recompute the minimum and every baseline on such a subset, so
    that a method which makes no random choice is measured on many problems,
    not on one trajectory. Returns the smaller pool and the positions of its
    candidates in ``pool`` (to take their rows of a feature matrix).
    """
    if not 0 < fraction <= 1:
        raise CampaignError(f"fraction must lie in (0, 1]; got {fraction!r}.")
    n = max(2, round(fraction * len(pool)))
    indices = np.sort(np.random.default_rng(seed).choice(len(pool), n, replace=False))
    return pool.subset(indices, name=f"{pool.name}-{fraction:g}-{seed}"), indices


def run_until(campaign: Campaign, target: float = -math.inf) -> np.ndarray:
    """Step ``campaign`` until it is done or has labelled an energy at or below ``target`` (eV/atom).

    Returns the labels that count, in the order they were given (eV/atom).
    """
    labels = campaign.labelled["energy"].to_numpy(dtype=float)
    while not campaign.done and not (labels <= target + 1e-12).any():
        campaign.step()
        labels = campaign.labelled["energy"].to_numpy(dtype=float)
    return labels


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Median and the lower and upper quartiles (numpy's linear interpolation), in that order."""
    q1, median, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return float(median), float(q1), float(q3)


def compare_strategies(pool: Pool, strategies: Sequence[str | Callable | Strategy] = tuple(STRATEGIES),
                       seeds: int | Sequence[int] = 3, n_labels: int = 40, *, oracle: Oracle | None = None,
                       features: Any = None, featurizer: Any = None, n_initial: int | None = None,
                       initial: str | None = None, mae: bool = False, surrogate: Any = None,
                       baselines: dict[str, str] | None = None) -> pd.DataFrame:
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
        Campaigns per strategy: a number ``n`` for seeds ``0 .. n - 1``, or the seeds.
    n_labels
        Labels per campaign (the budget), the initial ones included.
    oracle
        The labeller; a :class:`~almat.oracles.TableOracle` of the pool's energies by default.
    features, featurizer
        The pool's feature matrix, or what computes it (cluster vectors of the
        pool's parent by default); not both.
    n_initial, initial
        Labels before the strategy takes over, and how they are picked; the
        campaign's defaults when None (see :class:`~almat.campaign.Campaign`).
    mae
        Also record the surrogate's MAE over the pool after every label (slower).
    surrogate
        The surrogate every campaign clones; the campaign's default when None.
    baselines
        Cheap rankings to add as curves (see :func:`baseline_curves`), e.g.
        :data:`CHEAP_BASELINES`; summarise everything with :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``seed``, ``n_labels``, ``energy`` (the label given,
        eV/atom), ``best`` (lowest label so far, eV/atom), ``regret_meV`` (``best``
        minus the pool's lowest energy, meV/atom: 1000 × :func:`regret`) and, with
        ``mae=True``, ``mae_meV`` (meV/atom: 1000 × :func:`mae`).
    """
    if features is None:
        features = as_featurizer(featurizer or ClusterVectorFeaturizer(pool.orderings.parent)).transform(pool)
    elif featurizer is not None:
        raise CampaignError("Give the feature matrix (features=) or a featurizer, not both.")
    oracle = TableOracle() if oracle is None else oracle
    lowest = float(np.nanmin(pool.energies))
    curves = []
    for strategy in strategies:
        for seed in (range(seeds) if isinstance(seeds, numbers.Integral) else seeds):
            campaign = Campaign(pool, oracle, strategy=strategy, seed=seed, n_initial=n_initial,
                                initial=initial, budget=n_labels, features=features,
                                **({} if surrogate is None else {"surrogate": surrogate}))
            errors = []
            while not campaign.done:
                campaign.step()
                if mae:
                    errors.append((campaign.n_labels,
                                   1000 * _mean_absolute_error(campaign.predict()[0], pool.energies)))
            curve = _curve(campaign.strategy, seed, campaign.labelled["energy"].to_numpy(), lowest)
            if mae:
                curve["mae_meV"] = curve["n_labels"].map(dict(errors))
            curves.append(curve)
    if baselines:
        curves.append(baseline_curves(pool, baselines))
    return pd.concat(curves, ignore_index=True)
