"""Labelling in batches: what k picks per round cost in labels, and what they save in wall-clock time.

Two measurements on ``almat.load_pool("li6ps5cl")`` (630 allowed orderings,
labelled by their precomputed relaxed CHGNet energy), with the default
campaign (head start from the cheap ranking, then greedy) picking ``k``
candidates per round:

* **labels** to the relaxed minimum and to the first candidate within
  1 meV/atom of it, for k = 1, 2, 4, 8 and every batch method
  (:data:`almat.batches.BATCH_METHODS`), on the whole pool (one campaign per
  seed; a method that makes no random choice has one trajectory, run once)
  and on random 80 % subsets of it, as ``al_benchmark.py`` does. A batch is
  paid for whole: the labels to a target count every label of the rounds up
  to and including the one that found it. A run that never got there counts
  as budget + 1. Labels come from :class:`almat.TableOracle`, in this process.
* **wall-clock** to the same targets on the whole pool, with an oracle that
  takes a fixed time per label (the table plus a sleep standing for a
  relaxation or a DFT run), for the sequential campaign (``step()`` in this
  process) and for ``run_batch`` with k = 1, 2, 4, 8, one call per round, on
  a two-worker ``LocalCluster`` started once (its start-up time is printed
  apart). Each run is checked to label exactly what the in-process count
  run labelled.
  ``--relaxed N`` adds N real :class:`almat.RelaxedCHGNetOracle` labels,
  sequential against one batch of N on two workers.

The machine is shared, so times are quoted as ratios against the sequential
run of the same invocation. The summary is saved as JSON.

Usage::

    nice python benchmarks/batch_benchmark.py            # about 15 minutes on 2 shared cores
    python benchmarks/batch_benchmark.py --seeds 2 --subsets 2 --cost 0.2 --out /tmp/batch  # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from almat.batches import BATCH_METHODS, DEFAULT_BATCH_METHOD
from almat.campaign import Campaign
from almat.evaluation import Goals, labels_to_reach, quartiles, subsample
from almat.features import ClusterVectorFeaturizer
from almat.oracles import TableOracle
from almat.parallel import local_cluster
from almat.pool import load_pool
from machine import machine

#: Batch sizes measured.
SIZES = (1, 2, 4, 8)
#: Labels within this much of the minimum (eV/atom) count as near it.
TOLERANCE = 1e-3
METRICS = {"to_minimum": "to minimum", "to_near": "to ≤1 meV/atom"}


class SlowTable(TableOracle):
    """The table's energies, each after ``cost`` seconds: a stand-in for a relaxation or a DFT run."""

    def __init__(self, cost: float):
        super().__init__()
        self.cost = cost

    def label(self, pool, index, on_step=None):
        time.sleep(self.cost)
        return super().label(pool, index)


def spent(campaign: Campaign, threshold: float) -> tuple[int | None, int | None]:
    """Labels paid for, and rounds, until a label at or below ``threshold`` (eV/atom); None if never.

    The labels paid for are all those of the rounds up to and including the one that found it.
    """
    rounds = campaign.best_by_batch()
    found = rounds[rounds["best"] <= threshold + 1e-12]
    if found.empty:
        return None, None
    return int(found["n_labels"].iloc[0]), int(found["batch"].iloc[0])


def count_run(pool, features, k: int, method: str, seed: int, budget: int) -> dict:
    """Labels and rounds to each target of one batch campaign, labelled in this process."""
    campaign = Campaign(pool, TableOracle(), seed=seed, features=features, budget=budget)
    goals = Goals.of(pool.energies, TOLERANCE)
    while not campaign.done and not (campaign.labelled["energy"] <= goals.minimum + 1e-12).any():
        campaign.run_batch(k, method=method, in_process=True, progress=False)
    out = {}
    for metric, threshold in (("to_minimum", goals.minimum), ("to_near", goals.near)):
        labels, rounds = spent(campaign, threshold)
        out[metric] = budget + 1 if labels is None else labels
        out[f"rounds_{metric}"] = None if rounds is None else rounds
    out["picks"] = campaign.labelled["index"].tolist()
    return out


