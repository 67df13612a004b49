"""Time to screen every allowed cell-size-3 ordering of Li6PS5Cl with a surrogate.

Steps timed separately: enumeration with the 2.0 Å exclusion (fast backend),
pool with Li-Li distances, cluster vectors, surrogate prediction with
uncertainty. The surrogate is trained on the shipped pool's relaxed CHGNet
energies (cell sizes 1-2).

    python benchmarks/screening.py
"""

import time

import almat
from machine import machine


def main() -> None:
    print(f"machine: {machine()}")
    half = almat.set_occupancy(almat.load_parent(), 0.5)
    pool = almat.load_pool("li6ps5cl")
    featurizer = almat.ClusterVectorFeaturizer(half)
    model = almat.BayesianClusterExpansion().fit(featurizer.transform(pool), pool.energies)
    times = {}
    t = time.perf_counter()
    table = almat.enumerate_table(half, 3, 3, min_distance=2.0)
    times["enumerate (fast backend)"] = time.perf_counter() - t
    t = time.perf_counter()
    space = almat.make_pool(table, name="cell size 3, allowed")
    times["pool with Li-Li distances"] = time.perf_counter() - t
    t = time.perf_counter()
    X = featurizer.transform(space)
    times["cluster vectors"] = time.perf_counter() - t
    t = time.perf_counter()
    model.predict(X, return_std=True)
    times["predict mu and sigma"] = time.perf_counter() - t
    print(f"{len(space):,} orderings, {X.shape[1]} cluster-vector columns")
    for name, dt in times.items():
        print(f"{name:28s} {dt:7.2f} s")
    print(f"{'total':28s} {sum(times.values()):7.2f} s")
    best = almat.screen(space, model, featurizer, top=5)
    print(best.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
