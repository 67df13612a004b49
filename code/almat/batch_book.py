"""The books of batches: the picks of each round, those still pending, and the pick order of labels.

A batch campaign (:mod:`almat.batches`) records the picks of a round as one
``batch`` event before any is labelled. The :class:`~almat.ledger.Ledger`
keeps these events in a :class:`BatchBook`, which says which picks of the
open batch are still to be labelled, and in what order the labels count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from almat.labels import PICK_FIELDS, json_float, now


class BatchBook:
    """The ``batch`` events of a ledger: each round's picks, those still pending, and the pick order.

    A batch is open from its event until each of its picks is labelled or
    skipped, or until another label, skip or undo comes, which closes it. The
    labels of a batch count in the order the batch picked them, whichever came
    back first, so a model fitted to them does not depend on the order of arrival.

    Attributes
    ----------
    events
        Every ``batch`` event in order, as written to the labels file.
    """

    def __init__(self):
        self.events: list[dict] = []
        self._pending: set[int] = set()  # candidates of the last batch not labelled or skipped, while open
        self._slots: dict[int, int] = {}  # candidate index -> place of its label in pick order

    def new_event(self, picks: Sequence[Any], method: str, after_step: int) -> dict:
        """The ``batch`` event of ``picks`` (objects with the :data:`PICK_FIELDS`), after step ``after_step``."""
        fields = [{k: json_float(getattr(q, k)) if k in ("mu", "sigma") else getattr(q, k)
                   for k in PICK_FIELDS} for q in picks]
        return {"type": "batch", "batch": len(self.events) + 1, "after_step": after_step,
                "method": str(method), "picks": fields, "time": now()}

    def problem(self, event: dict, taken: np.ndarray) -> str | None:
        """Why ``event`` (a well-formed ``batch`` line) cannot open the next batch (one phrase), or None.

        ``taken`` marks the candidates labelled or skipped.
        """
        number = event["batch"]
        if number != len(self.events) + 1:
            return f"batch {number!r} where batch {len(self.events) + 1} was expected"
        if self._pending:
            return f"batch {number} starts while batch {number - 1} still has {len(self._pending)} picks to label"
        seen = set()
        for p in event["picks"]:
            if taken[p["index"]] or p["index"] in seen:
                return f"batch {number} picks candidate {p['id']}, which is taken or picked twice"
            seen.add(p["index"])
        return None

    def open(self, event: dict) -> None:
        """Open the batch of ``event`` (checked by :meth:`problem`)."""
        self.events.append(event)
        self._pending = {p["index"] for p in event["picks"]}

    def pending(self) -> list[dict]:
        """The picks of the open batch not labelled or skipped yet, in pick order; empty when none is open."""
        return [p for p in self.events[-1]["picks"] if p["index"] in self._pending] if self._pending else []

    def holds(self, batch: int, index: int) -> bool:
        """Whether candidate ``index`` is a pending pick of batch number ``batch``, which is open."""
        return bool(self._pending) and self.events[-1]["batch"] == batch and index in self._pending

    def follow(self, event: dict) -> None:
        """Take note of a label, skip or undo: its place in pick order, and whether the batch stays open."""
        index = event["index"]
        in_batch = event["type"] != "undo" and index in self._pending
        if event["type"] == "label":
            batch = self.events[-1] if in_batch else None
            self._slots[index] = (batch["after_step"] + 1 + [p["index"] for p in batch["picks"]].index(index)
                                  if in_batch else event["step"])
        self._pending = self._pending - {index} if in_batch else set()

    def pick_order(self, label_steps: dict[int, int]) -> list[int]:
        """The labelled candidates (index -> step of the label that counts) in the order they were picked."""
        return sorted(label_steps, key=lambda i: (self._slots[i], label_steps[i]))

    def best_by_batch(self, labelled: pd.DataFrame, n_events: int) -> pd.DataFrame:
        """Lowest label found by the end of each batch (eV/atom): what batches cost, in whole rounds.

        ``labelled`` is :attr:`almat.ledger.Ledger.labelled`. Columns ``batch``,
        ``n_labels`` (labels that count, given up to the end of that batch) and
        ``best`` (their minimum; NaN before any label). A batch ends where the
        next one is recorded; the last ends after event ``n_events``.
        """
        ends = [b["after_step"] for b in self.events[1:]] + [n_events]
        rows = []
        for batch, end in zip(self.events, ends):
            labels = labelled.loc[labelled["step"] <= end, "energy"]
            rows.append({"batch": batch["batch"], "n_labels": len(labels),
                         "best": labels.min() if len(labels) else np.nan})
        return pd.DataFrame(rows, columns=["batch", "n_labels", "best"])
