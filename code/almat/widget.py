"""A labeling app for a campaign, on ipywidgets 8.

:class:`LabelingApp` shows the candidate the campaign proposes next and lets
a learner label it: with CHGNet (or the campaign's oracle), by typing an
energy (Enter or "Submit"), by skipping it with a reason, or by undoing the
last answer. It is callback-driven: nothing blocks the kernel, so the app
works in JupyterLab, in Voilà and headless (``Button.click()`` runs a handler
in ipywidgets 8).

The layout fits a projector (1024×768, JupyterLab's sidebar closed): the
candidate and its picture sit beside the plots (best energy so far, and the
parity plot in a second tab), with the controls below them.

Every action goes to the campaign first, which writes it to the labels file
at once; only then is the display updated. Each action is also a method
(:meth:`~LabelingApp.compute`, :meth:`~LabelingApp.submit`,
:meth:`~LabelingApp.skip`, :meth:`~LabelingApp.undo`,
:meth:`~LabelingApp.set_strategy`) that returns an :class:`Outcome`, so
notebooks and tests drive the app without a browser. Errors never pass in
silence: every one is shown in the messages area.

An oracle whose ``label`` method takes a keyword ``on_step`` and that has an
integer attribute ``max_steps`` (a relaxation, say) is called with
``on_step(step, fmax)`` after every optimizer step; the app then shows a
progress bar and a line such as "relaxing: step 12 of at most 500, max force
0.31 eV/Å" while it waits. Other oracles are called as before.

Main widgets carry CSS classes (``almat-compute``, ``almat-value``,
``almat-submit``, ``almat-skip``, ``almat-skip-reason``, ``almat-undo``,
``almat-strategy``, ``almat-counter``, ``almat-progress``, ``almat-messages``,
``almat-query``, ``almat-lili``, ``almat-structure``, ``almat-candidate``,
``almat-controls``, ``almat-plots``, ``almat-best-plot``, ``almat-parity-plot``,
``almat-work``, ``almat-work-progress``, ``almat-restart-hint``) for browser
tests and styling.
"""

from __future__ import annotations

import base64
import html
import inspect
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from almat.acquisition import STRATEGIES
from almat.campaign import Campaign
from almat.evaluation import parity as parity_table
from almat.oracles import CHGNetOracle, RelaxedCHGNetOracle, TableOracle
from almat.plots import plot_best_so_far, plot_parity, plot_structure
from almat.structures import MIN_LI_LI
#: Messages kept in the messages area, newest last.
MAX_MESSAGES = 8
#: Resolution of the figures shown in the app; with 10 pt text that is 12.5 CSS px.
DPI = 90
#: Figure sizes (inches): the candidate's picture and each plot; each fits a column of
#: about 420 CSS px, so that JupyterLab does not scale them down at 1024 px wide.
STRUCTURE_SIZE = (4.4, 2.5)
PLOT_SIZE = (4.6, 2.9)
#: Shown under the app: an app whose kernel is gone still looks alive, but its clicks do nothing.
RESTART_HINT = ("If the buttons do nothing, the kernel has restarted or stopped: run this cell "
                "again (and the cells above it).")
#: Shown instead of the app where no widget can be drawn: an untrusted notebook, nbviewer.
PLACEHOLDER = ("Labeling app: run this cell to start it (the buttons work only while the "
               "notebook's kernel runs).")
#: Messages wrap between words only; a token longer than the line (a path) may still break.
_TEXT_STYLE = "white-space:normal;word-break:normal;overflow-wrap:break-word;line-height:1.35"
#: Text colour of error messages: 8.6:1 contrast on white.
_ERROR_COLOUR = "#8a1c1c"


@dataclass(frozen=True)
class Outcome:
    """What an action of the app did.

    Attributes
    ----------
    ok
        True when the action was recorded (or, for a strategy change, applied).
    message
        The sentence shown in the messages area.
    row
        The new row of the campaign's history, when something was recorded.
    """

    ok: bool
    message: str
    row: pd.Series | None = None

    def __bool__(self) -> bool:
        return self.ok


