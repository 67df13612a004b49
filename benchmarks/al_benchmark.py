"""Active learning against the cheap baselines: how many relaxed-energy labels to find the minimum?

Every setup runs campaigns on ``almat.load_pool("li6ps5cl")``: every allowed
ordering of cell sizes 1-2, labelled by its precomputed relaxed CHGNet
energy (:class:`almat.TableOracle`), on two sets of problems:

* the whole pool, one campaign per seed (400-419 by default, seeds not used
  while the default was chosen); a setup that makes no random choice has
  one trajectory, run once and counted for every seed;
* perturbed problems: random 80 % subsets of the pool (subset seeds 400-419),
  with the minimum, the candidates within 1 meV/atom of it and every
  baseline recomputed on each subset, for every setup alike.

The default campaign is ``Campaign(pool, TableOracle(), seed=s)`` with
nothing else set. The baselines label in the order of a cheap energy (Ewald,
unrelaxed CHGNet); random picking is given exactly (the k-th of K hits among
N candidates comes on average at label k (N + 1) / (K + 1)).

Printed per setup and baseline: the median [interquartile range] of the
labels to the relaxed minimum and to the first candidate within 1 meV/atom
of it (a run that never got there counts as budget + 1), and the default's
ratio to the best cheap ranking. Also the CPU time per label of the default
(surrogate fit + predict, and a whole step). The summary is saved as JSON
next to the figure, for the lesson's consistency test.

Usage::

    nice python benchmarks/al_benchmark.py          # 18 minutes on 2 shared, loaded cores
    python benchmarks/al_benchmark.py --seeds 2 --subsets 2 --out /tmp/al  # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from almat.campaign import Campaign
from almat.evaluation import (CHEAP_BASELINES, Goals, baseline_curves, discovery_metrics, quartiles,
                              random_expectation, run_until, subsample)
from almat.features import ClusterVectorFeaturizer, FidelityFeaturizer
from almat.oracles import TableOracle
from almat.pool import load_pool
from almat.surrogates import BayesianClusterExpansion
from machine import machine

#: Campaign setups: name -> keyword arguments of Campaign ("cheap features" swaps in the
#: cluster vectors with the cheap energies appended). The default comes first.
SETUPS = {
    "default campaign": {},
    "head start, LCB": {"strategy": "lcb"},
    "head start, EI": {"strategy": "ei"},
    "head start, uncertainty": {"strategy": "uncertainty"},
    "head start, greedy, cheap features": {"cheap features": True},
    "2 random, greedy": {"initial": "random", "n_initial": 2, "strategy": "greedy"},
    "10 random, greedy": {"initial": "random", "strategy": "greedy"},
    "10 random, LCB": {"initial": "random"},  # the default before the head start
    "10 random, EI": {"initial": "random", "strategy": "ei"},
}
#: Name of the exact random expectation in the table.
RANDOM = "random order (expected)"
#: The two sets of problems, as named in the table and the JSON summary.
PROBLEMS = {"pool": "whole pool", "subsets": "80 % subsets"}
METRICS = {"to_minimum": "to minimum", "to_near": "to ≤1 meV/atom"}
#: Labels within this much of the minimum (eV/atom) count as near it.
TOLERANCE = 1e-3


def seeded(options: dict) -> bool:
    """Whether a setup makes random choices, so that its seed matters."""
    return options.get("initial") == "random" or options.get("strategy") == "random"


def campaign_metrics(pool, features, seed: int, budget: int, options: dict) -> dict:
    """Labels to the minimum and to near it of one campaign, run until it labels the minimum."""
    kwargs = {k: v for k, v in options.items() if k != "cheap features"}
    campaign = Campaign(pool, TableOracle(), seed=seed, features=features, budget=budget, **kwargs)
    goals = Goals.of(pool.energies, TOLERANCE)
    labels = run_until(campaign, goals.minimum)
    m = discovery_metrics(labels, goals)
    return {k: budget + 1 if m[k] is None else m[k] for k in METRICS}


def problem_runs(kind: str, seed: int, pool, features: dict, budget: int, first: dict | None) -> list[dict]:
    """One row per setup and baseline on one problem.

    ``first`` keeps the whole pool's results of the setups that make no random
    choice: run for the first two seeds, checked to agree, then reused.
    """
    rows = []
    for name, options in SETUPS.items():
        cached = None if first is None or seeded(options) else first.get(name)
        if cached is not None and cached["checked"]:
            m = cached["metrics"]
        else:
            X = features["cheap" if options.get("cheap features") else "pairs"]
            m = campaign_metrics(pool, X, seed, budget, options)
            if cached is not None and cached["metrics"] != m:
                raise RuntimeError(f"{name!r} depends on the seed after all; add it to seeded().")
            if first is not None and not seeded(options):
                first[name] = {"metrics": m, "checked": cached is not None}
        rows.append({"problems": kind, "seed": seed, "setup": name, **m})
    goals = Goals.of(pool.energies, TOLERANCE)
    curves = baseline_curves(pool, CHEAP_BASELINES)
    for name, curve in curves.groupby("strategy", sort=False):
        m = discovery_metrics(curve["energy"].to_numpy(), goals)
        rows.append({"problems": kind, "seed": seed, "setup": name, **{k: m[k] for k in METRICS}})
    expected = random_expectation(goals)
    rows.append({"problems": kind, "seed": seed, "setup": RANDOM, **{k: expected[k] for k in METRICS}})
    return rows


def summary(runs: pd.DataFrame, budget: int) -> dict:
    """Median and quartiles per setup, problem set and metric; runs that reached the minimum."""
    out = {}
    for (setup, kind), group in runs.groupby(["setup", "problems"], sort=False):
        entry = {k: [round(v, 1) for v in quartiles(group[k])] for k in METRICS}
        entry["found"] = int((group["to_minimum"] <= budget).sum())
        entry["runs"] = len(group)
        out.setdefault(setup, {})[kind] = entry
    return out


def best_cheap_ratios(rows: dict) -> dict:
    """The default's median over the best cheap ranking's, per problem set and metric."""
    return {kind: {metric: round(rows["default campaign"][kind][metric][0]
                                 / min(rows[b][kind][metric][0] for b in CHEAP_BASELINES), 2)
                   for metric in METRICS} for kind in PROBLEMS}


def table(rows: dict, n: dict) -> pd.DataFrame:
    """The printed table: 'median [q1-q3]' per problem set and metric, and runs that found the minimum."""
    def cell(q):
        return "{:g} [{:g}-{:g}]".format(*q)

    columns = pd.MultiIndex.from_tuples([(f"{PROBLEMS[k]} ({n[k]})", label) for k in PROBLEMS
                                         for label in [*METRICS.values(), "found min"]])
    data = [[x for k in PROBLEMS for x in
             [cell(entry[k]["to_minimum"]), cell(entry[k]["to_near"]),
              "-" if name == RANDOM or name in CHEAP_BASELINES else f"{entry[k]['found']}/{entry[k]['runs']}"]]
            for name, entry in rows.items()]
    return pd.DataFrame(data, index=pd.Index(list(rows), name="setup"), columns=columns)


def cpu_per_label(pool, X: np.ndarray, sizes=(10, 50, 150), repeats: int = 20) -> dict:
    """CPU milliseconds of one fit + predict of the default surrogate, at a few numbers of labels,
    and of a whole default step (suggest, label, write), averaged over 100 steps."""
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        idx = rng.choice(len(pool), n, replace=False)
        start = time.process_time()
        for _ in range(repeats):
            with threadpool_limits(limits=1, user_api="blas"):
                clone(BayesianClusterExpansion()).fit(X[idx], pool.energies[idx]).predict(X, return_std=True)
        out[f"fit+predict at {n} labels"] = round(1000 * (time.process_time() - start) / repeats, 1)
    campaign = Campaign(pool, TableOracle(), features=X)
    start = time.process_time()
    campaign.run(100)
    out["whole step, first 100 labels"] = round(1000 * (time.process_time() - start) / 100, 1)
    return out


def plot(runs: pd.DataFrame, path: Path, budget: int) -> None:
    """Labels to each target per setup: the 80 % subsets as box plots, the whole pool as a dot;
    a dashed line at ``budget + 1``, where runs that never got there are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    names = list(dict.fromkeys(runs["setup"]))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharey=True, constrained_layout=True)
    for ax, (metric, label) in zip(axes, METRICS.items()):
        subsets = [runs.query("problems == 'subsets' and setup == @s")[metric].to_numpy() for s in names]
        ax.boxplot(subsets, orientation="horizontal", widths=0.5, whis=(0, 100), patch_artist=True,
                   boxprops={"facecolor": "#cfe0f3"}, medianprops={"color": "#1f4e8c"})
        whole = [runs.query("problems == 'pool' and setup == @s")[metric].median() for s in names]
        ax.plot(whole, np.arange(1, len(names) + 1), "D", color="#c0392b", label="whole pool, median")
        if (runs[metric] > budget).any():
            ax.axvline(budget + 1, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([1, 2, 3, 5, 10, 20, 50, 100, 200, 300]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"labels {label}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(np.arange(1, len(names) + 1), names)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Relaxed-energy labels until the minimum, and until a candidate within 1 meV/atom of it, "
                 "is labelled\n(boxes: 80 % subsets, quartiles and range; diamonds: whole pool; "
                 f"dashed: a campaign that never got there within {budget} labels)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default="li6ps5cl", help="name of a shipped pool")
    parser.add_argument("--pool-dir", default=None, help="folder of the pool files (shipped by default)")
    parser.add_argument("--seeds", type=int, default=20, help="campaigns per setup on the whole pool")
    parser.add_argument("--subsets", type=int, default=20, help="perturbed problems (80 %% subsets)")
    parser.add_argument("--first-seed", type=int, default=400, help="first seed of both sets")
    parser.add_argument("--budget", type=int, default=200, help="labels per run at most")
    parser.add_argument("--out", default="benchmarks/al_benchmark",
                        help="path of the figure (.png) and the summary (.json), without suffix")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    pool = load_pool(args.pool) if args.pool_dir is None else load_pool(args.pool, args.pool_dir)
    pairs = ClusterVectorFeaturizer(pool.orderings.parent)  # the campaign's default features
    features = {"pairs": pairs.transform(pool), "cheap": FidelityFeaturizer(base=pairs).transform(pool)}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    subset_seeds = list(range(args.first_seed, args.first_seed + args.subsets))
    print(f"machine: {machine()}")
    print(f"pool {pool.name!r}: {len(pool)} candidates labelled with their relaxed CHGNet energy; budget "
          f"{args.budget}; whole pool with seeds {seeds[0]}-{seeds[-1]}, 80 % subsets with seeds "
          f"{subset_seeds[0]}-{subset_seeds[-1]}", flush=True)

    rows, first = [], {}
    for seed in tqdm(seeds, desc="whole pool", unit="seed"):
        rows += problem_runs("pool", seed, pool, features, args.budget, first)
    for seed in tqdm(subset_seeds, desc="80 % subsets", unit="problem"):
        sub, idx = subsample(pool, 0.8, seed)
        rows += problem_runs("subsets", seed, sub, {k: v[idx] for k, v in features.items()},
                             args.budget, None)
    runs = pd.DataFrame(rows)
    result = summary(runs, args.budget)
    with pd.option_context("display.width", 200, "display.max_colwidth", 30):
        print(table(result, {"pool": f"{args.seeds} seeds", "subsets": f"{args.subsets} problems"}).to_string())
    ratios = best_cheap_ratios(result)
    for kind, r in ratios.items():
        print(f"default / best cheap ranking, {PROBLEMS[kind]}: "
              + ", ".join(f"{METRICS[m]} {v:.2f}" for m, v in r.items()))
    cpu = cpu_per_label(pool, features["pairs"])
    print("CPU ms per label of the default: " + ", ".join(f"{k} {v:g}" for k, v in cpu.items()))

    out = Path(args.out)
    plot(runs, out.with_suffix(".png"), args.budget)
    seconds = round(time.perf_counter() - start)
    summary_file = {"machine": machine(), "seconds": seconds, "budget": args.budget,
                    "tolerance_meV": 1000 * TOLERANCE, "seeds": seeds, "subset_seeds": subset_seeds,
                    "subset_fraction": 0.8, "cpu_ms_per_label": cpu, "ratios_to_best_cheap": ratios,
                    "setups": result}
    out.with_suffix(".json").write_text(json.dumps(summary_file, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    print(f"figure {out.with_suffix('.png')}, summary {out.with_suffix('.json')}; {seconds} s in all")
    return summary_file


if __name__ == "__main__":
    main()
