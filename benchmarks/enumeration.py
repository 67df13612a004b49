"""Compare the enumeration backends on Li6PS5Cl (Li:vacancy 1:1 on 48h): counts, time, peak memory.

Every backend and cell size runs in a fresh Python process, so peak memory
(the process's maximum resident set size, and its growth over what the
process held after imports) and timings do not leak from one run into the
next. The "fast" backend runs twice, each time in a fresh process: first with
an empty numba cache (the time then includes compiling, "jit+time"), then with
the compiled code cached, as every later run finds it ("time", memory).

Usage::

    python benchmarks/enumeration.py --sizes 1 2
    python benchmarks/enumeration.py --sizes 1 2 --skip-slow      # no icet beyond size 1
    python benchmarks/enumeration.py --backends fast icet --sizes 1

Ratios are time / time of the reference backend at the same size: enumlib's
``enum.x`` when it is on PATH, icet otherwise.
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

BACKENDS = ("fast", "enumlib", "icet")
#: Runs that take minutes: (backend, smallest size that is slow).
SLOW = {"icet": 2}


def _rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(backend: str, size: int):
    import almat

    if backend == "icet":
        import icet.tools  # noqa: F401  (imported before the memory baseline)
    parent = almat.set_occupancy(almat.load_parent(), 0.5)
    return lambda: almat.enumerate_table(parent, max_cell_size=size, min_cell_size=size,
                                         backend=backend)


def worker(backend: str, size: int) -> dict:
    """Run one backend at one size in this process and report what it took."""
    job = _run(backend, size)
    base = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    table = job()
    return {"backend": backend, "size": size, "count": len(table), "time_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu, "peak_mib": _rss_mib(), "extra_mib": _rss_mib() - base}


def available(backend: str) -> str | None:
    """None if the backend can run here, else why not."""
    if backend == "enumlib" and shutil.which("enum.x") is None:
        return "enum.x is not on PATH (enumlib comes from conda-forge)"
    return None


def _subprocess(backend: str, size: int, cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    proc = subprocess.run([sys.executable, __file__, "--worker", backend, str(size)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"backend": backend, "size": size, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(backend: str, size: int) -> dict:
    """Run :func:`worker` in fresh interpreters: "fast" once with an empty numba cache, once warm."""
    with tempfile.TemporaryDirectory() as cache:
        row = _subprocess(backend, size, cache)
        if backend == "fast" and "error" not in row:
            cold = row["time_s"]
            row = _subprocess(backend, size, cache)
            row["time_with_jit_s"] = cold
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2], help="cell sizes (primitive cells)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--skip-slow", action="store_true", help="skip icet at size 2 and up (minutes each)")
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return 0

    print(f"machine: {machine()}")
    rows = []
    for backend in args.backends:
        why = available(backend)
        if why:
            print(f"skipping {backend}: {why}")
            continue
        for size in args.sizes:
            if args.skip_slow and size >= SLOW.get(backend, 10**9):
                print(f"skipping {backend} at size {size} (--skip-slow)")
                continue
            row = measure(backend, size)
            rows.append(row)
            print(f"  ran {backend} at size {size}", flush=True)
    reference = "enumlib" if any(r["backend"] == "enumlib" and "error" not in r for r in rows) else "icet"
    ref_time = {r["size"]: r["time_s"] for r in rows if r["backend"] == reference and "error" not in r}
    print(f"\n{'backend':8} {'size':>4} {'count':>9} {'time/s':>8} {'cpu/s':>7} {'jit+time/s':>10} "
          f"{'peak/MiB':>9} {'+MiB':>7} {'time/' + reference:>12}")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:8} {r['size']:>4}  failed: {r['error']}")
            continue
        ratio = f"{r['time_s'] / ref_time[r['size']]:.3f}" if r["size"] in ref_time else "-"
        jit = f"{r['time_with_jit_s']:.2f}" if "time_with_jit_s" in r else "-"
        print(f"{r['backend']:8} {r['size']:>4} {r['count']:>9} {r['time_s']:>8.2f} {r['cpu_s']:>7.2f} "
              f"{jit:>10} {r['peak_mib']:>9.0f} {r['extra_mib']:>7.0f} {ratio:>12}")
    counts = {}
    for r in rows:
        if "error" not in r:
            counts.setdefault(r["size"], set()).add(r["count"])
    for size, found in sorted(counts.items()):
        print(f"size {size}: counts {'agree' if len(found) == 1 else 'DISAGREE: ' + str(sorted(found))}")
    return 0 if all(len(v) == 1 for v in counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
