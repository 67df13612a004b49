"""Benchmark the query strategies on the shipped pool: how many labels to find the minimum?

Every strategy runs one campaign per seed on ``almat.load_pool("li6ps5cl")``,
labelled by its reference CHGNet energies (:class:`almat.oracles.TableOracle`),
with the default surrogate (Bayesian cluster expansion on cluster vectors).
The first ``--n-initial`` labels are random; the budget is ``--budget`` labels.

Printed per strategy: the median number of labels until the lowest-energy
candidate of the pool was labelled (">budget" when fewer than half the runs
found it), how many runs found it within the budget, and the median MAE of the
surrogate over the whole pool after 50 labels. For comparison, random picking
without replacement needs ``(N + 1) / (m + 1)`` labels on average to hit one of
``m`` minima among ``N`` candidates.

Usage::

    python benchmarks/al_benchmark.py                # about three minutes on 2 cores
    python benchmarks/al_benchmark.py --seeds 3 --plot /tmp/curves.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from almat.acquisition import STRATEGIES
from almat.evaluation import compare_strategies
from almat.features import ClusterVectorFeaturizer
from almat.pool import load_pool
from machine import machine

#: Strategies compared, in the order printed.
DEFAULT_STRATEGIES = ("random", "uncertainty", "greedy", "lcb", "ei")
#: Number of labels at which the MAE column is read.
MAE_AT = 50


def summarise(curves: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Table per strategy: median labels to the minimum, runs that found it, MAE at 50 labels."""
    rows = []
    for strategy, group in curves.groupby("strategy", sort=False):
        seeds = group["seed"].unique()
        found = group[group["regret"] == 0].groupby("seed")["n_labels"].min().reindex(seeds)
        n_found = int(found.notna().sum())
        median = found.fillna(np.inf).median()
        at = group[group["n_labels"] == MAE_AT]["mae"]
        rows.append({
            "strategy": strategy,
            "median labels to minimum": f">{budget}" if not np.isfinite(median) else f"{median:g}",
            "found within budget": f"{n_found}/{len(found)}",
            f"MAE at {MAE_AT} labels (meV/atom)": round(float(at.median()), 2) if len(at) else np.nan,
        })
    return pd.DataFrame(rows)


def plot(curves: pd.DataFrame, path: str) -> None:
    """Regret and MAE against labels: median and quartile band per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from almat.plots import plot_strategy_curves

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    plot_strategy_curves(curves, ax=left, y="regret")
    left.set_yscale("symlog", linthresh=1.0)
    plot_strategy_curves(curves, ax=right, y="mae")
    right.set_yscale("log")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default="li6ps5cl", help="name of a shipped pool")
    parser.add_argument("--pool-dir", default=None, help="folder of the pool files (data/pools by default)")
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES),
                        choices=sorted(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10, help="runs per strategy (seeds 0..n-1)")
    parser.add_argument("--budget", type=int, default=150, help="labels per run")
    parser.add_argument("--n-initial", type=int, default=10, help="random labels before the strategy")
    parser.add_argument("--cutoffs", nargs="+", type=float, default=None,
                        help="cluster cutoffs in Å (pairs, triplets, ...); the featurizer's default if omitted")
    parser.add_argument("--plot", default="benchmarks/al_benchmark.png", help="where to save the figure")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    pool = load_pool(args.pool) if args.pool_dir is None else load_pool(args.pool, args.pool_dir)
    options = {} if args.cutoffs is None else {"cutoffs": args.cutoffs}
    featurizer = ClusterVectorFeaturizer(pool.orderings.parent, **options)
    features = featurizer.transform(pool)
    reference = pool.energies
    n = int(np.isfinite(reference).sum())
    n_min = int((reference == np.nanmin(reference)).sum())
    print(f"machine: {machine()}")
    print(f"pool {pool.name!r}: {len(pool)} candidates; {features.shape[1]} cluster-vector features "
          f"(cutoffs {', '.join(f'{c:g}' for c in featurizer.cutoffs)} Å); {args.seeds} seeds, budget "
          f"{args.budget}, {args.n_initial} random initial labels")

    curves = compare_strategies(pool, args.strategies, args.seeds, args.budget,
                                features=features, n_initial=args.n_initial,
                                mae=True)
    table = summarise(curves, args.budget)
    print(table.to_string(index=False))
    print(f"random picking, analytically: {(n + 1) / (n_min + 1):.1f} labels on average to find "
          f"the minimum ({n_min} of {n}); it is within {args.budget} labels with probability "
          f"{1 - _miss(n, n_min, args.budget):.3f}")
    plot(curves, args.plot)
    print(f"plot: {args.plot}; {time.perf_counter() - start:.0f} s in all")
    return table


def _miss(n: int, m: int, k: int) -> float:
    """Probability that ``k`` random picks without replacement from ``n`` miss all ``m`` minima."""
    return float(np.prod([(n - m - i) / (n - i) for i in range(min(k, n - m + 1))]))


if __name__ == "__main__":
    main()
