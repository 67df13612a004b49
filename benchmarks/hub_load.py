"""Load test of the workshop server: N learners at once, each doing the work of episodes 5 and 6.

In the manner of hubtraf, each simulated learner logs in to a real hub
(``workshop/start`` on 127.0.0.1) with the room's password, starts their server,
opens a kernel, loads the pool, runs a campaign of 30 table labels, then labels
one candidate with a real CHGNet relaxation (``almat.RelaxedCHGNetOracle``).
For each number of learners and thread setting it prints the median and 95th
percentile wall time of each step, each learner's peak memory (kernel and
single-user server, resident) and CPU time, and the failures; then the sizing
rule the figures imply.

Usage::

    python benchmarks/hub_load.py                               # N = 1, 4, 8, threads 1 and off
    python benchmarks/hub_load.py --learners 1 2 --threads 1
    python benchmarks/hub_load.py --cores 16 --memory-gib 64   # sizing for another machine

Sizing, after The Littlest JupyterHub's rule "memory = concurrent users x peak
memory per user + 128 MB": a machine of M GiB holds ``(M - 0.125) / P``
learners of peak P GiB. With one thread per learner, C cores give C x T CPU
seconds in a window of T seconds, so if the room does the episodes' work
(``c`` CPU seconds per learner) within T, C cores serve ``C T / c`` learners;
and when N learners start the same cell at once, it takes about N / C times
as long as alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workshop"))
from learners import Learner, LocalHub  # noqa: E402

PASSWORD = "argyrodite-room"
#: TLJH's allowance for the hub and the proxy, GiB.
HUB_OVERHEAD_GIB = 0.125
#: The episodes' work, one cell per step, run in order in each learner's kernel.
WORK = {
    "load pool": "import almat\npool = almat.load_pool()",
    "30 labels": ("campaign = almat.Campaign(pool, almat.TableOracle(), seed=0,\n"
                  "    ledger_path=almat.labels_file('06-labeling-loop'))\n"
                  "campaign.run(30)"),
    "relaxation": "almat.RelaxedCHGNetOracle().label(pool, campaign.suggest().index)",
}
#: The kernel's CPU seconds so far, and the peak resident memory (MiB) of the kernel and of
#: its parent, the learner's server.
REPORT = """
import json, os, resource
usage = resource.getrusage(resource.RUSAGE_SELF)
with open(f"/proc/{os.getppid()}/status") as status:
    server = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "kernel": usage.ru_maxrss / 1024,
                  "server": server / 1024}))
"""
STEPS = ["log in", "start server", "start kernel", *WORK]


async def one_learner(hub: LocalHub, name: str) -> dict:
    """Run the episodes' work as learner ``name``; what it measured, and where it failed."""
    result = {"name": name, "failure": None}
    async with Learner(hub.url, name, PASSWORD, timeout=900) as learner:
        try:
            await learner.log_in()
            await learner.start_server()
            await learner.start_kernel()
            cpu = [json.loads(await learner.run(REPORT, step=None))["cpu"]]
            for step, code in WORK.items():
                await learner.run(code, step=step)
                result.update(json.loads(await learner.run(REPORT, step=None)))
                cpu.append(result["cpu"])
            result["cpu"] = dict(zip(WORK, np.diff(cpu)))
        except Exception as error:  # a failure is a result of a load test, not its end
            failed_at = next((s for s in STEPS if s not in learner.seconds), "report")
            result["failure"] = f"{failed_at}: {type(error).__name__}: {error}"
        result["seconds"] = learner.seconds
    return result


def run_room(n: int, threads: str) -> tuple[list[dict], float]:
    """N learners at once on a fresh hub; their results and the wall time of the whole room."""
    with tempfile.TemporaryDirectory(prefix="hub-load-") as folder:
        with LocalHub(folder, PASSWORD, threads=threads, timeout=300) as hub:
            async def room():
                return await asyncio.gather(*(one_learner(hub, f"learner{i + 1}")
                                              for i in range(n)))
            start = time.perf_counter()
            results = asyncio.run(room())
            return results, time.perf_counter() - start


def spread(values: list[float]) -> str:
    """``median / 95th percentile`` of wall times, in seconds."""
    if not values:
        return "-"
    return f"{np.median(values):.1f} / {np.percentile(values, 95):.1f}"


def total_cpu(result: dict) -> float:
    """CPU seconds of a learner's kernel for the whole of the episodes' work."""
    return sum(result["cpu"].values())


