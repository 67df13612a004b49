"""Scoring throughput and peak memory: score_structures against the original per-structure loop.

Each case runs in its own Python process so that its peak resident memory (ru_maxrss) is its own.

    python benchmarks/scoring.py                 # the 48 cell-size-1 orderings
    python benchmarks/scoring.py --pool 3000     # 3,000 cell-size-2 orderings (26 atoms) of the pool
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from machine import machine

CHILD = r"""
import json, resource, sys, time
import numpy as np
import almat
from almat.scoring import load_chgnet, score_structures
mode, n_pool = sys.argv[1], int(sys.argv[2])
if n_pool:
    pool = almat.load_pool("li6ps5cl")
    rows = np.flatnonzero(pool.reference["cell_size"].to_numpy() == 2)[:n_pool]
    structures = pool.orderings.structures(rows)
else:
    structures = almat.enumerate_orderings(almat.set_occupancy(almat.load_parent(), 0.5), 1)
model = load_chgnet()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if mode == "loop":
    energies = [float(model.predict_structure(s, task="efsm")["e"]) for s in structures]
elif mode == "loop-e":
    energies = [float(model.predict_structure(s, task="e")["e"]) for s in structures]
else:
    df = score_structures(structures, forces="f" in mode, stress="s" in mode, cache=False,
                          progress=False)
    energies = df["energy_per_atom"].tolist()
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": len(structures), "atoms": len(structures[0]), "seconds": dt,
                  "peak_gib": peak / 2**20, "before_gib": base / 2**20, "energies": energies}))
"""


def run_case(mode: str, n_pool: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(n_pool)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--pool", type=int, default=0,
                        help="score this many cell-size-2 orderings of the shipped pool instead of the 48")
    parser.add_argument("--cases", nargs="+", default=["loop", "loop-e", "e", "efs"],
                        choices=["loop", "loop-e", "e", "efs"],
                        help="loop: the original script (task efsm per structure); loop-e: the "
                             "same loop, energy only; e, efs: score_structures")
    args = parser.parse_args()
    names = {"loop": "loop, energy+forces+stress+magmoms (original script)",
             "loop-e": "loop, energy only",
             "e": "score_structures, energy (default)",
             "efs": "score_structures, forces+stress"}
    cases = {names[c]: c for c in args.cases}
    print(f"machine: {machine()}")
    results = {name: run_case(mode, args.pool) for name, mode in cases.items()}
    first = next(iter(results.values()))
    ref_name = "loop, energy only" if "loop, energy only" in results else next(iter(results))
    ref = results[ref_name]
    print(f"{first['n']} structures of {first['atoms']} atoms")
    print(f"{'case':55s} {'time/s':>8s} {'struct/s':>9s} {'speed-up':>9s} {'peak GiB':>9s} {'max |dE|':>10s}")
    for name, r in results.items():
        dE = max(abs(a - b) for a, b in zip(r["energies"], ref["energies"]))
        print(f"{name:55s} {r['seconds']:8.2f} {r['n'] / r['seconds']:9.1f} "
              f"{ref['seconds'] / r['seconds']:8.2f}x {r['peak_gib']:9.2f} {dE:10.1e}")
    print(f"speed-up and |dE| are against '{ref_name}' run in the same invocation; "
          "peak is the whole process (model included).")


if __name__ == "__main__":
    main()
