"""A labeling app for a campaign, on ipywidgets 8.

:class:`LabelingApp` shows the candidate the campaign proposes next and lets
a learner label it: with CHGNet (or the campaign's oracle), by typing an
energy, by skipping it with a reason, or by undoing the last answer. It is
callback-driven: nothing blocks the kernel, so the app works in JupyterLab,
in Voilà and headless (``Button.click()`` runs a handler in ipywidgets 8).

Every action goes to the campaign first, which writes it to the labels file
at once; only then is the display updated. Each action is also a method
(:meth:`~LabelingApp.compute`, :meth:`~LabelingApp.submit`,
:meth:`~LabelingApp.skip`, :meth:`~LabelingApp.undo`,
:meth:`~LabelingApp.set_strategy`) that returns an :class:`Outcome`, so
notebooks and tests drive the app without a browser. Errors never pass in
silence: every one is shown in the messages area.

Main widgets carry CSS classes (``almat-compute``, ``almat-value``,
``almat-submit``, ``almat-skip``, ``almat-skip-reason``, ``almat-undo``,
``almat-strategy``, ``almat-counter``, ``almat-messages``, ``almat-query``,
``almat-lili``, ``almat-plots``) for browser tests and styling.
"""

from __future__ import annotations

import base64
import html
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
from almat.oracles import CHGNetOracle
from almat.plots import plot_best_so_far, plot_parity, plot_structure

#: Li-Li distance (Å) below which the app warns: two Li on the sites of one 48h pair.
SHORT_LI_LI = 2.0
#: Messages kept in the messages area, newest last.
MAX_MESSAGES = 8
#: Resolution of the figures shown in the app.
DPI = 90


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


