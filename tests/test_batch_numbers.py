"""The lesson's numbers on labelling in batches are the batch benchmark's.

``benchmarks/batch_benchmark.py`` saves its summary in ``benchmarks/batch_benchmark.json``.
Every markdown table row of the README named after one of its setups quotes
it: each number cell is ``median`` or ``median [q1-q3]`` of the column's problem set ("whole
pool" or "subsets" in the header) and target ("meV" in the header: within 1 meV/atom of the
minimum, else the minimum itself; "rounds" for rounds to the minimum). A row named after a
timed run quotes its seconds and speed-up. The sentences that quote the benchmark in prose are
listed in CLAIMS and must appear word for word.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = json.loads((ROOT / "benchmarks" / "batch_benchmark.json").read_text(encoding="utf-8"))
LABELS, CLOCK = SUMMARY["labels"], SUMMARY["wall_clock_s"]
EPISODE, README = "_episodes/06-labeling-loop.md", "README.md"
NUMBER = re.compile(r"\d+(?:\.\d+)?")
SEQUENTIAL, METHOD = "sequential (step)", SUMMARY["default_method"]


def fmt(x: float) -> str:
    """A number as the lesson writes it: no trailing .0."""
    return f"{x:g}"


def med(setup: str, kind: str = "whole pool", metric: str = "to_minimum") -> float:
    return LABELS[setup][kind][metric][0]


def speed_up(name: str, metric: str = "to_minimum") -> float:
    return round(CLOCK[SEQUENTIAL][metric] / CLOCK[name][metric], 2)


K1 = "k = 1 (sequential picks)"
CLAIMS = [
    (EPISODE, f"a batch of 4 needed {fmt(med(f'k = 4, {METHOD}', '80 % subsets'))} labels to the minimum "
              f"against {fmt(med(K1, '80 % subsets'))} one at a time, and a batch of 8 "
              f"{fmt(med(f'k = 8, {METHOD}', '80 % subsets'))}"),
    (EPISODE, f"{fmt(speed_up('k = 2, 2 workers'))} times sooner with batches of 2, "
              f"{fmt(speed_up('k = 4, 2 workers'))} with 4 and {fmt(speed_up('k = 8, 2 workers'))} with 8"),
    (README, f"(`python benchmarks/batch_benchmark.py --relaxed 4`, {SUMMARY['seconds']} s;"),
]


def rows(path: str) -> list[tuple[list[str], list[str]]]:
    """(header cells, row cells) of every markdown table row in a file."""
    out, header = [], None
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        line = line.strip().removeprefix(">").strip().removeprefix(">").strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            out.append((header, cells))
    return out


def expected(header: str, setup: str) -> str | None:
    """What a table cell of ``setup`` under ``header`` must say, or None for a cell not checked."""
    plain = setup.replace("*", "")
    if plain in CLOCK:
        metric = "to_near" if "meV" in header else "to_minimum"
        if header.startswith("s "):
            return fmt(CLOCK[plain][metric])
        if header.startswith("speed-up"):
            return fmt(speed_up(plain, metric))
        return None
    kind = "80 % subsets" if "subsets" in header else "whole pool"
    metric = ("rounds_to_minimum" if "rounds" in header else "to_near" if "meV" in header
              else "to_minimum")
    q = LABELS[plain][kind][metric]
    return fmt(q[0]) if q[1] == q[2] == q[0] and kind == "whole pool" else "{:g} [{:g}-{:g}]".format(*q)


def test_every_table_row_named_after_a_setup_quotes_the_benchmark(path=README):
    checked = 0
    for header, cells in rows(path):
        setup = cells[0].replace("*", "")
        if setup not in LABELS and setup not in CLOCK:
            continue
        for title, cell in zip(header[1:], cells[1:]):
            want = expected(title, setup)
            if want is not None and NUMBER.search(cell):
                assert cell.replace("*", "") == want, (path, setup, title)
                checked += 1
    assert checked, f"{path} quotes no row of the batch benchmark"


@pytest.mark.parametrize("path, text", CLAIMS)
def test_prose_quotes_the_benchmark(path, text):
    assert text in " ".join((ROOT / path).read_text(encoding="utf-8").split()), text
