"""Time the enumeration backends: fcc binary and ternary, Li6PS5Cl with and without split sites, cold start.

Cases (all compositions on fcc, fixed composition on Li6PS5Cl)::

    fcc2       fcc Ag/Au, cell sizes 1-16           (enumlib's enum.x is the usual yardstick)
    fcc3       fcc Ag/Au/Pd, cell sizes 1-10
    li         Li6PS5Cl, Li:vacancy 1:1 on 48h, cell sizes 1-2
    li-split   the same with min_distance=2.0 Å, cell sizes 1-4

Every run is a fresh Python process, so peak memory and timings do not leak
from one run into the next. The "fast" backend runs twice: first with an empty
numba cache (NUMBA_CACHE_DIR in a new temporary folder: its time includes
compiling, "cold"), then with the cache that run wrote, as every later run
finds it. icet runs the same case in the same session as the reference; it is
slow, so by default it only gets the sizes given by ``--icet-sizes``. enumlib's
``enum.x`` runs too when it is on PATH (conda-forge only).

Usage::

    python benchmarks/enumeration.py                         # every case, icet on small sizes
    python benchmarks/enumeration.py --cases fcc3 li-split   # some cases
    python benchmarks/enumeration.py --no-icet

Times are CPU seconds of the enumeration call (``time.process_time``; wall
seconds are printed too: on a shared machine they can be much longer).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from machine import machine

#: name -> (parent, sizes for almat, sizes for icet by default, concentrations, min_distance in Å)
CASES = {
    "fcc2": ("fcc Ag/Au", range(1, 17), range(1, 9), "any", None),
    "fcc3": ("fcc Ag/Au/Pd", range(1, 11), range(1, 7), "any", None),
    "li": ("Li6PS5Cl", range(1, 3), range(1, 2), None, None),
    "li-split": ("Li6PS5Cl", range(1, 5), range(1, 2), None, 2.0),
}


def _rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parent(name: str):
    import almat

    if name == "Li6PS5Cl":
        return almat.set_occupancy(almat.load_parent(), 0.5)
    from ase.build import bulk
    from pymatgen.core import Lattice, Structure

    species = name.split()[1].split("/")
    atoms = bulk("Cu", "fcc", a=4.0)
    return Structure(Lattice(atoms.cell[:]), [{s: 1 / len(species) for s in species}], [[0, 0, 0]])


def _job(backend: str, case: str, sizes: range):
    """A callable that enumerates ``case`` at ``sizes`` with ``backend``, set up outside the timing."""
    import almat
    from almat.enumeration.walk import enumerate_labelings

    name, _, _, concentrations, min_distance = CASES[case]
    parent = _parent(name)
    if backend == "fast":
        return lambda: len(enumerate_labelings(parent, sizes, concentrations, min_distance=min_distance,
                                               max_rows=None))
    if concentrations is None:  # fixed composition: the package's own icet/enumlib path
        return lambda: len(almat.enumerate_table(parent, sizes.stop - 1, sizes.start, backend,
                                                 min_distance=min_distance, max_rows=None))
    if backend == "icet":
        from ase.build import bulk
        from icet.tools import enumerate_structures

        allowed = name.split()[1].split("/")
        return lambda: sum(1 for _ in enumerate_structures(bulk("Cu", "fcc", a=4.0), list(sizes), allowed))
    raise SystemExit(f"{backend} runs only the fixed-composition cases")


def worker(backend: str, case: str, first: int, last: int) -> dict:
    """Run one backend on one case in this process and report what it took."""
    job = _job(backend, case, range(first, last + 1))
    base = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    count = job()
    return {"backend": backend, "case": case, "sizes": f"{first}-{last}", "count": count,
            "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "peak_mib": _rss_mib(), "extra_mib": _rss_mib() - base}


def _subprocess(backend: str, case: str, sizes: range, cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    proc = subprocess.run([sys.executable, __file__, "--worker", backend, case, str(sizes.start),
                           str(sizes.stop - 1)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"backend": backend, "case": case, "sizes": f"{sizes.start}-{sizes.stop - 1}",
                "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(backend: str, case: str, sizes: range) -> dict:
    """Run :func:`worker` in fresh interpreters: "fast" once with an empty numba cache, once warm."""
    with tempfile.TemporaryDirectory() as cache:
        row = _subprocess(backend, case, sizes, cache)
        if backend == "fast" and "error" not in row:
            cold = row["cpu_s"]
            row = _subprocess(backend, case, sizes, cache)
            row["cold_cpu_s"] = cold
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--no-icet", action="store_true", help="skip the icet reference")
    parser.add_argument("--worker", nargs=4, metavar=("BACKEND", "CASE", "FIRST", "LAST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        backend, case, first, last = args.worker
        print(json.dumps(worker(backend, case, int(first), int(last))))
        return 0

    print(f"machine: {machine()}")
    rows = []
    for case in args.cases:
        _, sizes, icet_sizes, concentrations, _ = CASES[case]
        runs = [("fast", sizes)]
        if icet_sizes != sizes:
            runs.append(("fast", icet_sizes))  # the same sizes as the reference, for the ratio
        if not args.no_icet:
            runs.append(("icet", icet_sizes))
        if shutil.which("enum.x") and concentrations is None:
            runs.append(("enumlib", sizes))
        for backend, run_sizes in runs:
            rows.append(measure(backend, case, run_sizes))
            print(f"  ran {backend} on {case} at sizes {run_sizes.start}-{run_sizes.stop - 1}", flush=True)
    reference = {(r["case"], r["sizes"]): r["cpu_s"] for r in rows
                 if r["backend"] in ("icet", "enumlib") and "error" not in r}
    print(f"\n{'case':9} {'backend':8} {'sizes':>6} {'count':>9} {'cpu/s':>8} {'wall/s':>8} {'cold/s':>7} "
          f"{'peak/MiB':>9} {'+MiB':>6} {'cpu/ref':>8}")
    agree = True
    for r in rows:
        if "error" in r:
            print(f"{r['case']:9} {r['backend']:8} {r['sizes']:>6}  failed: {r['error']}")
            continue
        ref = reference.get((r["case"], r["sizes"]))
        ratio = f"{r['cpu_s'] / ref:.3f}" if ref and r["backend"] == "fast" else "-"
        cold = f"{r['cold_cpu_s']:.2f}" if "cold_cpu_s" in r else "-"
        print(f"{r['case']:9} {r['backend']:8} {r['sizes']:>6} {r['count']:>9} {r['cpu_s']:>8.2f} "
              f"{r['wall_s']:>8.2f} {cold:>7} {r['peak_mib']:>9.0f} {r['extra_mib']:>6.0f} {ratio:>8}")
    counts: dict[tuple[str, str], set[int]] = {}
    for r in rows:
        if "error" not in r:
            counts.setdefault((r["case"], r["sizes"]), set()).add(r["count"])
    for (case, sizes), found in sorted(counts.items()):
        ok = len(found) == 1
        agree &= ok
        print(f"{case} sizes {sizes}: counts {'agree' if ok else 'DISAGREE: ' + str(sorted(found))}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
