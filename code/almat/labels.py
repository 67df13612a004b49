"""Labels: what a plausible label is, and the labels file that keeps a campaign's events.

A label is an energy per atom in eV: :func:`check_label` reads one typed by a
person or returned by an oracle, and refuses what cannot be one for the pool
(:class:`LabelError`), whatever the ledger then does with it.

The labels file keeps every event of a campaign, one JSON line each, safe from crashes.
The first line is a header naming the pool and its fingerprint, the seed and
the strategy; each further line is one event of the :class:`~almat.ledger.Ledger`
(``label``, ``skip``, ``undo``, ``strategy``, ``batch``). The file is an exclusive
:class:`~almat.journal.Journal`: locked while it is created, read or appended
to, a line appended only when the file holds exactly what this campaign last
saw (a second kernel on the file is refused), and acknowledged only once it
is fsync'ed. Files of formats 1 and 2, written before checksums, still replay, and
those of formats before 5 have each event's ``label`` read as its ``energy``.
"""

from __future__ import annotations

import math
import numbers
import os
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from almat.errors import AlmatError
from almat.journal import CutLineWarning, Journal, JournalError, JournalWriteError

if TYPE_CHECKING:
    from almat.pool import Pool

#: Version of the labels file layout, written in its header (2 added ``strategy`` lines, 3 the
#: journal's ``kind`` and checksums, 4 ``batch`` lines, 5 an event's energy under ``energy``).
FILE_FORMAT = 5
#: The first format whose events name their energy ``energy``; earlier ones named it ``label``.
ENERGY_FORMAT = 5
#: Environment variable naming the folder that :func:`labels_file` uses.
LABELS_DIR_VARIABLE = "ALMAT_LABELS_DIR"
#: Columns of :attr:`almat.ledger.Ledger.history`.
HISTORY_COLUMNS = ["step", "event", "index", "id", "cell_size", "strategy", "mu", "sigma",
                   "energy", "labelled_by", "source", "reason", "undoes", "time"]
#: What a ``batch`` line keeps of each pick: the fields of a :class:`~almat.ledger.Query`
#: but its binding (``n_events``, ``batch``).
PICK_FIELDS = ("index", "id", "cell_size", "strategy", "mu", "sigma", "reason")
#: How far (eV/atom) a submitted label may lie outside the pool's reference range.
REFERENCE_MARGIN = 1.0
#: Range (eV/atom) of a label in a pool without reference energies.
#:
#: Total energies per atom of solids from DFT (PBE) or CHGNet lie between
#: about -13 eV/atom (tungsten, the most strongly bound element) and 0;
#: formation energies lie within a few eV/atom of 0. The bounds leave a margin
#: on both sides yet refuse the usual slips: meV typed for eV (-4250), a total
#: energy for an energy per atom, a stray exponent (1e308). They are fixed on
#: purpose: a window taken from the labels themselves would let the first
#: wrong label set it, and then refuse every correct value after it.
ENERGY_BOUNDS = (-15.0, 5.0)


class LabelError(AlmatError, ValueError):
    """A label was refused (not a number, outside the plausible range, or a duplicate).

    Nothing is recorded when this is raised.
    """


class LabelsFileError(JournalError):
    """A labels file does not belong to the pool, or cannot be read as a labels file."""


class LabelsFileWriteError(LabelsFileError, JournalWriteError):
    """The labels file could not be opened for writing, or a line could not be saved.

    Nothing is recorded when this is raised: the file holds what it held before.
    """


class TruncatedLabelsWarning(CutLineWarning):
    """The last line of a labels file was cut short (e.g. a crash mid-write) and was dropped."""


