"""Active learning against the cheap baselines: how many relaxed-energy labels to find the minimum?

Every setup (surrogate features x strategy) runs one campaign per seed on
``almat.load_pool("li6ps5cl")``: every allowed ordering of cell sizes 1-2,
labelled by its precomputed relaxed CHGNet energy (:class:`almat.TableOracle`).
The baselines label in the order of a cheap energy (Ewald, unrelaxed CHGNet),
and random picking is given exactly: the k-th of K hits among N candidates
comes on average at label k (N + 1) / (K + 1).

Printed per setup and baseline (medians over seeds; a run that never got
there counts as budget + 1): labels to the relaxed minimum, to a candidate
within 1 meV/atom of it, to 3 of the 5 lowest, the discovery acceleration
factor (DAF) at 30 labels for the candidates within 1 meV/atom, and the
surrogate's MAE over the pool at 30 labels.

Usage::

    python benchmarks/al_benchmark.py                # a few minutes on 2 cores
    python benchmarks/al_benchmark.py --seeds 3 --plot /tmp/curves.png
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from almat.acquisition import STRATEGIES
from almat.evaluation import CHEAP_BASELINES, baseline_curves, compare_strategies, summarize
from almat.features import ClusterVectorFeaturizer, FidelityFeaturizer
from almat.pool import load_pool
from machine import machine

#: Strategies compared, in the order printed.
DEFAULT_STRATEGIES = ("random", "greedy", "lcb", "ei")
#: Labels at which DAF and MAE are read.
AT = 30


def plot(curves: pd.DataFrame, path: str, setup: str = "pairs 8 Å") -> None:
    """Regret against labels for the strategies of one setup and the cheap baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from almat.plots import plot_strategy_curves

    suffix = f" [{setup}]"
    keep = curves["strategy"].str.endswith(suffix) | ~curves["strategy"].str.contains(r"\[")
    shown = curves[keep & (curves["n_labels"] <= 200)].copy()
    shown["strategy"] = shown["strategy"].str.removesuffix(suffix)
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    plot_strategy_curves(shown, ax=ax, y="regret")
    ax.set_title(f"{setup} pair cluster vectors against the cheap baselines; "
                 "median and quartiles over 10 runs", fontsize=10)
    ax.set_yscale("symlog", linthresh=1.0)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default="li6ps5cl", help="name of a shipped pool")
    parser.add_argument("--pool-dir", default=None, help="folder of the pool files (shipped by default)")
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES),
                        choices=sorted(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10, help="runs per setup (seeds 0..n-1)")
    parser.add_argument("--budget", type=int, default=200, help="labels per run")
    parser.add_argument("--n-initial", type=int, default=5, help="random labels before the strategy")
    parser.add_argument("--plot", default="benchmarks/al_benchmark.png", help="where to save the figure")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    pool = load_pool(args.pool) if args.pool_dir is None else load_pool(args.pool, args.pool_dir)
    parent = pool.orderings.parent
    pairs8 = ClusterVectorFeaturizer(parent)  # the default: pairs up to 8 Å
    setups = {"pairs 6 Å": ClusterVectorFeaturizer(parent, cutoffs=(6.0,)).transform(pool),
              "pairs 8 Å": pairs8.transform(pool),
              "pairs 8 Å + cheap": FidelityFeaturizer(base=pairs8).transform(pool)}
    print(f"machine: {machine()}")
    print(f"pool {pool.name!r}: {len(pool)} candidates, relaxed CHGNet energies; {args.seeds} seeds, "
          f"budget {args.budget}, {args.n_initial} random initial labels; features: "
          + ", ".join(f"{k} ({v.shape[1]})" for k, v in setups.items()))
    curves = []
    for name, features in setups.items():
        c = compare_strategies(pool, args.strategies, args.seeds, args.budget, features=features,
                               n_initial=args.n_initial, mae=True)
        c["strategy"] = c["strategy"] + f" [{name}]"
        curves.append(c)
    curves.append(baseline_curves(pool, CHEAP_BASELINES))
    curves = pd.concat(curves, ignore_index=True)
    table = summarize(curves, pool.energies, tolerance=1e-3, top=5, of_top=3, at=AT)
    table = table.rename(columns={"to_minimum": "labels to min", "to_near": "to ≤1 meV/atom",
                                  "to_top": "to 3 of 5 lowest", "daf": f"DAF@{AT}",
                                  "mae_at": f"MAE@{AT} (meV/atom)", "found": "found min"})
    with pd.option_context("display.width", 160, "display.float_format", "{:.1f}".format):
        print(table.to_string())
    plot(curves, args.plot)
    print(f"plot: {args.plot}; {time.perf_counter() - start:.0f} s in all")
    return table


if __name__ == "__main__":
    main()
