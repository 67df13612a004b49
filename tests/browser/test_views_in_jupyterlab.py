"""The 3-D views and the pool map in a real JupyterLab, offline, at 1024×768 (issue 19 item 3).

A notebook shows the views of :mod:`almat.views` as episodes 2 and 3 do (an
ordering with full pairs, a structure before and after relaxation, the pool
map), a campaign's map and the labeling app's candidate view. Chromium draws
WebGL in software (``browser_util.WEBGL_ARGS``). Every request to an address
other than 127.0.0.1 is aborted and counted, and the count must be 0.

A view counts as drawn when the middle of its canvas holds enough coloured
pixels (atoms, map points); the same check is shown to fail on a view that draws
nothing coloured (one white H atom) and on a drawn view made transparent. (Here
Chromium drew WebGL even without ``WEBGL_ARGS``, so leaving them out blanks nothing.) chemiscope's own widget reports each display to plausible.io; a second
test makes setting the tracker's opt-out in ``localStorage`` fail and shows
that the views still send nothing, while chemiscope's stock widget on the same
page does try, so the counter would see it.
A third opens a notebook saved as ``scripts/make_notebooks.py`` saves it: each view is
text (a line that says to run its cell, or its description), not chemiscope's 3 MB of
JavaScript.

Screenshots go to ``artifacts/screenshots/views-*.png``. With ``ALMAT_UPDATE_FIGURE=1``
(``scripts/make_view_pictures.py`` sets it) the pictures of the views as episodes 2 and 3 show
them are also written to ``fig/`` for the website: ``02-ordering-3d.png``,
``03-relaxation-3d.png`` and ``03-pool-map.png``.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import numpy as np
import pytest
from browser_util import (WEBGL_ARGS, artifacts_dir, launch_chromium, offline_page,
                          screenshot)
from matplotlib.image import imread
from nbclient import NotebookClient
from nbformat.sign import NotebookNotary
from notebook_script import load_make_notebooks
from test_jupyterlab import (RUN_ALL_TIMEOUT, JupyterLab, eventually, kernel_idle, menu,
                             open_notebook, start_jupyterlab, widget_failures, write_notebook)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECTOR = {"width": 1024, "height": 768}
#: Seconds for a view to draw once its cell has run (chemiscope's 3 MB module is parsed per view).
DRAW_TIMEOUT = 120
#: Share of coloured pixels in the middle of a canvas above which it counts as drawn; a crystal
#: or a map covers 5-30 %, a blank canvas 0 %.
DRAWN_FRACTION = 0.01
UPDATE_FIGURES = bool(os.environ.get("ALMAT_UPDATE_FIGURE"))

SETUP = """\
import numpy as np
import almat
from almat import views

pool = almat.load_pool()"""
ORDERING = """\
every = almat.enumerate_table(almat.set_occupancy(almat.load_parent(), 0.5), max_cell_size=1)
views.show_ordering(every, int(np.argmax(almat.ewald_energies(every))))"""
# Episode 3's relaxation of c1-000000, as the pool's relaxations file holds it (no CHGNet run).
RELAXATION = """\
from almat.dft import relaxed_candidates

(_, relaxed), = relaxed_candidates(pool, [0])
views.show_relaxation(pool, relaxed, index=0)"""
POOL_MAP = "views.show_pool(pool)"
CAMPAIGN_MAP = """\
campaign = almat.Campaign(pool, almat.TableOracle(), strategy="lcb", n_initial=5, seed=0)
campaign.run(12)
views.show_pool(pool, campaign)"""
CANDIDATE = """\
box = views.CandidateView(pool)
box.show(0)
box"""
NEXT_CANDIDATE = 'box.show("c2-000355")'
# A view that draws nothing coloured: one H atom (white) in its cell edges (grey).
NOTHING = """\
from ase import Atoms
views.show_ordering(Atoms("H", positions=[[0, 0, 0]], cell=[8, 8, 8], pbc=True))"""
CELLS = [SETUP, ORDERING, RELAXATION, POOL_MAP, CAMPAIGN_MAP, CANDIDATE, NEXT_CANDIDATE, NOTHING]
#: Cell of each view, and the number of structure viewers it holds.
VIEWS = {"ordering": (1, 1), "relaxation": (2, 2), "pool-map": (3, 1), "campaign-map": (4, 1),
         "candidate": (5, 1)}
FIGURES = {"ordering": "02-ordering-3d.png", "relaxation": "03-relaxation-3d.png",
           "pool-map": "03-pool-map.png"}

STOCK_CHEMISCOPE = """\
import chemiscope
from pymatgen.io.ase import AseAtomsAdaptor

