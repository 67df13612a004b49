"""chemiscope's widgets, kept offline: the 3-D views of :mod:`almat.views` are built on these.

Why chemiscope. Compared on the development machine (JupyterLab 4.6, ipywidgets 8.1,
Chromium at 1024×768 with every request outside 127.0.0.1 aborted): chemiscope 1.1 and weas-widget
0.2 both render offline from their wheels and resolve to wheels for Linux x86-64,
Windows x86-64 and macOS arm64 on Python 3.11 and 3.12. chemiscope adds 3 packages
(chemiscope, anywidget, psygnal; 3.6 MB of wheels) and gives a property map linked to the
viewer; weas-widget adds 8 (scikit-image among them) and has no map. py3Dmol loads its
JavaScript from a CDN and crystal-toolkit needs a server of its own, so both were left out.
chemiscope's widget, however, reports every display to plausible.io (an analytics service),
localhost included. The widgets here load chemiscope's own JavaScript unchanged, behind a
short prologue that (1) sets the opt-out that its tracker reads,
``localStorage.plausible_ignore``, before any chemiscope code runs, and (2) gives the module
its own ``XMLHttpRequest`` and ``fetch``, which refuse every address outside the Jupyter
server. ``tests/browser/test_views_in_jupyterlab.py`` counts the requests.
"""

from __future__ import annotations

import json
from pathlib import Path

import chemiscope
from chemiscope.widget import ChemiscopeWidgetBase
from traitlets import Bool, Unicode

#: Runs before chemiscope's own module code: the tracker's documented opt-out, and module-scoped
#: ``XMLHttpRequest`` and ``fetch`` that keep every request on the Jupyter server.
OFFLINE_PROLOGUE = """\
// almat: chemiscope's widget, kept on this server (see almat.chemiscope_widgets).
try { globalThis.localStorage.setItem("plausible_ignore", "true"); } catch (e) { /* no storage */ }
const __almatHere = (url) => {
  try { return new URL(String(url), globalThis.location.href).origin === globalThis.location.origin; }
  catch (e) { return false; }
};
class XMLHttpRequest extends globalThis.XMLHttpRequest {
  open(method, url, ...rest) {
    this.__almatRefused = !__almatHere(url);
    if (this.__almatRefused) { console.info("almat: refused a request to", String(url)); return; }
    return super.open(method, url, ...rest);
  }
  setRequestHeader(...args) { if (!this.__almatRefused) return super.setRequestHeader(...args); }
  send(body) { if (!this.__almatRefused) return super.send(body); }
}
const fetch = (resource, options) => __almatHere(resource?.url ?? resource)
  ? globalThis.fetch(resource, options)
  : Promise.reject(new TypeError("almat: refused a request outside the Jupyter server"));
"""


#: Runs after chemiscope's module code: its ``render`` waits until the widget's element is in
#: the page with a width. 3Dmol and Plotly measure the element when they start, and a view that
#: starts detached (a box's child, or before JupyterLab attaches the output) stays blank.
#: ``anywidget`` is the object the module exports as its default.
ON_SCREEN_EPILOGUE = """\
// almat: start drawing once the element is in the page and has a width (see almat.chemiscope_widgets).
{
  const draw = anywidget.render;
  const placed = (el, signal) => new Promise((resolve) => {
    const ready = () => el.isConnected && el.getBoundingClientRect().width > 0;
    if (ready()) { resolve(true); return; }
    const watch = new ResizeObserver(() => { if (ready()) { watch.disconnect(); resolve(true); } });
    watch.observe(el);
    signal?.addEventListener("abort", () => { watch.disconnect(); resolve(false); });
  });
  anywidget.render = async (context) => {
    if (await placed(context.el, context.signal)) return draw(context);
  };
}
"""


#: Styles for a view given a height of its own (:meth:`ChemiscopeView.fit`), where chemiscope's
#: viewer keeps its 550 px and the box would cut it: the viewer fills the box instead, and the
#: structure slider under it, of no use for one structure, is hidden.
FIT_CSS = """\
.almat-fit .chemiscope-widget, .almat-fit .chemiscope-viewer-one-col { height: 100%; }
.almat-fit .chemiscope-viewer-one-col .chemiscope-structure { height: 100%; }
.almat-fit .chemiscope-info { display: none; }
"""


def _offline_esm() -> str:
    """chemiscope's widget module, unchanged, between :data:`OFFLINE_PROLOGUE` and
    :data:`ON_SCREEN_EPILOGUE`."""
    bundle = Path(chemiscope.widget._ESM_PATH).read_text(encoding="utf-8")
    return f"{OFFLINE_PROLOGUE}\n{bundle}\n{ON_SCREEN_EPILOGUE}"


class ChemiscopeView(ChemiscopeWidgetBase):
    """A chemiscope widget that stays offline, with a plain-text description.

    ``title``: whether chemiscope shows the name above the viewer (in a narrow view it runs
    under the toolbar). The page draws from what the widget holds when it is created.
    chemiscope sends its data (``value``) and settings in an update just after that, which
    the page can miss when it is busy (seen in JupyterLab 4.6 with several views at once:
    the view stays blank). Here they go with the widget itself, and ``mode`` and
    ``has_metadata`` are class defaults for the same reason. Structures travel with the data
    (no cache on the Python side), so a view needs no answer from the kernel to draw.
    """

    _esm = _offline_esm()
    _css = FIT_CSS
    has_metadata = Bool(True).tag(sync=True)

    def __init__(self, data: dict, description: str, title: bool = True):
        self._description = description
        self.value = json.dumps(data)  # chemiscope sets the same text again: no update is sent
        self.settings = data.get("settings", {})
        self.has_metadata = title
        super().__init__(data, has_metadata=title, cache_structures=False)

    def fit(self, height: str) -> None:
        """Draw the view at ``height`` (CSS, e.g. ``"320px"``), the viewer filling it."""
        self.layout.height = height
        self.add_class("almat-fit")

    def __repr__(self) -> str:
        return self._description


class StructureView(ChemiscopeView):
    """Structure viewers only."""

    mode = Unicode("structure").tag(sync=True)


class MapView(ChemiscopeView):
    """A map beside a structure viewer."""

    mode = Unicode("default").tag(sync=True)
