"""The labeling app's layout: its widgets, where they sit, and how its text reads.

:class:`AppLayout` builds the ipywidgets of the app and shows what it is
given; it knows nothing of campaigns, oracles or files
(:class:`~almat.widget.app.LabelingApp` decides what to show). From the top:

- the title, and the candidate to label next (its id, its index in the pool,
  μ ± σ, why it was picked, its shortest Li-Li distance);
- the controls (strategy menu, the oracle's button, the energy box and
  Submit; the reason box, Skip, Undo and the label counter), and the
  progress of an oracle that works in steps;
- the messages;
- the candidate's picture, and its 3-D view below it, beside the plots (best so far,
  parity);
- the restart hint.

The candidate and the controls come before the pictures, so that with
JupyterLab's left sidebar open at 1024×768, where the pictures wrap below
each other, the controls stay on the screen.

Main widgets carry CSS classes (see :data:`CSS_CLASSES`) for browser tests and styling.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets

from almat.structures import MIN_LI_LI

#: Messages kept in the messages area, newest last.
MAX_MESSAGES = 8
#: Shown under the app: an app whose kernel is gone still looks alive, but its clicks do nothing.
RESTART_HINT = ("If the buttons do nothing, the kernel has restarted or stopped: run this cell "
                "again (and the cells above it).")
#: Shown instead of the app where no widget can be drawn: an untrusted notebook, nbviewer.
PLACEHOLDER = ("Labeling app: run this cell to start it (the buttons work only while the "
               "notebook's kernel runs).")
#: Messages wrap between words only; a token longer than the line (a path) may still break.
TEXT_STYLE = "white-space:normal;word-break:normal;overflow-wrap:break-word;line-height:1.35"
#: Text colours of an error and of a value to check: 9.3:1 and 8.6:1 contrast on white.
COLOURS = {"error": "#8a1c1c", "check": "#6b4400"}
#: The CSS class of each widget of :class:`AppLayout`, by attribute name.
CSS_CLASSES = {
    "compute_button": "almat-compute", "value_text": "almat-value", "submit_button": "almat-submit",
    "skip_button": "almat-skip", "skip_reason": "almat-skip-reason", "undo_button": "almat-undo",
    "strategy_select": "almat-strategy", "status": "almat-counter", "progress": "almat-progress",
    "messages": "almat-messages", "query_html": "almat-query", "lili_html": "almat-lili",
    "structure_image": "almat-structure", "structure_view": "almat-structure-3d",
    "candidate": "almat-candidate",
    "controls": "almat-controls", "pictures": "almat-pictures", "plot_tabs": "almat-plots",
    "best_image": "almat-best-plot", "parity_image": "almat-parity-plot", "work_line": "almat-work",
    "work_progress": "almat-work-progress", "hint": "almat-restart-hint", "view": "almat-app",
}


def query_text(query, n_atoms: int) -> str:
    """HTML of the candidate to label next: id and index, μ ± σ in one unit, and why it was picked.

    Parameters
    ----------
    query
        The :class:`~almat.ledger.Query`.
    n_atoms
        Atoms in its cell.
    """
    if math.isfinite(query.mu):
        estimate = f"surrogate: μ ± σ = {query.mu:.4f} ± {query.sigma:.4f} eV/atom"
    else:
        estimate = "surrogate: μ ± σ not yet, it is fitted once there are two labels"
    return (f'<div style="{TEXT_STYLE}"><b>next: <code>{html.escape(query.id)}</code></b> · '
            f"index {query.index} in the pool · cell size {query.cell_size} ({n_atoms} atoms)<br>"
            f"{estimate}<br>picked by <b>{html.escape(query.strategy)}</b>: "
            f"{html.escape(query.reason)}</div>")


def lili_text(distance: float) -> str:
    """HTML of the shortest Li-Li distance (Å), as a warning below :data:`~almat.structures.MIN_LI_LI`."""
    if distance < MIN_LI_LI:
        return ('<div class="almat-warning" style="background:#fdecea;color:#8a1c1c;'
                f'padding:2px 4px;border-left:4px solid #D55E00">shortest Li–Li {distance:.2f} Å: '
                "Li on both sites of a 1.8 Å 48h pair</div>")
    return f"<div>shortest Li–Li {distance:.2f} Å</div>"


def done_text(how_to_go_on: str) -> str:
    """HTML shown in place of the candidate when nothing is left to label."""
    return f'<div style="{TEXT_STYLE}"><b>Done.</b> {html.escape(how_to_go_on)}</div>'


def work_text(step: int, max_steps: int, force: float, target: float | None) -> str:
    """The line under an oracle's progress bar; forces in eV/Å."""
    goal = "" if target is None else f", target {target:g} eV/Å"
    return f"relaxing: step {int(step)} of at most {max_steps}; max force {force:.3f} eV/Å{goal}"


