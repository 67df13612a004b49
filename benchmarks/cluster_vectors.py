"""Time the cluster vectors of the shipped pool: almat's featurizer against icet's, in one run.

For each set of cutoffs, in a fresh Python process each:

* ``almat``: ``ClusterVectorFeaturizer(parent, cutoffs)`` (set-up: orbits and
  point functions) and ``transform(pool)`` (the 630 candidates);
* ``icet`` (the reference, the ``reference`` extra): ``ClusterSpace`` (set-up)
  and ``get_cluster_vector`` of each candidate's structure (structures built
  beforehand, not timed).

``--almat DIR`` (repeatable) also times the almat found in ``DIR/code``, e.g. a
checkout of another branch, so that two versions are compared in the same run.

Usage::

    python benchmarks/cluster_vectors.py
    python benchmarks/cluster_vectors.py --almat /path/to/other/checkout --repeat 5

Times are medians of ``--repeat`` processes, CPU seconds (``time.process_time``),
imports not included. The ratios are each row's time over this checkout's: how
many times faster this checkout is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
CUTOFFS = [(6.0,), (8.0,), (6.0, 5.0)]


def _work(impl: str, cutoffs: tuple[float, ...]) -> dict[str, float]:
    """Set-up and transform CPU seconds of one implementation, in this process."""
    import almat

    pool = almat.load_pool()
    parent = pool.orderings.parent
    if impl == "icet":
        from icet import ClusterSpace

        from almat.features import parent_atoms

        structures = [pool.orderings.atoms(i) for i in range(len(pool.orderings))]
        atoms, allowed = parent_atoms(parent)
        start = time.process_time()
        space = ClusterSpace(atoms, list(cutoffs), allowed)
        setup = time.process_time() - start
        start = time.process_time()
        for s in structures:
            space.get_cluster_vector(s)
        return {"setup": setup, "transform": time.process_time() - start}
    from almat.features import ClusterVectorFeaturizer  # imports are not timed

    start = time.process_time()
    featurizer = ClusterVectorFeaturizer(parent, cutoffs)
    setup = time.process_time() - start
    start = time.process_time()
    featurizer.transform(pool)
    return {"setup": setup, "transform": time.process_time() - start}


def _run(impl: str, code: Path, cutoffs: tuple[float, ...]) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--worker", impl, json.dumps(cutoffs)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--almat", action="append", default=[], help="another checkout whose code/ to time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-icet", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_work(args.worker[0], tuple(json.loads(args.worker[1])))))
        return
    runs = [("almat (this checkout)", "almat", ROOT / "code")]
    runs += [(f"almat ({d})", "almat", Path(d).resolve() / "code") for d in args.almat]
    runs += [] if args.no_icet else [("icet (reference)", "icet", ROOT / "code")]
    print(machine())
    print(f"median CPU s of {args.repeat} processes; ratios = the row's time / this checkout's")
    print(f"{'cutoffs (Å)':<12} {'implementation':<44} {'set-up':>8} {'transform':>10} {'ratios':>14}")
    for cutoffs in CUTOFFS:
        first = None
        for label, impl, code in runs:
            times = [_run(impl, code, cutoffs) for _ in range(args.repeat)]
            t = {k: _median([x[k] for x in times]) for k in ("setup", "transform")}
            first = first or t
            ratios = f"{t['setup'] / first['setup']:.2f} {t['transform'] / first['transform']:.2f}"
            print(f"{str(cutoffs):<12} {label:<44} {t['setup']:8.3f} {t['transform']:10.3f} {ratios:>14}")


if __name__ == "__main__":
    main()