def _img(fig: Figure, alt: str) -> str:
    """A figure as an HTML ``<img>`` holding a PNG, with alt text for screen readers."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            'style="max-width:100%;height:auto">')


def reports_progress(oracle: object) -> bool:
    """Whether ``oracle.label`` accepts ``on_step`` and the oracle says its ``max_steps``."""
    try:
        parameters = inspect.signature(oracle.label).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    max_steps = getattr(oracle, "max_steps", None)
    return "on_step" in parameters and isinstance(max_steps, int) and not isinstance(max_steps, bool)


def compute_label(oracle: object) -> str:
    """The text of the Compute button: what pressing it will do with ``oracle``.

    Parameters
    ----------
    oracle
        The campaign's oracle.

    Returns
    -------
    str
        "Compute with CHGNet", "Relax with CHGNet", "Look up in table" for the
        lesson's oracles; "Compute with <name>" for any other.
    """
    if isinstance(oracle, CHGNetOracle):
        return "Compute with CHGNet"
    if isinstance(oracle, RelaxedCHGNetOracle):
        return "Relax with CHGNet"
    if isinstance(oracle, TableOracle):
        return "Look up in table"
    return f"Compute with {getattr(oracle, 'name', 'oracle')}"


class LabelingApp:
    """Label the candidates a campaign proposes, one at a time.

    Parameters
    ----------
    campaign
        The campaign to drive; its labels file records every action.
    budget
        Number of labels to aim for, shown as progress; labelling stops there.
        The campaign's own budget by default, or the whole pool.

    Attributes
    ----------
    view
        The root ``VBox``; ``display(app)`` shows it.
    compute_button, value_text, submit_button, skip_reason, skip_button, undo_button
        The controls; Enter in ``value_text`` submits, Enter in ``skip_reason`` skips.
    strategy_select
        Dropdown of the query strategies of :data:`almat.acquisition.STRATEGIES`.
    progress, status
        ``IntProgress`` (labels / budget) and an ``HTML`` counter line such as
        ``labelled 3 / 50 · skipped 1 · undone 0``.
    query_html, lili_html, structure_image
        The current candidate: its numbers, its shortest Li-Li distance and its
        picture (an ``HTML`` widget holding an ``<img>`` with alt text).
    best_image, parity_image, plot_tabs
        Best energy found against labels, and the parity plot of the surrogate,
        in the two tabs of ``plot_tabs``.
    work_progress, work_html
        Progress of an oracle that reports its steps (hidden otherwise).
    messages
        ``HTML`` with what each action did, errors included, newest last.
    figures
        The figures shown now, by name: ``"structure"``, ``"best"``, ``"parity"``.

    Examples
    --------
    >>> app = LabelingApp(campaign, budget=30)   # doctest: +SKIP
    >>> app                                      # doctest: +SKIP
    >>> app.submit("-4.1523").ok                 # doctest: +SKIP
    True
    """

    def __init__(self, campaign: Campaign, budget: int | None = None):
        self.campaign = campaign
        oracle = campaign.oracle
        self._updating = False
        self._log: list[tuple[str, bool]] = []
        self.figures: dict[str, Figure] = {}

        self.query_html = widgets.HTML()
        self.lili_html = widgets.HTML()
        self.structure_image = widgets.HTML()

        names = list(STRATEGIES)
        if campaign.strategy not in names:
            names.append(campaign.strategy)
        self.strategy_select = widgets.Dropdown(options=names, value=campaign.strategy,
                                                description="strategy",
                                                layout=widgets.Layout(width="210px"))
        self.compute_button = widgets.Button(
            description=compute_label(oracle), button_style="primary", icon="calculator",
            tooltip=f"Label the candidate with the campaign's oracle ({getattr(oracle, 'name', '?')})",
            layout=widgets.Layout(width="auto"))
        self.value_text = widgets.Text(placeholder="e.g. -4.1523, then Enter",
                                       description="energy (eV/atom)",
                                       style={"description_width": "initial"},
                                       layout=widgets.Layout(width="300px"))
        self.submit_button = widgets.Button(description="Submit", button_style="success",
                                            icon="check", tooltip="Record the energy typed on the left",
                                            layout=widgets.Layout(width="auto"))
        self.skip_reason = widgets.Text(placeholder="why skip it?", description="reason",
                                        layout=widgets.Layout(width="300px"))
        self.skip_button = widgets.Button(description="Skip", button_style="warning", icon="forward",
                                          tooltip="Do not label this candidate; the reason is recorded",
                                          layout=widgets.Layout(width="auto"))
        self.undo_button = widgets.Button(description="Undo", icon="undo",
                                          tooltip="Take back the last label or skip (recorded, not erased)",
                                          layout=widgets.Layout(width="auto"))
        self.progress = widgets.IntProgress(min=0, max=1, description="labels",
                                            layout=widgets.Layout(width="240px"))
        self.status = widgets.HTML()
        self.work_progress = widgets.IntProgress(min=0, max=1, description="steps",
                                                 layout=widgets.Layout(width="240px"))
        self.work_html = widgets.HTML()
        self.messages = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.best_image = widgets.HTML()
        self.parity_image = widgets.HTML()
        self.plot_tabs = widgets.Tab(children=[self.best_image, self.parity_image],
                                     titles=("best so far", "parity"))
        self.budget = int(budget or campaign.budget or len(campaign.pool))

        self.compute_button.on_click(self._handler(lambda: self.compute()))
        self.submit_button.on_click(self._handler(lambda: self.submit()))
        self.skip_button.on_click(self._handler(lambda: self.skip()))
        self.undo_button.on_click(self._handler(lambda: self.undo()))
        self.value_text.on_msg(self._on_enter(lambda: self.submit()))
        self.skip_reason.on_msg(self._on_enter(lambda: self.skip()))
        self.strategy_select.observe(self._on_strategy, names="value")

        saved = (f" to <code>{html.escape(str(campaign.ledger_path))}</code>"
                 if campaign.ledger_path else " (in memory only: no ledger_path)")
        title = widgets.HTML(f'<div style="{_TEXT_STYLE}"><b>Label the next candidate</b> of pool '
                             f"<code>{html.escape(campaign.pool.name)}</code>; every answer is "
                             f"saved at once{saved}.</div>")
        half = {"flex": "1 1 0", "min_width": "360px", "max_width": "470px"}
        candidate = widgets.VBox([self.query_html, self.lili_html, self.structure_image],
                                 layout=widgets.Layout(**half))
        plots = widgets.VBox([self.plot_tabs], layout=widgets.Layout(**half))
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        controls = widgets.VBox([
            widgets.HBox([self.strategy_select, self.compute_button, self.value_text,
                          self.submit_button], layout=wrap),
            widgets.HBox([self.skip_reason, self.skip_button, self.undo_button, self.progress,
                          self.status], layout=wrap),
        ])
        self.work_line = widgets.HBox([self.work_progress, self.work_html],
                                      layout=widgets.Layout(display="none", align_items="center"))
        hint = widgets.HTML(f'<div style="{_TEXT_STYLE};color:#555;font-size:90%">'
                            f"{html.escape(RESTART_HINT)}</div>")
        self.view = widgets.VBox([
            title,
            widgets.HBox([candidate, plots], layout=widgets.Layout(flex_flow="row wrap",
                                                                   grid_gap="12px")),
            controls,
            self.work_line,
            self.messages,
            hint,
        ], layout=widgets.Layout(max_width="960px"))

        for widget, name in [
            (self.compute_button, "almat-compute"), (self.value_text, "almat-value"),
            (self.submit_button, "almat-submit"), (self.skip_button, "almat-skip"),
            (self.skip_reason, "almat-skip-reason"), (self.undo_button, "almat-undo"),
            (self.strategy_select, "almat-strategy"), (self.status, "almat-counter"),
            (self.progress, "almat-progress"), (self.messages, "almat-messages"),
            (self.query_html, "almat-query"), (self.lili_html, "almat-lili"),
            (self.structure_image, "almat-structure"), (candidate, "almat-candidate"),
            (controls, "almat-controls"), (self.plot_tabs, "almat-plots"),
            (self.best_image, "almat-best-plot"), (self.parity_image, "almat-parity-plot"),
            (self.work_line, "almat-work"), (self.work_progress, "almat-work-progress"),
            (hint, "almat-restart-hint"), (self.view, "almat-app"),
        ]:
            widget.add_class(name)
        self.refresh()

    # ------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The root box's widget view, with text and HTML for where no widget can be drawn.

        A notebook saved with its outputs shows the ``text/plain`` and ``text/html``
        entries when it is opened untrusted or before its kernel runs, and in nbviewer;
        ipywidgets' own text (``VBox(children=(HTML(value=...``) would be noise there.
        """
        bundle = self.view._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"{PLACEHOLDER}\n{RESTART_HINT}"
        bundle["text/html"] = (f'<div class="almat-placeholder" style="{_TEXT_STYLE}">'
                               f"<b>{html.escape(PLACEHOLDER)}</b><br>"
                               f"{html.escape(RESTART_HINT)}</div>")
        return bundle

    def __repr__(self) -> str:
        return f"<LabelingApp: {self.counter_text()}, strategy {self.campaign.strategy!r}>"

    # ------------------------------------------------------------ actions
    def compute(self) -> Outcome:
        """Label the current candidate with the campaign's oracle (CHGNet by default).

        An oracle that reports its steps (see :func:`reports_progress`) gets an
        ``on_step`` callback that moves the app's step progress bar.
        """
        refused = self._refuse_if_spent()
        if refused is not None:
            return refused
        name = self.compute_button.description
        self.compute_button.disabled = True
        self.compute_button.description = "computing…"
        oracle = self.campaign.oracle
        reporting = reports_progress(oracle)
        if reporting:
            self.work_progress.max = max(int(oracle.max_steps), 1)
            self.work_progress.value = 0
            self.work_html.value = f"starting {html.escape(str(getattr(oracle, 'name', 'oracle')))}…"
            self.work_line.layout.display = "flex"
        try:
            return self._act(lambda: self.campaign.step(self._on_step if reporting else None))
        finally:
            self.work_line.layout.display = "none"
            self.compute_button.description = name
            self._update_buttons()

    def submit(self, text: str | float | None = None) -> Outcome:
        """Record an energy (eV/atom) for the current candidate; the text box by default.

        Text that is not a finite number, or lies far outside the pool's
        energies, is refused with a message and nothing is recorded.
        """
        refused = self._refuse_if_spent()
        if refused is not None:
            return refused
        value = self.value_text.value if text is None else text
        outcome = self._act(lambda: self.campaign.submit(value, source="human"))
        if outcome.ok:
            self.value_text.value = ""
        return outcome

    def skip(self, reason: str | None = None) -> Outcome:
        """Skip the current candidate with a reason (the reason box by default); a reason is required."""
        value = self.skip_reason.value if reason is None else reason
        outcome = self._act(lambda: self.campaign.skip(value, source="human"))
        if outcome.ok:
            self.skip_reason.value = ""
        return outcome

    def undo(self) -> Outcome:
        """Take back the most recent label or skip; the undo is recorded as an event."""
        return self._act(self.campaign.undo)

    def set_strategy(self, name: str) -> Outcome:
        """Use another query strategy from the next candidate on."""
        try:
            self.campaign.set_strategy(name)
        except Exception as err:  # noqa: BLE001 - shown to the learner, never swallowed
            self._updating = True
            self.strategy_select.value = self.campaign.strategy
            self._updating = False
            return self._fail(err)
        self._updating = True
        if name in self.strategy_select.options:
            self.strategy_select.value = name
        self._updating = False
        message = f"Strategy is now {self.campaign.strategy!r}."
        self._say(message)
        self._refresh_safely()
        return Outcome(True, message)

    # ------------------------------------------------------------ internals
    def _act(self, action: Callable[[], pd.Series]) -> Outcome:
        """Run a campaign action (which records it), then update the display."""
        try:
            row = action()
        except Exception as err:  # noqa: BLE001 - shown to the learner, never swallowed
            return self._fail(err)
        message = self._describe(row)
        self._say(message)
        self._refresh_safely()
        return Outcome(True, message, row)

    def _on_step(self, step: int, fmax: float) -> None:
        """Show one optimizer step of the oracle: the bar and a line with the largest force."""
        self.work_progress.value = min(int(step), self.work_progress.max)
        self.work_html.value = (f"relaxing: step {int(step)} of at most {self.work_progress.max}, "
                                f"max force {float(fmax):.2f} eV/Å")

    def _describe(self, row: pd.Series) -> str:
        event = row["event"]
        if event == "label":
            return (f"Step {row['step']}: {row['id']} labelled {row['label']:.4f} eV/atom "
                    f"by {row['labelled_by']}.")
        if event == "skip":
            return f"Step {row['step']}: {row['id']} skipped ({row['reason']})."
        return (f"Step {row['step']}: step {row['undoes']} ({row['id']}) is taken back; "
                "its line stays in the file.")

    def _fail(self, err: Exception) -> Outcome:
        message = f"{type(err).__name__}: {err}"
        self._say(message, error=True)
        return Outcome(False, message)

    def how_to_go_on(self) -> str:
        """What to do when the budget is spent or the pool is used up."""
        if self.campaign.n_labels < self.budget and self.campaign.done and \
                (self.campaign.budget is None or self.campaign.n_labels < self.campaign.budget):
            return ("Every candidate of the pool is labelled or skipped. To go on, start a new "
                    "campaign on another pool, with its own labels file.")
        return (f"The budget of {self.budget} labels is spent. To go on, raise it in a new cell "
                f"(app.budget = {self.budget + 10}), or start a new campaign with its own labels "
                "file.")

    def _refuse_if_spent(self) -> Outcome | None:
        if self.campaign.n_labels >= self.budget or self.campaign.done:
            message = self.how_to_go_on()
            self._say(message, error=True)
            return Outcome(False, message)
        return None

    def _handler(self, action: Callable[[], Outcome]) -> Callable[[widgets.Button], None]:
        def on_click(_button: widgets.Button) -> None:
            try:
                action()
            except Exception as err:  # noqa: BLE001 - a button must never fail silently
                self._fail(err)
        return on_click

    def _on_enter(self, action: Callable[[], Outcome]) -> Callable[[widgets.Text, dict, list], None]:
        """A handler of a text box's messages that runs ``action`` when Enter is pressed."""
        click = self._handler(action)

        def on_msg(widget: widgets.Text, content: dict, _buffers: list) -> None:
            if content.get("event") == "submit":
                click(widget)
        return on_msg

    def _on_strategy(self, change: dict) -> None:
        if self._updating or change["new"] == self.campaign.strategy:
            return
        try:
            self.set_strategy(change["new"])
        except Exception as err:  # noqa: BLE001
            self._fail(err)

    def _say(self, text: str, error: bool = False) -> None:
        self._log = (self._log + [(text, error)])[-MAX_MESSAGES:]
        # Newest first in the page, shown at the bottom by column-reverse: the box then stays
        # scrolled to the newest message without any script.
        entries = "".join(
            f'<div class="almat-message{" almat-error" if is_error else ""}" style="{_TEXT_STYLE}'
            f'{f";color:{_ERROR_COLOUR}" if is_error else ""}">'
            f'{"<b>error</b> " if is_error else ""}{html.escape(message)}</div>'
            for message, is_error in reversed(self._log))
        # The box scrolls when it is full, so it takes the keyboard focus (tabindex) too.
        self.messages.value = (
            '<div role="log" aria-live="polite" aria-label="messages of the labeling app" '
            'tabindex="0" style="display:flex;flex-direction:column-reverse;border:1px solid #ccc;'
            f'padding:2px 6px;min-height:1.6em;max-height:4.3em;overflow-y:auto">{entries}</div>')

    def message_texts(self) -> list[str]:
        """The messages shown now, oldest first."""
        return [text for text, _ in self._log]

    def last_message_is_error(self) -> bool:
        """Whether the newest message reports an error or a refusal."""
        return bool(self._log) and self._log[-1][1]

    @property
    def budget(self) -> int:
        """Labels to aim for; the progress bar's maximum.

        Raising it above the campaign's own budget raises that too, so that
        ``app.budget = 40`` is all it takes to go on.
        """
        return self._budget

    @budget.setter
    def budget(self, value: int) -> None:
        self._budget = int(value)
        if self.campaign.budget is not None and self.campaign.budget < self._budget:
            self.campaign.budget = self._budget
        self.progress.max = max(self._budget, 1)
        if hasattr(self, "view"):
            self._refresh_safely()

    # ------------------------------------------------------------ display updates
    def counter_text(self) -> str:
        """``labelled N / budget · skipped K · undone U``."""
        history = self.campaign.history
        undone = int((history["event"] == "undo").sum()) if len(history) else 0
        return (f"labelled {self.campaign.n_labels} / {self.budget} · skipped "
                f"{len(self.campaign.skipped)} · undone {undone}")

    def refresh(self) -> None:
        """Redraw everything from the campaign: counters, query, picture and plots."""
        self._update_counters()
        self._update_query()
        self._update_plots()
        self._update_buttons()

    def _refresh_safely(self) -> None:
        try:
            self.refresh()
        except Exception as err:  # noqa: BLE001 - the action is saved; say what failed to draw
            self._fail(RuntimeError(f"the action was saved, but the display failed to update: {err}"))

    def _update_counters(self) -> None:
        n = self.campaign.n_labels
        self.progress.value = min(n, self.progress.max)
        best = self.campaign.best()
        found = "" if best is None else (f" · best {best['label']:.4f} eV/atom "
                                         f"(<code>{html.escape(str(best['id']))}</code>)")
        self.status.value = f"<span>{html.escape(self.counter_text())}</span>{found}"

    def _update_buttons(self) -> None:
        spent = self.campaign.n_labels >= self.budget or self.campaign.done
        for button in (self.compute_button, self.submit_button, self.skip_button):
            button.disabled = spent
        self.undo_button.disabled = self.campaign.n_labels + len(self.campaign.skipped) == 0

    def _update_query(self) -> None:
        if self.campaign.n_labels >= self.budget or self.campaign.done:
            self.query_html.value = (f'<div style="{_TEXT_STYLE}"><b>Done.</b> '
                                     f"{html.escape(self.how_to_go_on())}</div>")
            self.lili_html.value = ""
            self.structure_image.value = ""
            self.figures.pop("structure", None)
            return
        query = self.campaign.suggest()
        pool = self.campaign.pool
        if math.isfinite(query.mu):
            estimate = f"μ = {query.mu:.4f} eV/atom, σ = {1000 * query.sigma:.1f} meV/atom"
        else:
            estimate = "μ, σ: not yet, the surrogate is fitted once there are labels"
        self.query_html.value = (
            f'<div style="{_TEXT_STYLE}">'
            f"<b>next: <code>{html.escape(query.id)}</code></b> · cell size {query.cell_size} "
            f"({len(pool.structure(query.index))} atoms)<br>{estimate}<br>"
            f"picked by <b>{html.escape(query.strategy)}</b>: {html.escape(query.reason)}</div>")
        d = float(pool.reference["min_li_li"].iloc[query.index])
        if d < MIN_LI_LI:
            self.lili_html.value = (
                '<div class="almat-warning" style="background:#fdecea;color:#8a1c1c;'
                f'padding:2px 4px;border-left:4px solid #D55E00">shortest Li–Li {d:.2f} Å: '
                "Li on both sites of a 1.8 Å 48h pair</div>")
        else:
            self.lili_html.value = f"<div>shortest Li–Li {d:.2f} Å</div>"
        fig = Figure(figsize=STRUCTURE_SIZE)
        fig.subplots_adjust(left=0.12, right=0.56, bottom=0.2, top=0.86)
        plot_structure(pool, fig.add_subplot(), index=query.index, short=MIN_LI_LI,
                       title=f"{query.id}")
        self.figures["structure"] = fig
        self.structure_image.value = _img(
            fig, f"Candidate {query.id} seen along z: Li filled, vacancies open, pairs of Li "
                 f"closer than {MIN_LI_LI:g} Å joined in red.")

    def _update_plots(self) -> None:
        campaign = self.campaign
        energies = campaign.pool.energies
        best = Figure(figsize=PLOT_SIZE)
        best.subplots_adjust(left=0.22, right=0.96, bottom=0.19, top=0.8)
        reference_min = float(np.nanmin(energies)) if np.isfinite(energies).any() else None
        plot_best_so_far(campaign.best_so_far(), reference_min=reference_min, ax=best.add_subplot())
        parity = Figure(figsize=PLOT_SIZE)
        parity.subplots_adjust(left=0.1, right=0.96, bottom=0.3, top=0.88)
        if np.isfinite(energies).any():
            table = parity_table(campaign)
            plot_parity(table["reference"], table["predicted"], ax=parity.add_subplot(),
                        labelled=table["labelled"], xlabel="reference (eV/atom)",
                        ylabel="surrogate μ (eV/atom)")
        else:
            labels = campaign.labelled
            mu, _ = campaign.predict()
            plot_parity(labels["label"], mu[labels["index"].to_numpy(dtype=int)],
                        ax=parity.add_subplot(), xlabel="label (eV/atom)",
                        ylabel="surrogate μ (eV/atom)")
        self.figures.update(best=best, parity=parity)
        self.best_image.value = _img(best, "Best energy found against the number of labels: "
                                     + best.axes[0].get_title().replace("\n", "; "))
        self.parity_image.value = _img(parity, "Surrogate prediction against reference energy: "
                                       + parity.axes[0].get_title())