atoms = [AseAtomsAdaptor.get_atoms(pool.structure(i)) for i in range(2)]
chemiscope.show(atoms, mode="structure")"""
#: Makes setting the tracker's opt-out in ``localStorage`` fail, as in a browser that blocks
#: site data. Only that key: JupyterLab itself keeps its workspace there, and without it loops.
NO_STORAGE = """\
const setItem = Storage.prototype.setItem;
Storage.prototype.setItem = function (key, value) {
  if (key === "plausible_ignore") throw new Error("storage blocked");
  return setItem.call(this, key, value);
};"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[JupyterLab]:
    yield from start_jupyterlab(tmp_path_factory.mktemp("views"))


@pytest.fixture(scope="module")
def browser():
    with launch_chromium(*WEBGL_ARGS) as browser:
        yield browser


def run_notebook(page, lab: JupyterLab, name: str, cells: list[str]) -> None:
    """Write a notebook, open it, run every cell and wait until the kernel is idle."""
    write_notebook(lab.root / name, cells)
    open_notebook(page, lab, name)
    menu(page, "Run", "runmenu:run-all")
    deadline = time.monotonic() + RUN_ALL_TIMEOUT
    time.sleep(1)
    while not kernel_idle(page):
        failures = widget_failures(page)
        assert not failures, "The notebook did not run cleanly:\n" + "\n".join(failures)
        assert time.monotonic() < deadline, f"{name} still runs after {RUN_ALL_TIMEOUT} s"
        time.sleep(0.5)
    failures = widget_failures(page)
    assert not failures, "The notebook did not run cleanly:\n" + "\n".join(failures)


def output(page, cell: int):
    """The output area of code cell ``cell`` (0-based)."""
    return page.locator(".jp-NotebookPanel .jp-Cell.jp-CodeCell").nth(cell).locator(
        ".jp-Cell-outputArea")


def coloured_fraction(png: bytes) -> float:
    """Share of pixels in the middle 60 % of an image that are clearly coloured (not grey).

    The toolbar, title and the marker of the selected point lie at the edges and stay out.
    """
    rgb = imread(io.BytesIO(png), format="png")[..., :3]
    h, w = rgb.shape[:2]
    middle = rgb[int(0.2 * h):int(0.8 * h), int(0.2 * w):int(0.8 * w)]
    chroma = middle.max(axis=2) - middle.min(axis=2)
    return float((chroma > 0.25).mean())


def assert_drawn(canvas, what: str) -> bytes:
    """Screenshot a view's canvas and fail unless it shows something coloured; return the PNG."""
    png = canvas.screenshot()
    fraction = coloured_fraction(png)
    path = artifacts_dir("screenshots") / f"views-{what}-canvas.png"
    path.write_bytes(png)
    assert fraction > DRAWN_FRACTION, (
        f"The {what} view looks blank: {fraction:.2%} coloured pixels in the middle of its "
        f"canvas (screenshot {path}).")
    return png


def viewer_canvases(area):
    """The 3Dmol canvases of chemiscope's structure viewers in an output area."""
    return area.locator(".chsp-structure-viewer-cell canvas")


