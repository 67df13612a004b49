"""Every lesson notebook runs from the Run menu in JupyterLab with nothing sent off the machine.

Driven through Chromium at 1024x768, on the JupyterLab server of ``test_jupyterlab.py`` (a
temporary copy of ``notebooks/``, the test's own settings), with the page of
``test_notebook_lesson.py``. For each notebook of the lesson, the test unfolds the solutions'
code (View > Expand All Code), clears the stored outputs, chooses Run > Run All Cells, and waits
until every code cell has an execution count, with no traceback and no widget that failed to
display. Each cell whose stored output is a widget (the 3-D views and map of episodes 2 and 3,
the labeling app of episode 6, which shows its candidate in 3-D) must then hold a 3-D viewer's
canvas: the views' JavaScript was loaded and run. Every request to a host other than 127.0.0.1
is aborted and counted, and the count must be 0 for every notebook: the whole lesson runs
offline and reports nothing to a third party. (A cell that shows an image from the web makes
this test fail; tried by hand.)

Screenshots go to ``artifacts/screenshots/jupyterlab-run-all-*.png`` (or under
``$ALMAT_ARTIFACTS``).
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from browser_util import chromium  # noqa: F401  (a fixture)
from test_jupyterlab import (RUN_ALL_TIMEOUT, eventually, jupyterlab, kernel_idle, menu,  # noqa: F401
                             open_notebook, shot, widget_failures)
from test_notebook_lesson import page  # noqa: F401  (a fixture: 1024x768, 0 requests outside)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
#: The execution counts JupyterLab shows on the notebook's code cells, in order: "[3]:", "[*]:"
#: or "[ ]:".
PROMPTS_JS = """() => [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim())"""
WIDGET = "application/vnd.jupyter.widget-view+json"
#: Seconds for the views to draw once the cells have run (chemiscope's module is parsed per view).
DRAW_TIMEOUT = 120


def code_cells(name: str) -> list[bool]:
    """For each code cell of a repository notebook, in order: whether its stored output is a
    widget (as the notebook's generation ran it)."""
    nb = nbformat.read(REPO_ROOT / "notebooks" / name, as_version=4)
    return [any(WIDGET in output.get("data", {}) for output in cell.outputs)
            for cell in nb.cells if cell.cell_type == "code"]


def test_the_lesson_shows_crystals():
    """The check for drawn views below has something to check: the lesson shows four."""
    shown = [name for name in NOTEBOOKS for widget in code_cells(name) if widget]
    assert shown.count("02-enumeration.ipynb") >= 1
    assert shown.count("03-scoring.ipynb") >= 2
    assert shown.count("06-labeling-loop.ipynb") >= 1


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_run_all_offline(jupyterlab, page, name):
    started = time.monotonic()
    open_notebook(page, jupyterlab, name)
    # Unfold the folded solutions' code, so that each code cell shows its execution count; a
    # folded cell shows a placeholder instead, and Run All runs it all the same.
    menu(page, "View", "notebook:show-all-cell-code")
    menu(page, "Edit", "editmenu:clear-all")
    counted = [p for p in page.evaluate(PROMPTS_JS) if p.strip("[]:").isdigit()]
    assert not counted, f"clearing the outputs left execution counts: {counted}"
    menu(page, "Run", "runmenu:run-all")
    stem = name.removesuffix(".ipynb")
    widgets = code_cells(name)
    deadline = time.monotonic() + RUN_ALL_TIMEOUT
    while True:
        failures = widget_failures(page)
        if failures:
            shot(page, f"run-all-{stem}-failure")
            pytest.fail(f"{name} did not run cleanly:\n" + "\n".join(failures))
        prompts = page.evaluate(PROMPTS_JS)
        ran = [p for p in prompts if p.strip("[]:").isdigit()]
        if len(ran) == len(widgets) and kernel_idle(page):
            break
        if time.monotonic() > deadline:
            shot(page, f"run-all-{stem}-timeout")
            pytest.fail(f"{name}: Run All did not finish within {RUN_ALL_TIMEOUT} s; "
                        f"the cells' prompts read {prompts}")
        time.sleep(0.5)
    print(f"{name}: ran {len(ran)} cells in {time.monotonic() - started:.0f} s")
    cells = page.locator(".jp-NotebookPanel:visible .jp-CodeCell")
    for at, widget in enumerate(widgets):
        if widget:
            canvas = cells.nth(at).locator(".chsp-structure-viewer-cell canvas")
            canvas.first.scroll_into_view_if_needed(timeout=DRAW_TIMEOUT * 1000)
            eventually(lambda: canvas.first.is_visible(), DRAW_TIMEOUT,
                       f"{name}: code cell {at} shows no 3-D view")
    shot(page, f"run-all-{stem}")  # the page fixture then checks that nothing left 127.0.0.1
