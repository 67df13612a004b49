"""Relaxation throughput: Dask worker and thread layouts against the plain StructOptimizer loop.

Relaxes the same cell-size-2 candidates (26 atoms) of the shipped pool in each layout and prints
candidates per minute; the reference is CHGNet's own ``StructOptimizer`` called in a loop in one
process with all cores, as the original workflow did. Each layout is its own Python process.

    python benchmarks/relaxation.py                       # 6 candidates, layouts 1x2, 1x1, 2x1
    python benchmarks/relaxation.py --n 10 --layouts 1x2 2x1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from machine import machine

CHILD = r"""
import json, os, sys, time
import numpy as np
import almat
from almat.parallel import relax_many
workers, threads, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pool = almat.load_pool("li6ps5cl")
rows = np.flatnonzero(pool.reference["cell_size"].to_numpy() == 2)[:n]
items = {pool.ids[i]: pool.structure(int(i)) for i in rows}
start = time.perf_counter()
if workers == 0:  # the reference: StructOptimizer in a loop, one process
    import torch
    from chgnet.model.dynamics import StructOptimizer
    torch.set_num_threads(threads)
    opt = StructOptimizer(model=almat.load_chgnet())
    energies = {}
    for key, s in items.items():
        out = opt.relax(s, fmax=0.05, steps=500, relax_cell=True, verbose=False)
        energies[key] = float(out["trajectory"].energies[-1]) / len(s)
else:
    with __import__("tempfile").TemporaryDirectory() as d:
        res = relax_many(items, os.path.join(d, "r.jsonl"), n_workers=workers,
                         torch_threads=threads, progress=False)
        energies = {k: r.energy_per_atom for k, r in res.items()}
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "energies": energies}))
"""


def run(workers: int, threads: int, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(workers), str(threads), str(n)],
                         capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="candidates relaxed per layout")
    parser.add_argument("--layouts", nargs="+", default=["1x2", "1x1", "2x1"],
                        help="WORKERSxTHREADS of the LocalCluster")
    args = parser.parse_args()
    print(machine())
    ref = run(0, 2, args.n)
    print(f"{args.n} cell-size-2 candidates (26 atoms), fmax 0.05 eV/Å, cell relaxed")
    print(f"{'layout':>28} {'time':>8} {'cand./min':>10} {'vs loop':>8} {'max |dE| eV/atom':>17}")
    rate = 60 * args.n / ref["seconds"]
    print(f"{'StructOptimizer loop, 2 thr':>28} {ref['seconds']:7.1f}s {rate:10.2f} {1:8.2f}")
    for layout in args.layouts:
        w, t = (int(x) for x in layout.split("x"))
        res = run(w, t, args.n)
        dev = max(abs(res["energies"][k] - ref["energies"][k]) for k in ref["energies"])
        label = f"Dask {w} worker(s) x {t} thread(s)"
        print(f"{label:>28} {res['seconds']:7.1f}s {60 * args.n / res['seconds']:10.2f} "
              f"{ref['seconds'] / res['seconds']:8.2f} {dev:17.1e}")


if __name__ == "__main__":
    main()