def wait_for_views(page, area, viewers: int, what: str) -> None:
    """Wait until an output area holds ``viewers`` structure viewers; screenshot it if not."""
    def drawn() -> bool:
        area.scroll_into_view_if_needed()  # JupyterLab draws outputs only near the viewport
        return viewer_canvases(area).count() == viewers

    try:
        eventually(drawn, DRAW_TIMEOUT, f"the {what} view has not drawn {viewers} structure "
                   "viewer(s)")
    finally:
        screenshot(page, f"views-{what}-page", full_page=False)


def picture(page, area, what: str) -> Path:
    """Screenshot a whole view as it sits in the notebook; copy it to fig/ when asked."""
    area.scroll_into_view_if_needed()
    time.sleep(1)  # let the scroll settle before the picture
    path = artifacts_dir("screenshots") / f"views-{what}.png"
    area.locator(".jp-OutputArea-output").first.screenshot(path=str(path))
    print(f"screenshot: {path}")
    if UPDATE_FIGURES and what in FIGURES:
        shutil.copyfile(path, REPO_ROOT / "fig" / FIGURES[what])
        print(f"copied to fig/{FIGURES[what]}")
    return path


def click_a_point(page, area) -> int:
    """Click a coloured point of the map; return the structure then shown (chemiscope's counter)."""
    plot = area.locator(".chsp-map").first
    box = plot.bounding_box()
    rgb = imread(io.BytesIO(plot.screenshot()), format="png")[..., :3]
    h, w = rgb.shape[:2]
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    red = (rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.25) & (rgb[..., 2] < 0.25)  # the selected point
    inside = np.zeros_like(chroma, dtype=bool)
    inside[int(0.15 * h):int(0.85 * h), int(0.15 * w):int(0.7 * w)] = True  # plot area, no colour bar
    # the middle of a marker: coloured with coloured neighbours, away from the selected one
    solid = (chroma > 0.25) & ~red
    core = solid[1:-1, 1:-1] & solid[:-2, 1:-1] & solid[2:, 1:-1] & solid[1:-1, :-2] & solid[1:-1, 2:]
    ys, xs = np.nonzero(core & inside[1:-1, 1:-1])
    assert len(ys), "no point of the map found to click"
    k = len(ys) // 2
    scale = box["width"] / w
    page.mouse.click(box["x"] + (xs[k] + 1) * scale, box["y"] + (ys[k] + 1) * scale)
    counter = area.locator(".chsp-info-structure-btn input.chsp-info-number").first
    eventually(lambda: counter.input_value() not in ("", "0"), 30,
               "clicking a point of the map did not select another candidate")
    return int(counter.input_value())


def test_views_render_offline_at_projector_size(lab, browser):
    with offline_page(browser, PROJECTOR) as (page, outside):
        started = time.monotonic()
        run_notebook(page, lab, "views.ipynb", CELLS)
        print(f"ran the notebook in {time.monotonic() - started:.0f} s")
        for what, (cell, viewers) in VIEWS.items():
            area = output(page, cell)
            wait_for_views(page, area, viewers, what)
            for k in range(viewers):
                assert_drawn(viewer_canvases(area).nth(k), f"{what}-{k}")
            if "map" in what:
                assert_drawn(area.locator(".chsp-map canvas").first, f"{what}-points")
            picture(page, area, what)
        print(f"every view drawn after {time.monotonic() - started:.0f} s")

        # the candidate view follows box.show(...): one viewer, now of c2-000355
        candidate = output(page, VIEWS["candidate"][0])
        # the title is in chemiscope's shadow DOM, which inner_text does not read; locators do
        eventually(lambda: candidate.get_by_text("c2-000355").count() > 0, 30,
                   "the candidate view does not show c2-000355 after box.show('c2-000355')")
        assert viewer_canvases(candidate).count() == 1

        # a click on a map point shows that candidate's crystal
        area = output(page, VIEWS["pool-map"][0])
        area.scroll_into_view_if_needed()
        before = viewer_canvases(area).first.screenshot()
        chosen = click_a_point(page, area)
        eventually(lambda: viewer_canvases(area).first.screenshot() != before, 30,
                   f"the crystal did not change after candidate {chosen} was clicked")
        assert_drawn(viewer_canvases(area).first, "pool-map-clicked")

        assert outside.requests == [], f"requests left 127.0.0.1: {outside.requests}"

        # The check fails on a blank view: a view of nothing coloured, as it draws ...
        blank = output(page, CELLS.index(NOTHING))
        wait_for_views(page, blank, 1, "nothing")
        with pytest.raises(AssertionError, match="looks blank"):
            assert_drawn(viewer_canvases(blank).first, "nothing")
        # ... and a drawn view made blank: make the canvas transparent, so that its screenshot
        # shows what a viewer that drew nothing shows (chemiscope's white background). A page
        # style would not reach the canvas, inside chemiscope's shadow DOM; the locator does.
        canvas = viewer_canvases(output(page, VIEWS["ordering"][0])).first
        canvas.scroll_into_view_if_needed()
        canvas.evaluate("el => { el.style.opacity = '0'; }")
        with pytest.raises(AssertionError, match="looks blank"):
            assert_drawn(canvas, "ordering-blanked")