def force_fraction(first: float, force: float, target: float) -> float:
    """How far a relaxation has come, 0 to 1, on a log scale of the largest force (eV/Å).

    ``log(first / force) / log(first / target)``: 0 at the first step's force,
    1 at the target, so that each tenfold fall of the force moves the bar as
    far. Forces that are not positive numbers give 0; a start at or below
    the target gives 1.
    """
    if not all(math.isfinite(f) and f > 0 for f in (first, force, target)):
        return 0.0
    if first <= target:
        return 1.0
    return min(max(math.log(first / force) / math.log(first / target), 0.0), 1.0)


class AppLayout:
    """The widgets of the labeling app, laid out; it shows what it is told to.

    Parameters
    ----------
    title
        HTML of the line above the app.
    strategies, strategy
        The names in the strategy menu, and the one chosen.
    structure_view
        A widget that shows the candidate in 3-D, placed below its picture
        (the app's :class:`~almat.views.CandidateView`); an empty box if None.

    Attributes
    ----------
    view
        The root ``VBox``.
    compute_button, value_text, submit_button, skip_reason, skip_button, undo_button
        The controls; the app wires them.
    strategy_select
        Dropdown of the query strategies.
    progress, status
        ``IntProgress`` of the labels and an ``HTML`` counter line.
    query_html, lili_html, structure_image, structure_view
        The candidate: its text, its shortest Li-Li distance, its picture and its 3-D view.
    best_image, parity_image, plot_tabs
        The two plots, in the tabs of ``plot_tabs``.
    work_line, work_progress, work_html
        Progress of an oracle that works in steps (hidden otherwise).
    messages
        ``HTML`` with the messages, newest last.
    """

    def __init__(self, title: str, strategies: list[str], strategy: str,
                 structure_view: widgets.Widget | None = None):
        self._log: list[tuple[str, str]] = []
        self.query_html = widgets.HTML()
        self.lili_html = widgets.HTML()
        self.structure_image = widgets.HTML()
        self.structure_view = widgets.Box() if structure_view is None else structure_view
        self.strategy_select = widgets.Dropdown(options=strategies, value=strategy, description="strategy",
                                                layout=widgets.Layout(width="200px"))
        self.compute_button = widgets.Button(button_style="primary", icon="calculator",
                                             layout=widgets.Layout(width="auto"))
        self.value_text = widgets.Text(placeholder="e.g. -4.1523, then Enter", description="energy (eV/atom)",
                                       style={"description_width": "initial"},
                                       layout=widgets.Layout(width="290px"))
        self.submit_button = widgets.Button(description="Submit", button_style="success", icon="check",
                                            tooltip="Record the energy typed on the left",
                                            layout=widgets.Layout(width="auto"))
        self.skip_reason = widgets.Text(placeholder="why skip it?", description="reason",
                                        layout=widgets.Layout(width="260px"))
        self.skip_button = widgets.Button(description="Skip", button_style="warning", icon="forward",
                                          tooltip="Do not label this candidate; the reason is recorded",
                                          layout=widgets.Layout(width="auto"))
        self.undo_button = widgets.Button(description="Undo", icon="undo",
                                          tooltip="Take back the last label or skip (recorded, not erased)",
                                          layout=widgets.Layout(width="auto"))
        self.progress = widgets.IntProgress(min=0, max=1, description="labels",
                                            layout=widgets.Layout(width="220px"))
        self.status = widgets.HTML()
        self.work_progress = widgets.FloatProgress(min=0.0, max=1.0, description="force",
                                                   layout=widgets.Layout(width="220px"))
        self.work_html = widgets.HTML()
        self.messages = widgets.HTML(layout=widgets.Layout(width="auto", align_self="stretch"))
        self.best_image = widgets.HTML()
        self.parity_image = widgets.HTML()
        self.plot_tabs = widgets.Tab(children=[self.best_image, self.parity_image],
                                     titles=("best so far", "parity"))

        self.candidate = widgets.VBox([self.query_html, self.lili_html])
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.controls = widgets.VBox([
            widgets.HBox([self.strategy_select, self.compute_button, self.value_text, self.submit_button],
                         layout=wrap),
            widgets.HBox([self.skip_reason, self.skip_button, self.undo_button, self.progress, self.status],
                         layout=wrap),
        ])
        self.work_line = widgets.HBox([self.work_progress, self.work_html],
                                      layout=widgets.Layout(display="none", align_items="center",
                                                            flex_flow="row wrap"))
        column = {"flex": "1 1 0", "min_width": "300px", "max_width": "470px"}
        self.pictures = widgets.HBox([
            widgets.VBox([self.structure_image, self.structure_view], layout=widgets.Layout(**column)),
            widgets.VBox([self.plot_tabs], layout=widgets.Layout(**column)),
        ], layout=widgets.Layout(flex_flow="row wrap", grid_gap="12px"))
        self.hint = widgets.HTML(f'<div style="{TEXT_STYLE};color:#555;font-size:90%">'
                                 f"{html.escape(RESTART_HINT)}</div>")
        self.view = widgets.VBox([
            widgets.HTML(f'<div style="{TEXT_STYLE}">{title}</div>'),
            self.candidate, self.controls, self.work_line, self.messages, self.pictures, self.hint,
        ], layout=widgets.Layout(max_width="960px"))
        for name, css in CSS_CLASSES.items():
            getattr(self, name).add_class(css)

    def bundle(self, **kwargs) -> dict:
        """The root box's widget view, with text and HTML for where no widget can be drawn.

        A notebook saved with its outputs shows the ``text/plain`` and ``text/html``
        entries when it is opened untrusted or before its kernel runs, and in nbviewer;
        ipywidgets' own text (``VBox(children=(HTML(value=...``) would be noise there.
        """
        bundle = self.view._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"{PLACEHOLDER}\n{RESTART_HINT}"
        bundle["text/html"] = (f'<div class="almat-placeholder" style="{TEXT_STYLE}">'
                               f"<b>{html.escape(PLACEHOLDER)}</b><br>{html.escape(RESTART_HINT)}</div>")
        return bundle

    # ------------------------------------------------------------ messages
    def say(self, text: str, level: str = "info") -> None:
        """Add a message: ``level`` is ``"info"``, ``"check"`` (asks to confirm) or ``"error"``."""
        self._log = (self._log + [(text, level)])[-MAX_MESSAGES:]
        # Newest first in the page, shown at the bottom by column-reverse: the box then stays
        # scrolled to the newest message without any script.
        entries = "".join(
            f'<div class="almat-message{"" if kind == "info" else f" almat-{kind}"}" style="{TEXT_STYLE}'
            f'{f";color:{COLOURS[kind]}" if kind in COLOURS else ""}">'
            f'{f"<b>{kind}</b> " if kind in COLOURS else ""}{html.escape(message)}</div>'
            for message, kind in reversed(self._log))
        # The box scrolls when it is full, so it takes the keyboard focus (tabindex) too.
        self.messages.value = (
            '<div role="log" aria-live="polite" aria-label="messages of the labeling app" '
            'tabindex="0" style="display:flex;flex-direction:column-reverse;border:1px solid #ccc;'
            f'padding:2px 6px;min-height:1.6em;max-height:4.3em;overflow-y:auto">{entries}</div>')

    def message_texts(self) -> list[str]:
        """The messages shown now, oldest first."""
        return [text for text, _ in self._log]

    def last_level(self) -> str | None:
        """The level of the newest message, or None when there is none."""
        return self._log[-1][1] if self._log else None

    # ------------------------------------------------------------ controls
    def enable(self, *, label: bool, undo: bool, strategy: bool = True) -> None:
        """Enable the labelling controls (oracle, Submit, Skip), Undo and the strategy menu, or not."""
        for button in (self.compute_button, self.submit_button, self.skip_button):
            button.disabled = not label
        self.undo_button.disabled = not undo
        self.strategy_select.disabled = not strategy

    def show_strategy(self, name: str, names: list[str]) -> None:
        """Show ``name``, one of ``names``, in the strategy menu."""
        if list(self.strategy_select.options) != names:
            self.strategy_select.options = names
        self.strategy_select.value = name

    def show_oracle(self, action: str, name: str) -> None:
        """Say on the button what it does with the campaign's oracle."""
        self.compute_button.description = action
        self.compute_button.tooltip = f"Label the candidate with the campaign's oracle ({name})"

    def show_counter(self, labelled: int, maximum: int, text: str) -> None:
        """The label progress bar and the counter line (HTML)."""
        self.progress.max = max(int(maximum), 1)
        self.progress.value = min(int(labelled), self.progress.max)
        self.status.value = text

    # ------------------------------------------------------------ work in steps
    def start_work(self, text: str) -> None:
        """Show the progress line of an oracle that works in steps, empty."""
        self.work_progress.value = 0.0
        self.work_html.value = html.escape(text)
        self.work_line.layout.display = "flex"

    def show_work(self, fraction: float, text: str) -> None:
        """Move the progress bar to ``fraction`` (0 to 1) and say where the work stands."""
        self.work_progress.value = min(max(float(fraction), 0.0), 1.0)
        self.work_html.value = html.escape(text)

    def end_work(self) -> None:
        """Hide the progress line."""
        self.work_line.layout.display = "none"