def setups() -> dict[str, tuple[int, str]]:
    """Name -> (k, method); k = 1 is the same campaign for every method, so it is run once."""
    out = {"k = 1 (sequential picks)": (1, DEFAULT_BATCH_METHOD)}
    out.update({f"k = {k}, {m}": (k, m) for m in BATCH_METHODS for k in SIZES[1:]})
    return out


def label_counts(pool, X, seeds: list[int], subset_seeds: list[int], budget: int) -> tuple[pd.DataFrame, dict]:
    """One row per setup and problem; and the whole pool's picks of each setup (first seed)."""
    rows, picks = [], {}
    for name, (k, method) in tqdm(setups().items(), desc="setups", unit="setup"):
        seeded = method == "thompson" and k > 1
        first = None
        for seed in seeds:
            m = first if first is not None and not seeded else count_run(pool, X, k, method, seed, budget)
            first = first or m
            picks.setdefault(name, m["picks"])
            rows.append({"problems": "whole pool", "seed": seed, "setup": name, "k": k, "method": method,
                         **{key: v for key, v in m.items() if key != "picks"}})
        for seed in subset_seeds:
            sub, idx = subsample(pool, 0.8, seed)
            m = count_run(sub, X[idx], k, method, seed, budget)
            rows.append({"problems": "80 % subsets", "seed": seed, "setup": name, "k": k, "method": method,
                         **{key: v for key, v in m.items() if key != "picks"}})
    return pd.DataFrame(rows), picks


def wall_clock(pool, X, k: int | None, cost: float, picks: list[int], scheduler: str) -> dict:
    """Seconds to each target with the slow oracle; ``k=None`` is the sequential campaign (``step()``).

    A batch campaign calls ``run_batch`` once per round on the running cluster
    at ``scheduler`` (connecting to it each time). ``picks`` are the labels of
    the in-process run of the same setup: the timed run must label exactly these.
    """
    goals = Goals.of(pool.energies, TOLERANCE)
    need = {m: labels_to_reach(pool.energies[picks], t) for m, t in (("to_minimum", goals.minimum),
                                                                      ("to_near", goals.near))}
    campaign = Campaign(pool, SlowTable(cost), features=X)
    out, start = {}, time.perf_counter()
    while len(out) < len(need):
        if k is None:
            campaign.step()
        else:
            campaign.run_batch(k, scheduler=scheduler, progress=False)
        out.update({m: round(time.perf_counter() - start, 1) for m, n in need.items()
                    if m not in out and campaign.n_labels >= n})
    done = campaign.labelled["index"].tolist()
    if sorted(done) != sorted(picks[:len(done)]):
        raise RuntimeError(f"k = {k}: the timed run labelled other candidates than the count run.")
    return out


def relaxed_wall_clock(pool, n: int, n_workers: int = 2) -> dict:
    """Seconds for ``n`` real relaxed-CHGNet labels: sequential, and one batch of ``n`` on Dask."""
    from almat.oracles import RelaxedCHGNetOracle

    out = {}
    for name, batch in (("sequential", False), (f"one batch of {n}, {n_workers} workers", True)):
        campaign = Campaign(pool, RelaxedCHGNetOracle(cache=None))
        campaign.features  # noqa: B018 - computed before the clock starts
        start = time.perf_counter()
        if batch:
            campaign.run_batch(n, n_workers=n_workers, progress=False)
        else:
            campaign.run(n)
        out[name] = round(time.perf_counter() - start, 1)
    return out