def test_views_send_nothing_even_without_storage(lab, browser):
    with offline_page(browser, PROJECTOR, NO_STORAGE) as (page, outside):
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "almat: refused" in m.text else None)
        run_notebook(page, lab, "no-storage.ipynb", [SETUP, ORDERING])
        wait_for_views(page, output(page, 1), 1, "ordering")
        assert_drawn(viewer_canvases(output(page, 1)).first, "ordering-no-storage")
        eventually(lambda: any("plausible.io" in text for text in refused), 30,
                   "the tracker never tried to report the display, so the guard was not tested")
        assert outside.requests == [], f"requests left 127.0.0.1: {outside.requests}"

        # chemiscope's own widget, on the same page, does try: the count would have seen it.
        run_notebook(page, lab, "stock.ipynb", [SETUP, STOCK_CHEMISCOPE])
        wait_for_views(page, output(page, 1), 1, "stock chemiscope")
        eventually(lambda: any("plausible.io" in r for r in outside.requests), 30,
                   "chemiscope's stock widget sent nothing to plausible.io here")


def test_a_saved_view_shows_its_text_until_its_cell_runs(lab, browser, tmp_path):
    """A notebook saved as scripts/make_notebooks.py saves it (shrink_views) opens with text in
    the view's place: untrusted, as a learner's copy opens, the view's description; trusted,
    the line from the saved state. Never "model not found", chemiscope, or a request sent."""
    make_notebooks = load_make_notebooks()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (SETUP, ORDERING)])
    NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert make_notebooks.shrink_views(nb) == 1
    nb = make_notebooks.renumber_widgets(nb, "saved")
    nbformat.write(nb, lab.root / "saved.ipynb")
    with offline_page(browser, PROJECTOR) as (page, outside):
        for trust, text in ((False, "3-D view of ordering 46"),
                            (True, "3-D view: run this cell to draw it.")):
            if trust:  # the server's notary keeps its signatures in JUPYTER_DATA_DIR
                NotebookNotary(data_dir=str(lab.root.parent / "data")).sign(nb)
            open_notebook(page, lab, "saved.ipynb")
            area = output(page, 1)
            area.scroll_into_view_if_needed()
            what = "trusted" if trust else "untrusted"
            try:
                eventually(lambda: area.get_by_text(text).count() == 1, 60,
                           f"the saved view, {what}, does not show {text!r}")
            finally:
                screenshot(page, f"views-saved-{what}", full_page=False)
            assert widget_failures(page) == []
            assert viewer_canvases(area).count() == 0
        assert outside.requests == [], f"requests left 127.0.0.1: {outside.requests}"
