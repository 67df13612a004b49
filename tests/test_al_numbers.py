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


def med(setup: str, kind: str = "pool", metric: str = "to_minimum") -> float:
    """Median labels of a setup on a problem set ("pool" or "subsets") to a target."""
    return SETUPS[setup][kind][metric][0]


def best_cheap(kind: str, metric: str) -> float:
    return min(med("Ewald order", kind, metric), med("unrelaxed order", kind, metric))


DEFAULT, EWALD, UNRELAXED, RANDOM = "default campaign", "Ewald order", "unrelaxed order", "random order (expected)"
RANDOM_START = ["10 random, greedy", "10 random, LCB", "10 random, EI"]
CPU = SUMMARY["cpu_ms_per_label"]
FIT = [v for k, v in CPU.items() if k.startswith("fit+predict")]
FIT_RANGE = f"{min(FIT):g} to {max(FIT):g}" if fmt(min(FIT)) != fmt(max(FIT)) else fmt(min(FIT))
STEP = fmt(CPU["whole step, first 100 labels"])
RATIOS = SUMMARY["ratios_to_best_cheap"]
MISSED = SETUPS[DEFAULT]["subsets"]["runs"] - SETUPS[DEFAULT]["subsets"]["found"]
N_SUBSETS = SETUPS[DEFAULT]["subsets"]["runs"]
Q1, Q3 = SETUPS[DEFAULT]["subsets"]["to_minimum"][1:]
EPISODE, README, GUIDE = FILES

#: Sentences in prose that quote the benchmark: (file, text).
CLAIMS = [
    (EPISODE, f"after {fmt(med(EWALD, metric='to_near'))} or {fmt(med(UNRELAXED, metric='to_near'))} "
              f"labels, where random picking needs {fmt(med(RANDOM, metric='to_near'))} on average"),
    (EPISODE, f"on the whole pool ({fmt(med(DEFAULT))} against {fmt(best_cheap('pool', 'to_minimum'))}, "
              f"{fmt(med(DEFAULT, metric='to_near'))} against {fmt(best_cheap('pool', 'to_near'))}) and on "
              f"the subsets ({fmt(med(DEFAULT, 'subsets'))} against {fmt(best_cheap('subsets', 'to_minimum'))}, "
              f"{fmt(med(DEFAULT, 'subsets', 'to_near'))} against {fmt(best_cheap('subsets', 'to_near'))})"),
    (EPISODE, f"in {MISSED} of the {N_SUBSETS} subsets the pool's minimum was left out"),
    (EPISODE, f"take {FIT_RANGE} ms of CPU time per label (with 10 to 150 labels), a whole step {STEP} ms"),
    (EPISODE, f"but {fmt(med('10 random, LCB', metric='to_near') - med(EWALD, metric='to_near'))} labels more "
              "than the Ewald order"),
    (EPISODE, f"against {fmt(med(DEFAULT))} and {fmt(med(DEFAULT, metric='to_near'))} from the unrelaxed "
              f"energies: both far ahead of the Ewald order ({fmt(med(EWALD))} and "
              f"{fmt(med(EWALD, metric='to_near'))})"),
    (EPISODE, f"interquartile range on the subsets spans about {round(Q3 - Q1)} labels"),
    (README, f"(`python benchmarks/al_benchmark.py`, {SUMMARY['seconds']} s;"),
    (README, "needs " + ", ".join(f"{RATIOS[k][m]:.2f}" for k in ("pool", "subsets")
                                  for m in ("to_minimum", "to_near")) + " of the best cheap ranking's labels"),
    (README, f"more to within 1 meV/atom ({fmt(med('10 random, LCB', metric='to_near'))} against "
             f"{fmt(med(EWALD, metric='to_near'))})"),
    (README, f"In {MISSED} of the {N_SUBSETS} subsets the pool's minimum was left out"),
    (README, f"costs {FIT_RANGE} ms of CPU per label (with 10 to 150 labels), a whole step {STEP} ms"),
    (GUIDE, f"reach the exact relaxed minimum in {fmt(min(med(s) for s in RANDOM_START))} to "
            f"{fmt(max(med(s) for s in RANDOM_START))} labels, against {fmt(med(EWALD))} for the Ewald order, "
            f"but need {fmt(med('10 random, LCB', metric='to_near'))} labels to come within 1 meV/atom"),
    (GUIDE, f"against {fmt(med(EWALD, metric='to_near'))} for the Ewald order"),
    (GUIDE, f"It needs {fmt(med(DEFAULT))} labels to the minimum and {fmt(med(DEFAULT, metric='to_near'))} to "
            f"within 1 meV/atom on the whole pool, and medians of {fmt(med(DEFAULT, 'subsets'))} and "
            f"{fmt(med(DEFAULT, 'subsets', 'to_near'))} on {N_SUBSETS} random 80 % subsets"),
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


def setup_name(cell: str) -> str:
    """The setup a row names: "**default campaign** (head start, then greedy)" names
    "default campaign", "random order (expected)" itself."""
    name = cell.replace("*", "").strip()
    return name if name in SETUPS else re.sub(r"\s*\(.*\)$", "", name)


def prose(path: str) -> str:
    """The text of a file as one line: blockquote markers dropped, whitespace runs made one space."""
    lines = (re.sub(r"^(\s*>)+", "", line) for line in (ROOT / path).read_text(encoding="utf-8").splitlines())
    return " ".join(" ".join(lines).split())


def benchmark_rows(path: str) -> list[tuple[str, str, tuple[str, str], str]]:
    """(table header, setup, column key, cell) of every number cell of a benchmark table."""
    out = []
    for table in tables((ROOT / path).read_text(encoding="utf-8")):
        header, body = table[0], table[1:]
        names = [setup_name(row[0]) for row in body]
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
    assert claim in prose(path), f"{path} should say: {claim!r} (benchmarks/al_benchmark.json)"


def test_the_summary_covers_twenty_held_out_seeds_and_twenty_perturbed_problems():
    assert len(SUMMARY["seeds"]) >= 20 and min(SUMMARY["seeds"]) >= 400
    assert len(SUMMARY["subset_seeds"]) >= 20
    for setup, entry in SETUPS.items():
        assert entry["pool"]["runs"] == len(SUMMARY["seeds"]), setup
        assert entry["subsets"]["runs"] == len(SUMMARY["subset_seeds"]), setup


def test_the_comparisons_the_lesson_states_in_words_hold():
    # keypoint and episode 5: the default needs under half the best cheap ranking's labels
    assert all(r < 0.5 for kind in RATIOS.values() for r in kind.values()), RATIOS
    # episode 5, random start: the Ewald order wins to within 1 meV/atom; to the minimum active
    # learning needs about half the Ewald order's labels and a fifth of random's
    for setup in RANDOM_START:
        assert med(setup, metric="to_near") > med(EWALD, metric="to_near")
        assert 0.4 < med(setup) / med(EWALD) < 0.6
        assert 0.15 < med(setup) / med(RANDOM) < 0.25
        assert 0.4 < med(setup, metric="to_near") / med(RANDOM, metric="to_near") < 0.6
    # the three things that make the head start work, each against the default
    for other in ("2 random, greedy", "head start, LCB", "head start, EI",
                  "head start, greedy, cheap features"):
        for kind in ("pool", "subsets"):
            for metric in ("to_minimum", "to_near"):
                assert med(DEFAULT, kind, metric) <= med(other, kind, metric), (other, kind, metric)
