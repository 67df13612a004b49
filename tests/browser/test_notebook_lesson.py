"""A notebook carries its episode in JupyterLab: a folded solution opens, runs and shows its output.

Driven through Chromium at 1024x768 (a small laptop or a projector), on the JupyterLab server
of ``test_jupyterlab.py`` (a temporary copy of ``notebooks/``, the test's own settings). In
episode 2's notebook, the solution of the challenge "From 924 to 4" is folded: its text in a
``<details>`` block, its code cell collapsed (source and output). The test opens both, runs the
code in a fresh kernel and reads the new output. It also checks what a reader sees before
running anything: the lesson's address, every solution folded, the figure of episode 6 that no
cell draws, and no markup of the website left over.
Every request to a host other than 127.0.0.1 is aborted and counted, and the count must be 0.

Screenshots go to ``artifacts/screenshots/jupyterlab-lesson-*.png`` (or under
``$ALMAT_ARTIFACTS``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml
from browser_util import chromium, offline_page  # noqa: F401  (chromium: a fixture)
from test_jupyterlab import eventually, jupyterlab, kernel_idle, open_notebook, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL_SCREEN = {"width": 1024, "height": 768}
UI_TIMEOUT = 30  # s
RUN_TIMEOUT = 90  # s: one small cell in a kernel that has just started, on a loaded machine
NOTEBOOK = "02-enumeration.ipynb"
SOLUTION_CODE = "print(comb(12, 6), 2 ** 6)"
SOLUTION_OUTPUT = "924 64"
SOLUTION_TEXT = "860 of the 924 fillings"
#: JupyterLab puts a Markdown cell's image in the page before it swaps the attachment's data in,
#: so Chromium first tries the bare ``attachment:`` address and logs that it failed; the picture
#: then shows (``test_what_a_reader_sees_before_running`` checks one is drawn).
ATTACHMENT_FIRST_TRY = re.compile(r"ERR_UNKNOWN_URL_SCHEME \(attachment:[\w.-]+\)")
#: The text of rendered Markdown cells without their code.
PROSE_JS = """els => els.map(el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll("code, pre").forEach(code => code.remove());
    return copy.textContent;
}).join("\\n")"""


@pytest.fixture
def page(chromium):
    """A page at 1024x768 whose requests outside 127.0.0.1 are aborted; none may be made."""
    with offline_page(chromium, SMALL_SCREEN) as (page, outside):
        yield page
    assert outside.requests == [], f"requests left 127.0.0.1: {outside.requests}"


def cell_index(name: str, check) -> int:
    """The index of the first cell of a repository notebook for which ``check(cell)`` holds."""
    nb = nbformat.read(REPO_ROOT / "notebooks" / name, as_version=4)
    return next(i for i, cell in enumerate(nb.cells) if check(cell))


def cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Cell")


def test_a_folded_solution_opens_runs_and_shows_its_output(jupyterlab, page):
    code_at = cell_index(NOTEBOOK, lambda c: SOLUTION_CODE in c.source)
    text_at = cell_index(NOTEBOOK, lambda c: SOLUTION_TEXT in c.source)
    errors = open_notebook(page, jupyterlab, NOTEBOOK)
    code, text = cells(page).nth(code_at), cells(page).nth(text_at)
    solution_text = text.locator(".jp-RenderedMarkdown").get_by_text(SOLUTION_TEXT)
    code.scroll_into_view_if_needed()
    shot(page, "lesson-0-folded")

    # Folded: the solution's text, code and stored output are all out of sight; the folded
    # cell shows its first line, a comment that gives nothing away.
    assert solution_text.is_hidden()
    assert code.locator(".jp-InputPlaceholder").inner_text().strip() == "# Solution"
    assert code.locator(".jp-InputArea").is_hidden()
    assert code.locator(".jp-OutputArea-output").is_hidden()

    # Open the text.
    text.locator("summary").click()
    eventually(lambda: solution_text.is_visible(), UI_TIMEOUT,
               "the solution's text did not open")

    # Open the code: the stored execution count comes from the notebook's generation.
    code.locator(".jp-InputPlaceholder").click()
    eventually(lambda: code.locator(".jp-InputArea").is_visible(), UI_TIMEOUT,
               "the solution's code did not unfold")
    assert SOLUTION_CODE in code.locator(".jp-InputArea-editor").inner_text()
    assert code.locator(".jp-OutputPlaceholder").is_visible()  # the output is still folded
    assert code.locator(".jp-OutputArea-output").is_hidden()
    stored_prompt = code.locator(".jp-InputPrompt").inner_text().strip()
    assert stored_prompt != "[1]:", "the stored count should not be the fresh kernel's first"

    # Run it in the fresh kernel (Shift+Enter in the cell), unfold the output if still folded.
    code.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    eventually(lambda: code.locator(".jp-InputPrompt").inner_text().strip() == "[1]:"
               and kernel_idle(page), RUN_TIMEOUT, "the solution's code did not run")
    placeholder = code.locator(".jp-OutputPlaceholder")
    if placeholder.is_visible():
        placeholder.click()
    output = code.locator(".jp-OutputArea-output")
    eventually(lambda: output.count() == 1 and output.is_visible(), UI_TIMEOUT,
               "the output of the solution is not shown")
    assert output.inner_text().strip() == SOLUTION_OUTPUT
    code.scroll_into_view_if_needed()
    shot(page, "lesson-1-solution-ran")
    failures = [m for m in errors.messages if not ATTACHMENT_FIRST_TRY.search(m)]
    assert not failures, failures


def test_what_a_reader_sees_before_running(jupyterlab, page):
    url = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))["lesson_url"]
    open_notebook(page, jupyterlab, "06-labeling-loop.ipynb")
    notebook = page.locator(".jp-NotebookPanel:visible")
    first = cells(page).nth(0)
    assert first.locator(f'a[href="{url}"]').count() == 1
    assert "top to bottom" in first.inner_text()

    nb = nbformat.read(REPO_ROOT / "notebooks" / "06-labeling-loop.ipynb", as_version=4)
    folded = sum("<details>" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert folded >= 4
    details = notebook.locator(".jp-RenderedMarkdown details")
    assert details.count() == folded
    assert all(not d.evaluate("el => el.open") for d in details.all())

    # The app's picture: a figure no cell draws, carried in the notebook itself.
    at = cell_index("06-labeling-loop.ipynb", lambda c: bool(c.get("attachments")))
    image = cells(page).nth(at).locator(".jp-RenderedMarkdown img")
    image.scroll_into_view_if_needed()
    eventually(lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"), UI_TIMEOUT,
               "the app's picture is not shown")
    assert image.get_attribute("alt").startswith("The labeling app in JupyterLab")
    shot(page, "lesson-2-figure")

    shown = "\n".join(notebook.locator(".jp-RenderedMarkdown").all_inner_texts())
    for markup in ("{{", "{%", "{:", "../fig/"):
        assert markup not in shown
    # a reference link kramdown did not resolve reads "[text][name]"; code may index ([a][b])
    prose = notebook.locator(".jp-RenderedMarkdown").evaluate_all(PROSE_JS)
    assert not re.search(r"\]\[[\w-]+\]", prose)
