"""The ledger of a campaign: every label, skip and undo, in memory and in a labels file.

A :class:`Ledger` records what happened to the candidates of one pool. It
knows the pool (names, fingerprint, reference energies) but nothing of
surrogates or strategies' arithmetic: the campaign decides what to label and
hands over a :class:`Query` (the candidate, and how and why it was picked);
the ledger keeps the record and says which labels count. The events are

``label``
    a candidate got an energy (eV/atom) from an oracle or a person;
``skip``
    the oracle refused the candidate, with a reason;
``undo``
    the label or skip of an earlier step (``undoes``) no longer counts;
``strategy``
    picks use another query strategy from now on (not a step);
``batch``
    the picks of one round, recorded before any is labelled (not a step; see
    :class:`~almat.batch_book.BatchBook`).

With a ``path`` each event is appended to a labels file (:mod:`almat.labels`)
before it is acknowledged. Nothing is ever rewritten: a wrong label is undone
by a new line, not erased. A ledger created again with the same file replays it.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from almat.batch_book import BatchBook
from almat.errors import AlmatError
from almat.labels import LabelError, LabelsJournal, check_label, history_frame, json_float, line_problem, now

if TYPE_CHECKING:
    from almat.pool import Pool

#: Columns of :attr:`Ledger.labelled`.
LABELLED_COLUMNS = ["index", "id", "cell_size", "energy", "labelled_by", "step"]


class CampaignError(AlmatError, ValueError):
    """A campaign (or its ledger) cannot do what was asked in its current state."""


class StaleQueryError(CampaignError):
    """An action was meant for a state that other events have since changed; nothing is recorded.

    Attributes
    ----------
    moved
        What was recorded since, e.g. ``"step 4 labelled c2-000123"``.
    """

    def __init__(self, message: str, moved: str = ""):
        super().__init__(message)
        self.moved = moved


@dataclass(frozen=True)
class Query:
    """The candidate a campaign proposes to label next.

    Attributes
    ----------
    index, id, cell_size
        Position in the pool, identifier and supercell size of the candidate.
    mu, sigma
        Surrogate prediction and its standard deviation (eV/atom) when it was
        picked; NaN before the surrogate has been fitted.
    strategy
        The strategy that picked it (``"initial"`` for the random start,
        ``"manual"`` for a candidate chosen by hand).
    reason
        One sentence saying why it was picked.
    n_events
        Number of events recorded when it was suggested; ``None`` for a pick
        made by hand, which holds in any state. :meth:`Ledger.add` refuses a
        suggestion made before the latest event.
    batch
        Number (1, 2, ...) of the batch that recorded this pick
        (:meth:`Ledger.record_batch`): it holds while that batch is open,
        whatever else of the batch was recorded since. ``None`` otherwise.
    """

    index: int
    id: str
    cell_size: int
    mu: float
    sigma: float
    strategy: str
    reason: str
    n_events: int | None = None
    batch: int | None = None


class Ledger:
    """The events of one campaign on one pool, and the books of what counts now.

    Parameters
    ----------
    pool
        The candidates the events are about.
    path
        JSON Lines labels file; an existing one is replayed, a missing or
        empty one is started with a header. ``None`` keeps events in memory only.
    seed
        The campaign's seed, written in a new file's header; a file started
        with another seed is flagged with a warning.
    strategy
        Name of the query strategy, written in a new file's header.

    Attributes
    ----------
    events
        Every event in order, as the dictionaries written to the file.
    strategy
        The strategy recorded last (header or ``strategy`` line); None for a
        file written before strategies were recorded.
    batch_book
        The ``batch`` events, and which picks of the open batch are pending.

    Raises
    ------
    LabelsFileWriteError
        The file cannot be opened for writing (a read-only file or folder):
        raised here, before any label is computed, not after.
    LabelsFileError
        The file belongs to another pool, is not a labels file, or has a
        damaged line (a last line cut short is dropped with a warning).

    Every method that records holds a lock, so threads sharing a ledger record
    one event at a time, each at its own step.
    """

    def __init__(self, pool: Pool, path: str | os.PathLike | None = None, *, seed: int = 0,
                 strategy: str | None = None):
        self.pool = pool
        self.path = None if path is None else Path(path)
        self.seed = seed
        self.strategy = strategy
        self.events: list[dict] = []
        self._label_steps: dict[int, int] = {}  # candidate index -> step of its label event
        self._skip_steps: dict[int, int] = {}  # candidate index -> step of its skip event
        self.batch_book = BatchBook()
        self._lock = threading.RLock()  # one check-and-write at a time, whichever thread calls
        self.journal = None if path is None else LabelsJournal(path, pool, seed, strategy)
        if self.journal is not None:
            self._replay_file()

    # ----------------------------------------------------------------- books
    @property
    def n_labels(self) -> int:
        """Number of labels that count (undone ones excluded)."""
        return len(self._label_steps)

    @property
    def n_skipped(self) -> int:
        """Number of candidates skipped now."""
        return len(self._skip_steps)

    def labelled_indices(self) -> np.ndarray:
        """Pool indices of the labels that count, in the order they were given."""
        return np.fromiter(self._label_steps, dtype=int, count=self.n_labels)

    def labelled_energies(self) -> np.ndarray:
        """Energies (eV/atom) of the labels that count, aligned with :meth:`labelled_indices`."""
        return np.array([self.events[s - 1]["energy"] for s in self._label_steps.values()], dtype=float)

    def labels_in_pick_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Pool indices and energies (eV/atom) of the labels that count, in the order they were picked.

        That is the order they were given, except that the labels of one batch
        come in the order the batch picked them, whichever came back first: a
        model fitted to them does not depend on the order of arrival.
        """
        steps = self._label_steps
        order = self.batch_book.pick_order(steps)
        return (np.array(order, dtype=int),
                np.array([self.events[steps[i] - 1]["energy"] for i in order], dtype=float))

    def taken(self) -> np.ndarray:
        """Boolean mask over the pool: labelled or skipped."""
        mask = np.zeros(len(self.pool), dtype=bool)
        mask[list(self._label_steps)] = True
        mask[list(self._skip_steps)] = True
        return mask

    def check_label(self, value: Any) -> float:
        """The value as an energy per atom (eV/atom), or :class:`LabelError` if it is not plausible."""
        return check_label(value, self.pool)

    def counts(self, event: dict) -> bool:
        """Whether a label or skip event still counts (it was not undone or replaced)."""
        book = self._label_steps if event["type"] == "label" else self._skip_steps
        return book.get(event["index"]) == event["step"]

    # ------------------------------------------------------------- recording
    def add(self, kind: str, query: Query, *, by: str, source: str, energy: Any = None,
            reason: str = "") -> pd.Series:
        """Record a label or skip of a picked candidate: to the file first (flushed to disk), then to memory.

        Parameters
        ----------
        kind
            ``"label"`` or ``"skip"``.
        query
            The candidate, and how and why it was picked.
        by, source
            Who labelled or skipped it, and where the value comes from.
        energy
            The energy per atom (eV/atom) of a label, as a number or text.
        reason
            Why it was skipped.

        Returns
        -------
        pandas.Series
            The new row of :attr:`history`.

        Raises
        ------
        LabelError
            A label that is not plausible (:meth:`check_label`), or of a
            candidate labelled already. Nothing is recorded.
        StaleQueryError
            ``query`` was suggested before the latest event (another app,
            thread or cell recorded one since). Nothing is recorded.
        CampaignError
            A skip of a candidate that is labelled or skipped already.
        """
        with self._lock:
            self.check_query(query, f"this {kind} of {query.id}")
            if query.index in self._label_steps:
                step = self._label_steps[query.index]
                if kind == "label":
                    raise LabelError(
                        f"Candidate {query.id} already has the label {self.events[step - 1]['energy']} "
                        f"eV/atom (step {step}). Labels are never overwritten: undo it first if it was wrong."
                    )
                raise CampaignError(f"Candidate {query.id} is labelled; undo the label before skipping it.")
            if kind == "skip" and query.index in self._skip_steps:
                raise CampaignError(f"Candidate {query.id} is skipped already.")
            return self._write({"type": kind, "index": query.index, "id": query.id,
                                "cell_size": query.cell_size, "strategy": query.strategy,
                                "mu": json_float(query.mu), "sigma": json_float(query.sigma),
                                "energy": self.check_label(energy) if kind == "label" else None,
                                "labelled_by": by, "source": source,
                                "reason": reason if kind == "skip" else query.reason, "undoes": None})

    def check_query(self, query: Query, what: str) -> None:
        """Raise :class:`StaleQueryError` if ``query`` no longer holds (see :attr:`Query.n_events`, :attr:`Query.batch`)."""
        if query.batch is not None and not self.batch_book.holds(query.batch, query.index):
            raise StaleQueryError(f"Candidate {query.id} was picked in batch {query.batch}, which is closed "
                                  f"(a label, skip or undo outside it came since), so {what} is not recorded. "
                                  "Look at the candidate it suggests now (campaign.suggest()).")
        if query.batch is None and query.n_events is not None:
            self.check_current(query.n_events, what)

    def check_current(self, n_events: int, what: str) -> None:
        """Raise :class:`StaleQueryError` if events were recorded after the first ``n_events``.

        ``what`` names the refused action in the message, e.g. "this label of c2-000355".
        """
        if n_events == len(self.events):
            return
        new = self.events[n_events:]
        moved = self._describe(new[-1])
        if len(new) > 1:
            moved = f"steps {new[0]['step']} to {new[-1]['step']} were recorded, the last: {moved}"
        raise StaleQueryError(f"The campaign moved on ({moved}), so {what} is not recorded. Look at "
                              "the candidate it suggests now (campaign.suggest()).", moved)

    @staticmethod
    def _describe(event: dict) -> str:
        """A recorded event in a few words: "step 4 labelled c2-000123"."""
        if event["type"] == "undo":
            return f"step {event['step']} took back step {event['undoes']} ({event['id']})"
        verb = {"label": "labelled", "skip": "skipped"}[event["type"]]
        return f"step {event['step']} {verb} {event['id']}"

    def undo(self, source: str = "human", n_events: int | None = None) -> pd.Series:
        """Take back the most recent label or skip that still counts, as a new ``undo`` event.

        The original line stays in the file; the candidate can then be labelled again.
        With ``n_events``, the number of events the caller has seen, an undo after
        events it has not seen is refused (:class:`StaleQueryError`).
        """
        with self._lock:
            if n_events is not None:
                self.check_current(n_events, "this undo")
            for event in reversed(self.events):
                if event["type"] in ("label", "skip") and self.counts(event):
                    break
            else:
                raise CampaignError("There is nothing to undo.")
            record = {k: event[k] for k in ("index", "id", "cell_size")}
            record.update(type="undo", strategy=None, mu=None, sigma=None, energy=None,
                          labelled_by=str(source), source=str(source),
                          reason=f"undo of step {event['step']}", undoes=event["step"])
            return self._write(record)

    def record_strategy(self, name: str) -> None:
        """Record that picks use strategy ``name`` from now on; nothing is written if it is so already."""
        with self._lock:
            if name != self.strategy:
                if self.journal is not None:
                    self.journal.append([{"type": "strategy", "strategy": name,
                                          "after_step": len(self.events), "time": now()}])
                self.strategy = name

    def record_batch(self, picks: Sequence[Query], method: str) -> list[Query]:
        """Record the picks of a batch before any is labelled; returns them bound to it (:attr:`Query.batch`).

        ``picks`` are distinct candidates, none labelled or skipped, all suggested
        in the current state; ``method`` says how they were picked (kept in the file).

        Raises
        ------
        StaleQueryError
            A pick was suggested before the latest event. Nothing is recorded.
        CampaignError
            No picks, a repeated or taken candidate, or a batch still open. Nothing is recorded.
        """
        with self._lock:
            if self.batch_book.pending():
                raise CampaignError(f"Batch {len(self.batch_book.events)} still has {len(self.pending())} picks to label; "
                                    "label or skip them first (Campaign.run_batch does so before a new batch).")
            if any(q.n_events != len(self.events) or q.batch is not None for q in picks):
                raise StaleQueryError(f"These picks were suggested before step {len(self.events)} was "
                                      "recorded, so the batch is not recorded. Suggest a batch again.")
            event = self.batch_book.new_event(picks, method, len(self.events))
            problem = line_problem(event, len(self.events), self.pool.ids) or self.batch_book.problem(
                event, self.taken())
            if problem:
                raise CampaignError(f"The batch is not recorded: {problem}. Pick each candidate once, "
                                    "among those not labelled or skipped (campaign.suggest_batch does).")
            if self.journal is not None:
                self.journal.append([event])
            self.batch_book.open(event)
            return self.pending()

    def pending(self) -> list[Query]:
        """The picks of the open batch not labelled or skipped yet, in pick order; empty when none is open."""
        return [Query(**{k: math.nan if v is None else v for k, v in p.items()},  # mu, sigma: null in the file
                      n_events=len(self.events), batch=len(self.batch_book.events))
                for p in self.batch_book.pending()]

    def _write(self, record: dict) -> pd.Series:
        event = {"type": record.pop("type"), "step": len(self.events) + 1, **record, "time": now()}
        if self.journal is not None:
            self.journal.append([event])
        self._apply(event)
        return history_frame([event]).iloc[0]

    def _apply(self, event: dict) -> None:
        self.batch_book.follow(event)
        index, step = event["index"], event["step"]
        if event["type"] == "label":
            self._skip_steps.pop(index, None)
            self._label_steps[index] = step
        elif event["type"] == "skip":
            self._skip_steps[index] = step
        else:
            undone = self.events[event["undoes"] - 1]
            book = self._label_steps if undone["type"] == "label" else self._skip_steps
            del book[undone["index"]]
        self.events.append(event)

    # -------------------------------------------------------------- records
    @property
    def history(self) -> pd.DataFrame:
        """Every event in order: what was picked, by which strategy, mu and sigma then, the label, who, when.

        Columns are :data:`almat.labels.HISTORY_COLUMNS`; ``event`` is ``"label"``, ``"skip"``
        or ``"undo"``; ``mu``, ``sigma`` and ``energy`` (of a label) are in eV/atom; ``time``
        is ISO 8601 UTC.
        """
        return history_frame(self.events)

    @property
    def labelled(self) -> pd.DataFrame:
        """The labels that count now, in the order they were given (columns :data:`LABELLED_COLUMNS`)."""
        rows = []
        for index, step in sorted(self._label_steps.items(), key=lambda kv: kv[1]):
            e = self.events[step - 1]
            rows.append({"index": index, "id": e["id"], "cell_size": e["cell_size"],
                         "energy": e["energy"], "labelled_by": e["labelled_by"], "step": step})
        return pd.DataFrame(rows, columns=LABELLED_COLUMNS)

    @property
    def skipped(self) -> pd.DataFrame:
        """Candidates skipped now, with the reasons."""
        rows = [{"index": i, "id": self.events[s - 1]["id"], "reason": self.events[s - 1]["reason"],
                 "step": s} for i, s in sorted(self._skip_steps.items(), key=lambda kv: kv[1])]
        return pd.DataFrame(rows, columns=["index", "id", "reason", "step"])

    def best(self) -> pd.Series | None:
        """The labelled candidate with the lowest energy (a row of :attr:`labelled`), or None."""
        labelled = self.labelled
        return None if labelled.empty else labelled.loc[labelled["energy"].idxmin()]

    def best_so_far(self) -> pd.DataFrame:
        """Lowest label found against the number of labels (eV/atom).

        Columns ``n_labels``, ``id``, ``energy`` (of each label) and ``best``, the running minimum.
        """
        labelled = self.labelled
        return pd.DataFrame({"n_labels": np.arange(1, len(labelled) + 1), "id": labelled["id"],
                             "energy": labelled["energy"], "best": labelled["energy"].cummin()})

    # ------------------------------------------------------------ the file
    def _replay_file(self) -> None:
        """Replay the labels file; the strategy is the one recorded last (header or strategy line)."""
        self.strategy = None
        self.journal.read(on_record=self._replay)
        header = self.journal.header
        self.strategy = self.strategy or header.get("strategy")
        if header.get("seed") != self.seed:
            warnings.warn(f"{self.path} was started with seed {header.get('seed')}; this campaign "
                          f"uses seed {self.seed} from now on.", stacklevel=4)

    def _replay(self, event: dict) -> str | None:
        """Apply one event read from the file, or say why it cannot be (one phrase)."""
        problem = line_problem(event, len(self.events), self.pool.ids)
        if problem:
            return problem
        kind, target = event["type"], event.get("undoes")
        if kind == "strategy":
            self.strategy = event["strategy"]
            return None
        if kind == "batch":
            return self.batch_book.problem(event, self.taken()) or self.batch_book.open(event)
        if kind == "label" and event["index"] in self._label_steps:
            return f"candidate {event['id']} is labelled twice without an undo"
        if kind == "undo" and (not isinstance(target, int) or not 1 <= target <= len(self.events)
                               or self.events[target - 1]["type"] == "undo"
                               or not self.counts(self.events[target - 1])):
            return f"undoes step {target!r}, which is not a label or skip that still counts"
        self._apply(event)
        return None
