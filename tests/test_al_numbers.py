"""The lesson's numbers on active learning against the cheap rankings are the benchmark's.

``benchmarks/al_benchmark.py`` saves its summary in ``benchmarks/al_benchmark.json``. Every
markdown table of episode 5, the README and the instructor guide with a row named after one of
its setups must quote it: each number cell is ``median`` or ``median [q1-q3]`` of the column's
problem set ("whole pool" or "subsets" in the header) and target ("meV" in the header: within
1 meV/atom of the minimum, else the minimum itself). The sentences that quote the benchmark in
prose are listed in CLAIMS and must appear word for word.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = json.loads((ROOT / "benchmarks" / "al_benchmark.json").read_text(encoding="utf-8"))
SETUPS = SUMMARY["setups"]
FILES = ["_episodes/05-strategies.md", "README.md", "_extras/guide.md"]
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def fmt(x: float) -> str:
    """A number as the lesson writes it: no trailing .0."""
    return f"{x:g}"


def median(setup: str, kind: str, metric: str) -> str:
    return fmt(SETUPS[setup][kind][metric][0])


#: Sentences in prose that quote the benchmark: (file, text with {placeholders}).
CLAIMS = [
]


def tables(text: str) -> list[list[list[str]]]:
    """Markdown tables of a text (blockquote markers removed): rows of stripped cells, the
    separator row dropped."""
    found, rows = [], []
    for line in text.splitlines() + [""]:
        line = re.sub(r"^(\s*>)+\s?", "", line).strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found


def column_key(header: str) -> tuple[str, str] | None:
    """(problem set, metric) of a header cell, None for a column that quotes neither."""
    if "minimum" not in header and "meV" not in header:
        return None
    return ("subsets" if "subset" in header else "pool", "to_near" if "meV" in header else "to_minimum")


def benchmark_rows(path: str) -> list[tuple[str, str, tuple[str, str], str]]:
    """(table header, setup, column key, cell) of every number cell of a benchmark table."""
    out = []
    for table in tables((ROOT / path).read_text(encoding="utf-8")):
        header, body = table[0], table[1:]
        names = [row[0].strip("*").strip() for row in body]
        if not any(name in SETUPS for name in names):
            continue
        for name, row in zip(names, body):
            assert name in SETUPS, f"{path}: row {name!r} of a benchmark table is not one of its setups"
            for head, cell in zip(header[1:], row[1:]):
                key = column_key(head)
                if key is not None and NUMBER.search(cell):
                    out.append((" | ".join(header), name, key, cell))
    return out


@pytest.mark.parametrize("path", FILES)
def test_every_benchmark_table_quotes_the_benchmark(path):
    rows = benchmark_rows(path)
    if path != "_extras/guide.md":
        assert rows, f"{path} has no table of the benchmark's setups"
    for header, name, (kind, metric), cell in rows:
        quoted = [float(x) for x in NUMBER.findall(cell.replace("−", "-"))]
        expected = SETUPS[name][kind][metric]
        assert quoted == expected[:len(quoted)] and len(quoted) in (1, 3), (
            f"{path}, table '{header}', row {name!r}, {kind} {metric}: the lesson says {cell!r}, "
            f"the benchmark {expected[0]:g} [{expected[1]:g}-{expected[2]:g}]")


@pytest.mark.parametrize("path, claim", CLAIMS)
def test_every_claim_in_prose_quotes_the_benchmark(path, claim):
    text = " ".join((ROOT / path).read_text(encoding="utf-8").split())
    assert claim in text, f"{path} should say: {claim!r} (benchmarks/al_benchmark.json)"


def test_the_summary_covers_twenty_held_out_seeds_and_twenty_perturbed_problems():
    assert len(SUMMARY["seeds"]) >= 20 and min(SUMMARY["seeds"]) >= 400
    assert len(SUMMARY["subset_seeds"]) >= 20
    for setup, entry in SETUPS.items():
        assert entry["pool"]["runs"] == len(SUMMARY["seeds"]), setup
        assert entry["subsets"]["runs"] == len(SUMMARY["subset_seeds"]), setup