def summary(runs: pd.DataFrame) -> dict:
    """Median and quartiles of labels and rounds per setup, problem set and target."""
    out = {}
    for (setup, kind), group in runs.groupby(["setup", "problems"], sort=False):
        entry = {k: [round(v, 1) for v in quartiles(group[k])] for k in METRICS}
        entry.update({f"rounds_{k}": [round(v, 1) for v in quartiles(group[f"rounds_{k}"].dropna())]
                      for k in METRICS if group[f"rounds_{k}"].notna().any()})
        entry["runs"] = len(group)
        out.setdefault(setup, {})[kind] = entry
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="campaigns per setup on the whole pool")
    parser.add_argument("--subsets", type=int, default=20, help="perturbed problems (80 %% subsets)")
    parser.add_argument("--first-seed", type=int, default=400, help="first seed of both sets")
    parser.add_argument("--budget", type=int, default=200, help="labels per run at most")
    parser.add_argument("--cost", type=float, default=2.0, help="seconds per label of the timed oracle")
    parser.add_argument("--relaxed", type=int, default=0, help="real relaxed-CHGNet labels to time (0: none)")
    parser.add_argument("--out", default="benchmarks/batch_benchmark", help="path of the summary, no suffix")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    pool = load_pool("li6ps5cl")
    X = ClusterVectorFeaturizer(pool.orderings.parent).transform(pool)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    subset_seeds = list(range(args.first_seed, args.first_seed + args.subsets))
    print(f"machine: {machine()}; shared with other work, so times are compared within this run")
    print(f"pool {pool.name!r}: {len(pool)} candidates; budget {args.budget}; whole pool with seeds "
          f"{seeds[0]}-{seeds[-1]}, 80 % subsets with seeds {subset_seeds[0]}-{subset_seeds[-1]}", flush=True)

    runs, picks = label_counts(pool, X, seeds, subset_seeds, args.budget)
    result = summary(runs)

    def cell(q):
        return "{:g} [{:g}-{:g}]".format(*q)

    table = pd.DataFrame({f"{kind}: labels {label}": {s: cell(e[kind][m]) for s, e in result.items()}
                          for kind in ("whole pool", "80 % subsets") for m, label in METRICS.items()})
    table["whole pool: rounds to minimum"] = {s: cell(e["whole pool"]["rounds_to_minimum"])
                                              for s, e in result.items()}
    with pd.option_context("display.width", 250, "display.max_colwidth", 30):
        print(table.to_string())

    started = time.perf_counter()
    with local_cluster(2) as cluster:
        startup = round(time.perf_counter() - started, 1)
        timed = {"sequential (step)": wall_clock(pool, X, None, args.cost, picks["k = 1 (sequential picks)"],
                                                 cluster.scheduler_address)}
        for k in tqdm(SIZES, desc="timed runs", unit="k"):
            name = "k = 1 (sequential picks)" if k == 1 else f"k = {k}, {DEFAULT_BATCH_METHOD}"
            timed[f"k = {k}, 2 workers"] = wall_clock(pool, X, k, args.cost, picks[name],
                                                      cluster.scheduler_address)
    base = timed["sequential (step)"]
    clock = pd.DataFrame({name: {**{f"s {label}": t[m] for m, label in METRICS.items()},
                                 **{f"speed-up {label}": round(base[m] / t[m], 2) for m, label in METRICS.items()}}
                          for name, t in timed.items()}).T
    print(f"wall-clock with {args.cost:g} s per label, method {DEFAULT_BATCH_METHOD!r}, on a two-worker "
          f"LocalCluster (its start, {startup:g} s, not included):")
    print(clock.to_string())
    relaxed = relaxed_wall_clock(pool, args.relaxed) if args.relaxed else {}
    if relaxed:
        print(f"{args.relaxed} real relaxed-CHGNet labels: "
              + ", ".join(f"{k} {v:g} s" for k, v in relaxed.items())
              + f"; speed-up {list(relaxed.values())[0] / list(relaxed.values())[1]:.2f}")

    seconds = round(time.perf_counter() - start)
    out = {"machine": machine(), "seconds": seconds, "budget": args.budget, "tolerance_meV": 1000 * TOLERANCE,
           "seeds": seeds, "subset_seeds": subset_seeds, "default_method": DEFAULT_BATCH_METHOD,
           "labels": result, "cost_per_label_s": args.cost, "cluster_start_s": startup, "wall_clock_s": timed,
           "relaxed_wall_clock_s": relaxed}
    path = Path(args.out).with_suffix(".json")
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"summary {path}; {seconds} s in all")
    return out


if __name__ == "__main__":
    main()