def now() -> str:
    """The time of an event or of a file's creation: ISO 8601, UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_energy(value: Any) -> float:
    """Read an energy per atom (eV/atom) typed by a person or returned by an oracle.

    Accepts numbers and strings such as ``"-4.25"`` (a Unicode minus sign
    is read as ``-``). Raises :class:`LabelError` for anything that is not a
    finite number.
    """
    if isinstance(value, str):
        text = value.strip().replace("\u2212", "-")
        if not text:
            raise LabelError("No value was given. Type the energy per atom in eV, for example -4.25.")
        try:
            number = float(text)
        except ValueError:
            raise LabelError(
                f"{value!r} is not a number. Type the energy per atom in eV with a decimal point, "
                "for example -4.25."
            ) from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise LabelError(
            f"A label must be a number (energy per atom in eV), not {type(value).__name__} {value!r}."
        )
    if not math.isfinite(number):
        raise LabelError(
            f"{value!r} is not a finite number. A label is an energy per atom in eV, for example "
            "-4.25; NaN and infinity cannot be learned from."
        )
    return number


def label_range(pool: Pool) -> tuple[float, float]:
    """Plausible range (eV/atom) of a label of ``pool``; values outside it are refused.

    The pool's reference energies widened by :data:`REFERENCE_MARGIN` on
    each side; without a reference, the physical :data:`ENERGY_BOUNDS`.
    """
    ref = pool.reference["energy_per_atom"].to_numpy(dtype=float)
    ref = ref[np.isfinite(ref)]
    if ref.size:
        return float(ref.min() - REFERENCE_MARGIN), float(ref.max() + REFERENCE_MARGIN)
    return ENERGY_BOUNDS


def check_label(value: Any, pool: Pool) -> float:
    """The value as an energy per atom (eV/atom), or :class:`LabelError` if it is not plausible for ``pool``."""
    value = parse_energy(value)
    low, high = label_range(pool)
    if not low <= value <= high:
        where = ("for this pool" if (low, high) != ENERGY_BOUNDS else
                 "of an energy per atom of a solid (this pool has no reference energies)")
        raise LabelError(
            f"{value:g} eV/atom is far outside the plausible range {low:.2f} to {high:.2f} "
            f"eV/atom {where}. Check the sign and the units: a label is the energy per "
            "atom in eV, not the total energy and not meV."
        )
    return value


def json_float(x: float | None) -> float | None:
    """A number as the labels file writes it: ``None`` (JSON null) for a missing or non-finite one."""
    return None if x is None or not math.isfinite(x) else float(x)


def history_frame(events: list[dict]) -> pd.DataFrame:
    """History table of event lines (the file's ``type`` becomes the ``event`` column; columns :data:`HISTORY_COLUMNS`)."""
    rows = [{("event" if k == "type" else k): v for k, v in e.items()} for e in events]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS, index=[e["step"] - 1 for e in events])
    for col in ("mu", "sigma", "energy"):
        frame[col] = pd.to_numeric(frame[col])
    frame["undoes"] = frame["undoes"].astype("Int64")
    return frame


def line_problem(event: dict, n_events: int, ids: Sequence[str]) -> str | None:
    """What makes an event line of a labels file unreadable in itself (one phrase), or None.

    Checks its type, its place after the ``n_events`` events read before it,
    that its candidates are those of the pool (named by ``ids``) and that a
    label is a number. What the line means for the record (a candidate
    labelled twice, an undo of what does not count) is the ledger's to check.
    """
    kind = event.get("type")
    if kind == "strategy":
        named = isinstance(event.get("strategy"), str) and event["strategy"]
        return None if named else "a strategy change that names no strategy"
    if kind == "batch":
        picks = event.get("picks")
        if event.get("after_step") != n_events:
            return f"batch {event.get('batch')!r} after step {event.get('after_step')!r}, not {n_events}"
        if not isinstance(picks, list) or not picks \
                or not all(isinstance(p, dict) and set(PICK_FIELDS) <= set(p) for p in picks):
            return f"batch {event.get('batch')!r} has no list of picks with {', '.join(PICK_FIELDS)}"
        candidates = [(p["index"], p["id"]) for p in picks]
    elif kind in ("label", "skip", "undo"):
        if event.get("step") != n_events + 1:
            return f"step {event.get('step')} where {n_events + 1} was expected"
        candidates = [(event.get("index"), event.get("id"))]
    else:
        return "not a label, skip, undo, strategy or batch event"
    for index, name in candidates:
        if not isinstance(index, int) or not 0 <= index < len(ids) or ids[index] != name:
            return f"candidate {name!r} at index {index!r} is not in this pool"
    if kind == "label":
        try:
            parse_energy(event.get("energy"))
        except LabelError as err:
            return str(err)
    return None