def print_tables(runs: list[tuple[int, str, list[dict], float]]) -> None:
    print("\nWall time of each step, seconds, median / 95th percentile over the learners; peak "
          "memory of one learner (resident, kernel's peak + server's peak), largest over the "
          "learners; CPU seconds of one learner's kernel for the work and for the relaxation "
          "alone, medians; room: wall time until the last learner finished.\n")
    print("| learners | threads | " + " | ".join(STEPS)
          + " | peak memory | CPU | CPU relaxation | room | failures |")
    print("|--|--|" + "--|" * len(STEPS) + "--|--|--|--|--|")
    for n, threads, results, wall in runs:
        cells = [spread([r["seconds"][s] for r in results if s in r["seconds"]]) for s in STEPS]
        ok = [r for r in results if r["failure"] is None]
        peak = max((r["kernel"] + r["server"] for r in ok), default=math.nan) / 1024
        cpu = np.median([total_cpu(r) for r in ok]) if ok else math.nan
        relax = np.median([r["cpu"]["relaxation"] for r in ok]) if ok else math.nan
        failed = sum(r["failure"] is not None for r in results)
        print(f"| {n} | {threads} | " + " | ".join(cells)
              + f" | {peak:.2f} GiB | {cpu:.0f} s | {relax:.0f} s | {wall:.0f} s | {failed} |")
    print("\nEach learner: peak resident memory of the kernel and of the server (MiB), CPU "
          "seconds of the kernel.\n")
    print("| learners | threads | learner | kernel | server | CPU | failure |")
    print("|--|--|--|--|--|--|--|")
    for n, threads, results, _ in runs:
        for r in results:
            if r["failure"] is None:
                print(f"| {n} | {threads} | {r['name']} | {r['kernel']:.0f} | {r['server']:.0f} "
                      f"| {total_cpu(r):.0f} | |")
            else:
                print(f"| {n} | {threads} | {r['name']} | | | | {r['failure']} |")


def print_sizing(runs: list[tuple[int, str, list[dict], float]], cores: int, memory_gib: float,
                 window_minutes: float) -> None:
    """The sizing rule, from the runs with the hub's default of one thread per learner."""
    ok = [r for _, threads, results, _ in runs if threads == "1"
          for r in results if r["failure"] is None]
    if not ok:
        print("\nNo run with one thread per learner finished; no sizing rule.")
        return
    peak = max(r["kernel"] + r["server"] for r in ok) / 1024
    cpu = float(np.median([total_cpu(r) for r in ok]))
    relax = float(np.median([r["cpu"]["relaxation"] for r in ok]))
    by_memory = math.floor((memory_gib - HUB_OVERHEAD_GIB) / peak)
    by_cpu = math.floor(cores * window_minutes * 60 / cpu)
    n = min(by_memory, by_cpu)
    print(f"\nSizing, from the runs with one thread per learner: peak {peak:.2f} GiB and "
          f"{cpu:.0f} CPU s per learner for the episodes' work, {relax:.0f} CPU s of it the "
          "relaxation.")
    print(f"- memory: ({memory_gib:.0f} GiB - 0.125 GiB) / {peak:.2f} GiB = {by_memory} learners")
    print(f"- CPU: {cores} cores x {window_minutes:g} min x 60 s / {cpu:.0f} CPU s = {by_cpu} "
          f"learners doing the work within {window_minutes:g} minutes")
    print(f"A machine with {cores} cores and {memory_gib:.0f} GiB serves about {n} learners; "
          f"if all {n} start the relaxation at once, each waits about "
          f"{max(1.0, n / cores) * relax:.0f} s for it ({relax:.0f} s alone).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 4, 8],
                        help="numbers of learners at once (default: 1 4 8)")
    parser.add_argument("--threads", nargs="+", default=["1", "off"],
                        help="ALMAT_HUB_THREADS settings: a number, or off for the libraries' "
                             "default of one per core (default: 1 off)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="cores of the machine to size (default: this one's)")
    parser.add_argument("--memory-gib", type=float,
                        default=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                        help="memory of the machine to size, GiB (default: this one's)")
    parser.add_argument("--window-minutes", type=float, default=15.0,
                        help="minutes within which the room does the episodes' work (default: "
                             "15, episode 6's exercise time)")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start")
    runs = []
    for threads in args.threads:
        for n in args.learners:
            print(f"{n} learner(s), threads {threads} ...", flush=True)
            results, wall = run_room(n, threads)
            runs.append((n, threads, results, wall))
    print(f"Load average {os.getloadavg()[0]:.1f} at the end")
    print_tables(runs)
    print_sizing(runs, args.cores, args.memory_gib, args.window_minutes)


if __name__ == "__main__":
    main()
