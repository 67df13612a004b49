"""The labeling app's actions: label what is shown, nothing else.

:class:`LabelingApp` shows the candidate its campaign proposes next and lets a
learner label it: with the campaign's oracle (the button says what it does),
by typing an energy (Enter or "Submit"), by skipping it with a reason, or by
undoing the last answer. It is callback-driven: nothing blocks the kernel, so
the app works in JupyterLab, in Voilà and headless (``Button.click()`` runs a
handler in ipywidgets 8). Each action is also a method
(:meth:`~LabelingApp.compute`, :meth:`~LabelingApp.submit`,
:meth:`~LabelingApp.skip`, :meth:`~LabelingApp.undo`,
:meth:`~LabelingApp.set_strategy`) that returns an :class:`Outcome`, so
notebooks and tests drive the app without a browser.

Every action is bound to the candidate on the screen: the app hands the
campaign the :class:`~almat.ledger.Query` it displayed, and the campaign
refuses it if anything was recorded since (another app, a ``campaign.step()``
in another cell). The app then says so in one line, shows the candidate the
campaign proposes now, and records nothing. The campaign writes every action
to its labels file before the app acknowledges it; the app itself knows
nothing of files. Errors never pass in silence: every one is shown in the
messages area.
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from almat.acquisition import STRATEGIES
from almat.campaign import Campaign
from almat.ledger import LabelError, Query, StaleQueryError
from almat.views import CandidateView
from almat.widget.layout import (AppLayout, done_text, force_fraction, lili_text, query_text,
                                 work_text)
from almat.widget.pictures import best_picture, candidate_picture, parity_picture

#: A typed label this many σ from the surrogate's μ asks for a second Submit before it is recorded.
IMPLAUSIBLE_SIGMAS = 5.0
#: Height of the candidate's 3-D view (CSS), below its picture.
VIEW_HEIGHT = "320px"


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


def describe(row: pd.Series) -> str:
    """One line on a recorded event, e.g. "Step 3: c2-000613 labelled -4.3990 eV/atom by table."."""
    event = row["event"]
    if event == "label":
        return f"Step {row['step']}: {row['id']} labelled {row['energy']:.4f} eV/atom by {row['labelled_by']}."
    if event == "skip":
        return f"Step {row['step']}: {row['id']} skipped ({row['reason']})."
    return f"Step {row['step']}: step {row['undoes']} ({row['id']}) is taken back; its line stays in the file."


class LabelingApp:
    """Label the candidates a campaign proposes, one at a time.

    Parameters
    ----------
    campaign
        The campaign to drive; its labels file records every action.
    budget
        Sets the campaign's budget (``campaign.budget``, which owns it): the
        number of labels to aim for, shown as progress; labelling stops there.
        ``None`` keeps the campaign's own. A budget that is not a whole number
        from 1 is refused (:class:`~almat.ledger.CampaignError`).

    Attributes
    ----------
    ui
        The :class:`~almat.widget.layout.AppLayout`: every widget of the app.
    view
        The root ``VBox``; ``display(app)`` shows it.
    shown
        The :class:`~almat.ledger.Query` on the screen; None when nothing is
        left to label. Every action is for this candidate, or is refused.
    figures
        The figures shown now, by name: ``"structure"``, ``"best"``, ``"parity"``.

    Examples
    --------
    >>> app = LabelingApp(campaign)              # doctest: +SKIP
    >>> app                                      # doctest: +SKIP
    >>> app.submit("-4.1523").ok                 # doctest: +SKIP
    True
    """

    def __init__(self, campaign: Campaign, budget: int | None = None):
        if budget is not None:
            campaign.budget = budget  # the campaign checks it, and owns it
        self.campaign = campaign
        self.shown: Query | None = None
        self.figures: dict[str, Figure] = {}
        self._seen = 0  # events recorded when the app was last drawn; Undo is bound to it
        self._pending: tuple[int | None, int, float] | None = None  # an implausible label to confirm
        self._busy = False
        self._updating = False  # True while the app itself sets the strategy menu
        self._first_force: float | None = None
        self._lock = threading.RLock()  # one action at a time, whichever thread calls
        saved = (f" to <code>{html.escape(str(campaign.ledger_path))}</code>"
                 if campaign.ledger_path else " (in memory only: no ledger_path)")
        self.ui = AppLayout(f"<b>Label the next candidate</b> of pool "
                            f"<code>{html.escape(campaign.pool.name)}</code>; every answer is saved at "
                            f"once{saved}.", self._strategy_names(), campaign.strategy,
                            CandidateView(campaign.pool, height=VIEW_HEIGHT))
        ui = self.ui
        ui.compute_button.on_click(self._handler(self.compute))
        ui.submit_button.on_click(self._handler(self.submit))
        ui.skip_button.on_click(self._handler(self.skip))
        ui.undo_button.on_click(self._handler(self.undo))
        ui.value_text.on_msg(self._on_enter(self.submit))
        ui.skip_reason.on_msg(self._on_enter(self.skip))
        ui.strategy_select.observe(self._on_strategy, names="value")
        if campaign.note:
            ui.say(campaign.note)
        self.refresh()

    @property
    def view(self) -> widgets.VBox:
        """The root box of the app."""
        return self.ui.view

    # ------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The app's widget view, with a placeholder text where no widget can be drawn."""
        return self.ui.bundle(**kwargs)

    def __repr__(self) -> str:
        return f"<LabelingApp: {self.counter_text()}, strategy {self.campaign.strategy!r}>"

    # ------------------------------------------------------------ actions
    def compute(self) -> Outcome:
        """Label the candidate shown with the campaign's oracle (the button says which).

        Submit, Skip, Undo and the strategy menu are disabled meanwhile. An
        oracle that works in steps (``max_steps``) moves a progress bar: on a
        log scale of the largest force, from the first step's down to the
        oracle's ``target_fmax``, or by steps where it has no force target.
        """
        shown = self.shown
        with self._lock:
            refused = self._refusal(shown)
            if refused is not None:
                return refused
            oracle = self.campaign.oracle
            self._set_busy(True)
            if oracle.max_steps is not None:
                self._first_force = None
                self.ui.start_work(f"starting {oracle.name}…")
            try:
                return self._act(lambda: self.campaign.step(self._on_step, query=shown))
            finally:
                self.ui.end_work()
                self._set_busy(False)

    def submit(self, text: str | float | None = None) -> Outcome:
        """Record an energy (eV/atom) for the candidate shown; the text box by default.

        Text that is not a finite number, or lies far outside the pool's
        energies, is refused with a message and nothing is recorded. A value
        more than :data:`IMPLAUSIBLE_SIGMAS` σ from the surrogate's μ is not
        recorded either, until it is submitted a second time: the message asks
        to check it.
        """
        shown = self.shown
        value = self.ui.value_text.value if text is None else text
        return self._typed(shown, self.ui.value_text,
                           lambda: self.campaign.submit(value, source="human", query=shown),
                           check=lambda: self._implausible(shown, value))

    def skip(self, reason: str | None = None) -> Outcome:
        """Skip the candidate shown with a reason (the reason box by default); a reason is required."""
        shown = self.shown
        value = self.ui.skip_reason.value if reason is None else reason
        return self._typed(shown, self.ui.skip_reason,
                           lambda: self.campaign.skip(value, source="human", query=shown))

    def undo(self) -> Outcome:
        """Take back the most recent label or skip; the undo is recorded as an event.

        Refused if the campaign recorded anything the app has not shown: it
        would take back someone else's label.
        """
        seen = self._seen
        with self._lock:
            return self._act(lambda: self.campaign.undo("human", n_events=seen))

    def set_strategy(self, name: str) -> Outcome:
        """Use another query strategy from the next candidate on."""
        with self._lock:
            try:
                self.campaign.set_strategy(name)
            except Exception as err:  # noqa: BLE001 - shown to the learner, never swallowed
                self._show_strategy()
                return self._error(err)
            message = f"Strategy is now {self.campaign.strategy!r}."
            self.ui.say(message)
            self._refresh_safely()
            return Outcome(True, message)

    # ------------------------------------------------------------ internals
    def _act(self, action: Callable[[], pd.Series]) -> Outcome:
        """Run a campaign action (which records it), then update the display."""
        try:
            row = action()
        except StaleQueryError as err:
            self._refresh_safely()
            self.ui.value_text.value = self.ui.skip_reason.value = ""  # typed for another candidate
            now = ("nothing is left to label" if self.shown is None else
                   f"now showing {self.shown.id} (index {self.shown.index})")
            return self._fail(f"The campaign moved on elsewhere ({err.moved}); nothing was recorded; {now}.")
        except Exception as err:  # noqa: BLE001 - shown to the learner, never swallowed
            return self._error(err)
        message = describe(row)
        self.ui.say(message)
        self._refresh_safely()
        return Outcome(True, message, row)

    def _typed(self, shown: Query | None, box: widgets.Text, record: Callable[[], pd.Series],
               check: Callable[[], Outcome | None] | None = None) -> Outcome:
        """Record an answer typed in ``box`` for the candidate ``shown``; empty the box once recorded.

        ``check`` may hold the answer back (an :class:`Outcome`) before anything is recorded.
        """
        with self._lock:
            refused = self._refusal(shown)
            if refused is None and check is not None:
                refused = check()
            if refused is not None:
                return refused
            outcome = self._act(record)
            if outcome.ok:
                box.value = ""
            return outcome

    def _refusal(self, shown: Query | None) -> Outcome | None:
        """Why no candidate can be labelled now (spent, used up, nothing shown), or None."""
        if self.campaign.done:
            return self._fail(self.how_to_go_on())
        if shown is None:
            self._refresh_safely()
            return self._fail("No candidate was on the screen, so nothing was recorded; look at the "
                              "one shown now.")
        return None

    def _implausible(self, shown: Query, text: str | float) -> Outcome | None:
        """Ask to check a value many σ from μ, unless it is the same value submitted again."""
        try:
            value = self.campaign.ledger.check_label(text)
        except LabelError:
            return None  # not a number, or out of range: the campaign refuses it, with its own message
        mu, sigma = shown.mu, shown.sigma
        if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0):
            self._pending = None
            return None
        distance = abs(value - mu) / sigma
        pending = (shown.n_events, shown.index, value)
        if distance <= IMPLAUSIBLE_SIGMAS or self._pending == pending:
            self._pending = None
            return None
        self._pending = pending
        message = (f"Check {value:.4f} eV/atom: it is {distance:.0f}σ from the surrogate's "
                   f"μ ± σ = {mu:.4f} ± {sigma:.4f} eV/atom for {shown.id}. Press Submit again with "
                   "the same value to record it, or correct it.")
        self.ui.say(message, "check")
        return Outcome(False, message)

    def _on_step(self, step: int, fmax: float) -> None:
        """Show one step of the oracle: the bar (force against its target) and a line."""
        oracle = self.campaign.oracle
        if oracle.max_steps is None:
            return
        target = oracle.target_fmax
        if self._first_force is None:
            self._first_force = float(fmax)
        if target is None:
            fraction = step / oracle.max_steps
        else:
            fraction = force_fraction(self._first_force, float(fmax), target)
        self.ui.show_work(fraction, work_text(step, oracle.max_steps, float(fmax), target))

    def _fail(self, message: str) -> Outcome:
        """Show a refusal or an error, and return it as an Outcome that recorded nothing."""
        self.ui.say(message, "error")
        return Outcome(False, message)

    def _error(self, err: Exception) -> Outcome:
        """:meth:`_fail` with an exception, named by its class: ``LabelError: ...``."""
        return self._fail(f"{type(err).__name__}: {err}")

    def how_to_go_on(self) -> str:
        """What to do when the budget is spent or the pool is used up."""
        budget = self.campaign.budget
        if budget is None or self.campaign.n_labels < budget:
            return ("Every candidate of the pool is labelled or skipped. To go on, start a new "
                    "campaign on another pool, with its own labels file.")
        return (f"The budget of {budget} labels is spent. To go on, raise it in a new cell "
                f"(app.budget = {budget + 10}), or start a new campaign with its own labels file.")

    def _handler(self, action: Callable[[], Outcome]) -> Callable[[widgets.Button], None]:
        def on_click(_button: widgets.Button) -> None:
            try:
                action()
            except Exception as err:  # noqa: BLE001 - a button must never fail silently
                self._error(err)
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
            self._error(err)

    def _strategy_names(self) -> list[str]:
        """The menu's strategies: the named ones, and the campaign's own if it is another."""
        names = list(STRATEGIES)
        return names if self.campaign.strategy in names else [*names, self.campaign.strategy]

    def _show_strategy(self) -> None:
        self._updating = True
        try:
            self.ui.show_strategy(self.campaign.strategy, self._strategy_names())
        finally:
            self._updating = False

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.ui.compute_button.description = "computing…" if busy else self.campaign.oracle.action
        self._update_buttons()

    @property
    def budget(self) -> int | None:
        """The campaign's budget (it owns it); setting it here sets the campaign's and redraws."""
        return self.campaign.budget

    @budget.setter
    def budget(self, value: int | None) -> None:
        self.campaign.budget = value
        self._refresh_safely()

    # ------------------------------------------------------------ display updates
    def counter_text(self) -> str:
        """``labelled N / budget · skipped K · undone U`` (``(no budget)`` without one)."""
        history = self.campaign.history
        undone = int((history["event"] == "undo").sum()) if len(history) else 0
        budget = self.campaign.budget
        of = " (no budget)" if budget is None else f" / {budget}"
        return (f"labelled {self.campaign.n_labels}{of} · skipped {len(self.campaign.skipped)} "
                f"· undone {undone}")

    def refresh(self) -> None:
        """Redraw everything from the campaign: counters, the candidate, its picture and the plots."""
        with self._lock:
            self._seen = len(self.campaign.ledger.events)
            oracle = self.campaign.oracle
            if not self._busy:
                self.ui.show_oracle(oracle.action, oracle.name)
            self._show_strategy()
            self._update_counters()
            self._update_query()
            self._update_buttons()
            self._update_plots()

    def _refresh_safely(self) -> None:
        try:
            self.refresh()
        except Exception as err:  # noqa: BLE001 - the action is saved; say what failed to draw
            self._fail(f"The action was saved, but the display failed to update: {type(err).__name__}: {err}")

    def _update_counters(self) -> None:
        campaign = self.campaign
        best = campaign.best()
        found = "" if best is None else (f" · best {best['energy']:.4f} eV/atom "
                                         f"(<code>{html.escape(str(best['id']))}</code>)")
        self.ui.show_counter(campaign.n_labels, campaign.budget or len(campaign.pool),
                             f"<span>{html.escape(self.counter_text())}</span>{found}")

    def _update_buttons(self) -> None:
        campaign = self.campaign
        self.ui.enable(label=not (self._busy or campaign.done),
                       undo=not self._busy and campaign.n_labels + len(campaign.skipped) > 0,
                       strategy=not self._busy)

    def _update_query(self) -> None:
        ui = self.ui
        self.shown = None
        if self.campaign.done:
            ui.query_html.value = done_text(self.how_to_go_on())
            ui.lili_html.value = ui.structure_image.value = ""
            ui.structure_view.clear()
            self.figures.pop("structure", None)
            return
        query = self.campaign.suggest()
        pool = self.campaign.pool
        ui.query_html.value = query_text(query, len(pool.structure(query.index)))
        self.shown = query  # on the screen from here on: actions are for this candidate
        ui.lili_html.value = lili_text(float(pool.reference["min_li_li"].iloc[query.index]))
        self.figures["structure"], ui.structure_image.value = candidate_picture(pool, query)
        ui.structure_view.show(query.index)

    def _update_plots(self) -> None:
        self.figures["best"], self.ui.best_image.value = best_picture(self.campaign)
        self.figures["parity"], self.ui.parity_image.value = parity_picture(self.campaign)