def labels_file(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Where a named campaign keeps its labels: ``labels/NAME.jsonl`` next to the notebook.

    Parameters
    ----------
    name
        A short name such as ``"06-labeling-loop"``.
    directory
        The folder; by default ``$ALMAT_LABELS_DIR`` if set (the tests point it
        at a fresh temporary folder), else ``labels``.
    """
    folder = Path(directory or os.environ.get(LABELS_DIR_VARIABLE) or "labels")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.jsonl"


class LabelsJournal(Journal):
    """The labels file of ``pool``: an exclusive journal whose header names the pool's fingerprint."""

    kind, format, what, exclusive = "almat-labels", FILE_FORMAT, "labels file", True
    error, write_error, cut_warning = LabelsFileError, LabelsFileWriteError, TruncatedLabelsWarning
    repair = "The file was edited by hand or damaged; fix or remove that line."
    elsewhere = ("Choose a labels file in a folder you can write to, e.g. "
                 "almat.labels_file(name, directory=...).")
    on_change = "Create the campaign again from the file to go on from what it holds."

    def __init__(self, path: str | os.PathLike, pool: Pool, seed: int = 0, strategy: str | None = None):
        from almat import __version__

        self.pool = pool
        super().__init__(path, {"pool": pool.name, "fingerprint": pool.fingerprint,
                                "n_candidates": len(pool), "created": now(), "almat": __version__,
                                "seed": seed, "strategy": strategy})

    def check_header(self, header: dict) -> None:
        """Refuse another pool's file, a newer format, or no valid strategy (formats 1-2 have no kind)."""
        path, pool = self.path, self.pool
        if header.get("type") != "header" or header.get("kind", self.kind) != self.kind:
            raise self.error(f"{path} does not start with a labels-file header; it is not a "
                             "campaign's labels file. Choose another labels file.")
        if header.get("fingerprint") not in pool.accepted_fingerprints:
            other = path.with_name(f"{path.stem}-{pool.name}-{pool.fingerprint[:8]}{path.suffix}")
            raise self.error(
                f"{path} holds labels for pool {header.get('pool')!r} (fingerprint "
                f"{header.get('fingerprint')}), but this campaign's pool is {pool.name!r} (fingerprint "
                f"{pool.fingerprint}). Labels of one pool mean nothing for another. Use a new file for "
                f"this pool, e.g. ledger_path={str(other)!r}, or load the pool the file was made for.")
        self.check_versions(header)
        strategy = header.get("strategy")
        if strategy is not None and not (isinstance(strategy, str) and strategy):
            raise self.error(f"The header of {path} names no valid strategy: {strategy!r}.")

    def read(self, create: bool = True, on_record=None) -> list[dict]:
        """The file's events (see :meth:`~almat.journal.Journal.read`), each naming its energy ``energy``.

        Files of formats before :data:`ENERGY_FORMAT` name it ``label``: their
        events are read with the key renamed, on the checked line as it was written.
        """
        def renamed(record: dict) -> dict:
            if "label" in record and self.header.get("format", 1) < ENERGY_FORMAT:
                return {("energy" if key == "label" else key): value for key, value in record.items()}
            return record

        check = None if on_record is None else (lambda record: on_record(renamed(record)))
        return [renamed(record) for record in super().read(create, check)]
