"""tqdm's notebook progress bars in the lesson's notebooks (issue 10, item 5).

A long cell shows a ``tqdm.auto`` bar (``progress=True`` in ``almat.score_structures``
and the relaxation helpers). In a notebook that is an ipywidgets bar whose stored output
holds a text meter with timings. These tests run a real kernel on a cell with a bar, store
it as ``scripts/make_notebooks.py`` does, and check that the stored text reads as the bar
ended, that regenerating would not change the saved widget state, and that nbval passes
with ``tests/nbval_sanitize.cfg`` and fails without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from notebook_script import load_make_notebooks

ROOT = Path(__file__).resolve().parents[1]

make_notebooks = load_make_notebooks()
BAR_CELL = """\
import time
from tqdm.auto import tqdm

for _ in tqdm(range(20), desc="CHGNet", unit="structure"):
    time.sleep(0.02)
print("scored")"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A notebook with one progress bar, run in a kernel and stored as the lesson stores it."""
    folder = tmp_path_factory.mktemp("bars")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BAR_CELL)])
    nb.metadata["kernelspec"] = dict(make_notebooks.KERNELSPEC)
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env_path
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        os.environ["PATH"] = env_path
    make_notebooks.coalesce_streams(nb)
    make_notebooks.settle_progress_bars(nb)
    nb = make_notebooks.renumber_widgets(nb, "bars")
    path = folder / "bars.ipynb"
    nbformat.write(nb, path)
    return path


def bar_output(path: Path) -> dict:
    cell = nbformat.read(path, as_version=4).cells[0]
    return next(out for out in cell.outputs if make_notebooks.WIDGET_VIEW in out.get("data", {}))


def test_the_stored_bar_reads_as_it_ended(stored):
    assert bar_output(stored)["data"]["text/plain"] == "CHGNet: 100%|██████████| 20/20"


def test_the_saved_widget_state_holds_no_timings(stored):
    state = json.dumps(nbformat.read(stored, as_version=4).metadata["widgets"])
    assert "20/20" in state and "structure/s" not in state and "00:00" not in state


def test_the_bar_is_not_written_into_the_episode(stored):
    cell = nbformat.read(stored, as_version=4).cells[0]
    assert make_notebooks.text_output(cell) == "scored"


def nbval(path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
         "--nbval", "--nbval-current-env", *options, path.name],
        cwd=path.parent, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep
             + os.environ.get("PATH", "")})


def test_nbval_passes_with_the_lesson_sanitizer(stored):
    result = nbval(stored, "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"))
    assert result.returncode == 0, result.stdout[-3000:]


def test_nbval_fails_without_it(stored):
    result = nbval(stored)
    assert result.returncode != 0 and "100%" in result.stdout, result.stdout[-3000:]
