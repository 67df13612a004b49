"""Every Python block of an episode's solutions runs, where a learner would run it.

For each episode, one fresh Python process runs the episode's own Python blocks in order;
blocks marked ``.no-run`` are shown, not run, by the lesson's rules (episode 03's solution that
shows CHGNet failing on the disordered CIF is one) and are left out. Each solution block runs
where it stands, after the
blocks before it, in a copy of their namespace, so that one solution cannot feed the next.
icet is hidden, as on a learner's laptop: the lesson must not need it.
A solution that raises fails its test: a learner who copies it gets the same error.

Solutions known to fail today are listed in :data:`KNOWN_FAILURES` with the error they
raise; they are strict expected failures, so fixing the episode makes the test ask for the
entry to be removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import lessoncheck

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Seconds for one episode's blocks (CHGNet scoring included) on a loaded 2-core machine.
EPISODE_TIMEOUT = 1200
#: (episode file, line of the solution's code block): the error it raises today.
KNOWN_FAILURES: dict[tuple[str, int], str] = {}

RUNNER = r"""
import json, sys, traceback
sys.modules["icet"] = None  # a learner's install has no icet (it is the maintainers' reference extra)
import matplotlib
matplotlib.use("Agg")
namespace = {"__name__": "__main__"}
results = {}
for kind, line, code in json.load(sys.stdin):
    target = namespace if kind == "main" else dict(namespace)
    try:
        exec(compile(code, f"episode line {line}", "exec"), target)
        results[line] = None
    except Exception as exc:
        results[line] = f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=-3)
print("RESULTS " + json.dumps(results))
"""


def blocks(episode: Path) -> list[tuple[str, int, str]]:
    """The episode's runnable Python blocks in order: ("main" or "solution", line, code)."""
    return [("solution" if b.in_solution else "main", b.line, b.text)
            for b in lessoncheck.code_blocks(episode)
            if "language-python" in b.classes and "no-run" not in b.classes]


@cache
def run_episode(name: str, labels_dir: str) -> dict[int, str | None]:
    """Run one episode's blocks in a fresh process; the error of each block (None if it ran)."""
    episode = ROOT / "_episodes" / name
    env = dict(os.environ, ALMAT_LABELS_DIR=labels_dir, MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(blocks(episode)),
                            capture_output=True, text=True, timeout=EPISODE_TIMEOUT, env=env,
                            cwd=labels_dir)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, f"{name}: the runner stopped ({result.returncode}):\n{result.stderr[-2000:]}"
    return {int(line): error for line, error in json.loads(lines[-1][8:]).items()}


SOLUTIONS = [(episode.name, line) for episode in lessoncheck.episode_files(ROOT)
             for kind, line, _ in blocks(episode) if kind == "solution"]


@pytest.mark.parametrize("name, line", [
    pytest.param(name, line, marks=pytest.mark.xfail(
        reason=f"known: {KNOWN_FAILURES[(name, line)]}", strict=True, raises=AssertionError))
    if (name, line) in KNOWN_FAILURES else (name, line)
    for name, line in SOLUTIONS], ids=[f"{n[:2]}-line{line}" for n, line in SOLUTIONS])
def test_solution_runs(name, line, tmp_path_factory):
    labels = tmp_path_factory.getbasetemp() / "solution-labels"
    labels.mkdir(exist_ok=True)
    errors = run_episode(name, str(labels))
    lesson = {n for kind, n, _ in blocks(ROOT / "_episodes" / name) if kind == "main"}
    failed = {n: errors[n] for n in sorted(lesson) if n < line and errors[n]}
    assert not failed, f"{name}: a lesson block before the solution failed: {failed}"
    assert errors[line] is None, f"{name}, solution at line {line}: {errors[line]}"


def test_a_failing_solution_is_caught(tmp_path):
    # A solution that uses a name before it is defined, as episode 05's first ones did.
    episode = tmp_path / "_episodes" / "01-broken.md"
    episode.parent.mkdir()
    episode.write_text("---\ntitle: x\n---\n> ## Challenge\n>\n> > ## Solution\n> >\n> > ~~~\n"
                       "> > print(almat.STRATEGIES)\n> > ~~~\n> > {: .language-python}\n"
                       "> {: .solution}\n{: .challenge}\n\n~~~\nimport almat\n~~~\n"
                       "{: .language-python}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(blocks(episode)),
                            capture_output=True, text=True, timeout=300)
    errors = json.loads(result.stdout.split("RESULTS ", 1)[1])
    assert [k for k, _, _ in blocks(episode)] == ["solution", "main"]
    assert errors["8"].startswith("NameError: name 'almat' is not defined")