def _png(fig: Figure) -> dict:
    """A figure as a Jupyter ``display_data`` output holding a PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": data, "text/plain": "<figure>"}}


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
        The controls.
    strategy_select
        Dropdown of the query strategies of :data:`almat.acquisition.STRATEGIES`.
    progress, status
        ``IntProgress`` (labels / budget) and an ``HTML`` counter line such as
        ``labelled 3 / 50 · skipped 1 · undone 0``.
    query_html, lili_html, structure_output
        The current candidate: its numbers, its shortest Li-Li distance and its picture.
    plot_output
        Best energy found against labels, and the parity plot of the surrogate.
    messages
        ``Output`` with what each action did, errors included.

    Examples
    --------
    >>> app = LabelingApp(campaign, budget=30)   # doctest: +SKIP
    >>> app                                      # doctest: +SKIP
    >>> app.submit("-4.1523").ok                 # doctest: +SKIP
    True
    """

    def __init__(self, campaign: Campaign, budget: int | None = None):
        self.campaign = campaign
        self.budget = int(budget or campaign.budget or len(campaign.pool))
        oracle = campaign.oracle
        oracle_name = "CHGNet" if isinstance(oracle, CHGNetOracle) else getattr(oracle, "name", "oracle")
        self._updating = False

        self.query_html = widgets.HTML()
        self.lili_html = widgets.HTML()
        self.structure_output = widgets.Output(layout=widgets.Layout(min_width="420px"))

        names = list(STRATEGIES)
        if campaign.strategy not in names:
            names.append(campaign.strategy)
        self.strategy_select = widgets.Dropdown(options=names, value=campaign.strategy,
                                                description="strategy")
        self.compute_button = widgets.Button(
            description=f"Compute with {oracle_name}", button_style="primary", icon="calculator",
            tooltip=f"Label the candidate with the campaign's oracle ({getattr(oracle, 'name', '?')})",
            layout=widgets.Layout(width="auto"))
        self.value_text = widgets.Text(placeholder="e.g. -4.1523", description="energy (eV/atom)",
                                       style={"description_width": "initial"})
        self.submit_button = widgets.Button(description="Submit", button_style="success",
                                            icon="check", tooltip="Record the energy typed on the left")
        self.skip_reason = widgets.Text(placeholder="why skip it?", description="reason")
        self.skip_button = widgets.Button(description="Skip", button_style="warning", icon="forward",
                                          tooltip="Do not label this candidate; the reason is recorded")
        self.undo_button = widgets.Button(description="Undo", icon="undo",
                                          tooltip="Take back the last label or skip (recorded, not erased)")
        self.progress = widgets.IntProgress(min=0, max=self.budget, description="labels")
        self.status = widgets.HTML()
        self.messages = widgets.Output(layout=widgets.Layout(border="1px solid #ddd",
                                                             min_height="2em", padding="2px"))
        self.plot_output = widgets.Output()

        for widget, name in [
            (self.compute_button, "almat-compute"), (self.value_text, "almat-value"),
            (self.submit_button, "almat-submit"), (self.skip_button, "almat-skip"),
            (self.skip_reason, "almat-skip-reason"), (self.undo_button, "almat-undo"),
            (self.strategy_select, "almat-strategy"), (self.status, "almat-counter"),
            (self.progress, "almat-progress"), (self.messages, "almat-messages"),
            (self.query_html, "almat-query"), (self.lili_html, "almat-lili"),
            (self.structure_output, "almat-structure"), (self.plot_output, "almat-plots"),
        ]:
            widget.add_class(name)

        self.compute_button.on_click(self._handler(lambda: self.compute()))
        self.submit_button.on_click(self._handler(lambda: self.submit()))
        self.skip_button.on_click(self._handler(lambda: self.skip()))
        self.undo_button.on_click(self._handler(lambda: self.undo()))
        self.strategy_select.observe(self._on_strategy, names="value")

        self.view = widgets.VBox([
            widgets.HTML(f"<b>Label the next candidate</b> of pool <code>{html.escape(campaign.pool.name)}"
                         "</code>; every answer is saved at once"
                         + (f" to <code>{html.escape(str(campaign.ledger_path))}</code>"
                            if campaign.ledger_path else " (in memory only: no ledger_path)") + "."),
            widgets.HBox([self.structure_output, widgets.VBox([self.query_html, self.lili_html])]),
            widgets.HBox([self.strategy_select, self.compute_button]),
            widgets.HBox([self.value_text, self.submit_button]),
            widgets.HBox([self.skip_reason, self.skip_button, self.undo_button]),
            widgets.HBox([self.progress, self.status]),
            self.messages,
            self.plot_output,
        ])
        self.view.add_class("almat-app")
        self.refresh()

    # ------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return self.view._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<LabelingApp: {self.counter_text()}, strategy {self.campaign.strategy!r}>"

    # ------------------------------------------------------------ actions
    def compute(self) -> Outcome:
        """Label the current candidate with the campaign's oracle (CHGNet by default)."""
        refused = self._refuse_if_spent()
        if refused is not None:
            return refused
        name = self.compute_button.description
        self.compute_button.disabled = True
        self.compute_button.description = "computing…"
        try:
            return self._act(self.campaign.step)
        finally:
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

    def _refuse_if_spent(self) -> Outcome | None:
        if self.campaign.n_labels >= self.budget:
            message = (f"The budget of {self.budget} labels is reached. Set app.budget higher "
                       "(or use Undo) to go on.")
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

    def _on_strategy(self, change: dict) -> None:
        if self._updating or change["new"] == self.campaign.strategy:
            return
        try:
            self.set_strategy(change["new"])
        except Exception as err:  # noqa: BLE001
            self._fail(err)

    def _say(self, text: str, error: bool = False) -> None:
        entry = {"output_type": "stream", "name": "stderr" if error else "stdout", "text": text + "\n"}
        self.messages.outputs = (tuple(self.messages.outputs) + (entry,))[-MAX_MESSAGES:]

    def message_texts(self) -> list[str]:
        """The messages shown now, oldest first."""
        return [o.get("text", "").rstrip("\n") for o in self.messages.outputs]

    @property
    def budget(self) -> int:
        """Labels to aim for; the progress bar's maximum."""
        return self._budget

    @budget.setter
    def budget(self, value: int) -> None:
        self._budget = int(value)
        if hasattr(self, "progress"):
            self.progress.max = self._budget
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
            self.query_html.value = "<b>Done:</b> the budget is spent or no candidate is left."
            self.lili_html.value = ""
            self.structure_output.outputs = ()
            return
        query = self.campaign.suggest()
        pool = self.campaign.pool
        if math.isfinite(query.mu):
            estimate = f"{query.mu:.4f} ± {query.sigma:.4f} eV/atom"
        else:
            estimate = "not yet: the surrogate is fitted once there are labels"
        self.query_html.value = (
            f"<b>next: <code>{html.escape(query.id)}</code></b><br>"
            f"cell size {query.cell_size} ({len(pool.structure(query.index))} atoms)<br>"
            f"μ ± σ: {estimate}<br>"
            f"picked by <b>{html.escape(query.strategy)}</b>: {html.escape(query.reason)}")
        d = float(pool.reference["min_li_li"].iloc[query.index])
        if d < SHORT_LI_LI:
            self.lili_html.value = (
                '<div class="almat-warning" style="background:#fdecea;color:#8a1c1c;'
                f'padding:4px;border-left:4px solid #d62728">shortest Li–Li {d:.2f} Å: '
                "Li on both sites of a 1.8 Å 48h pair</div>")
        else:
            self.lili_html.value = f"<div>shortest Li–Li {d:.2f} Å</div>"
        fig = Figure(figsize=(5.2, 3.4))
        fig.subplots_adjust(left=0.1, right=0.62, bottom=0.14, top=0.9)
        plot_structure(pool, fig.add_subplot(), index=query.index, short=SHORT_LI_LI,
                       title=f"{query.id}")
        self.structure_output.outputs = (_png(fig),)

    def _update_plots(self) -> None:
        campaign = self.campaign
        energies = campaign.pool.energies
        fig = Figure(figsize=(9.0, 3.6))
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.2, top=0.85, wspace=0.35)
        left, right = fig.subplots(1, 2)
        reference_min = float(np.nanmin(energies)) if np.isfinite(energies).any() else None
        plot_best_so_far(campaign.best_so_far(), reference_min=reference_min, ax=left)
        if np.isfinite(energies).any():
            parity = parity_table(campaign)
            plot_parity(parity["reference"], parity["predicted"], ax=right,
                        labelled=parity["labelled"], xlabel="reference (eV/atom)",
                        ylabel="surrogate μ (eV/atom)")
        else:
            labels = campaign.labelled
            mu, _ = campaign.predict()
            plot_parity(labels["label"], mu[labels["index"].to_numpy(dtype=int)], ax=right,
                        xlabel="label (eV/atom)", ylabel="surrogate μ (eV/atom)")
        self.plot_output.outputs = (_png(fig),)
