"""The ledger of a campaign: every label, skip and undo, in memory and in a labels file.

A :class:`Ledger` records what happened to the candidates of one pool. It
knows the pool (names, fingerprint, reference energies) but nothing of
surrogates or strategies' arithmetic: the campaign decides what to label and
hands over a :class:`Query` (the candidate, and how and why it was picked);
the ledger keeps the record and says which labels count.

Labels file
-----------
With a ``path`` every event is appended to a JSON Lines file the moment it
happens, so that nothing is lost when the kernel dies. The first line is a
header naming the pool and its fingerprint; each further line is one event:

``label``
    a candidate got an energy (eV/atom) from an oracle or a person;
``skip``
    the oracle refused the candidate, with a reason;
``undo``
    the label or skip of an earlier step (``undoes``) no longer counts;
``strategy``
    picks use another query strategy from now on (not a step).

Nothing is ever rewritten: a wrong label is undone by a new line, not
erased. A ledger created again with the same file replays the events.

Every write happens under an exclusive lock on the file (``flock``, released
by the kernel even when the process is killed): the header is written only
while the file is still empty, and a line is appended only when the file
holds exactly what this ledger last saw, so two kernels on one file never
interleave: the second one is refused. A line is acknowledged only after it
was written whole and fsync'ed; a failed write is taken back.
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from almat.errors import AlmatError

if TYPE_CHECKING:
    from almat.pool import Pool

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

#: Version of the labels file layout, written in its header (2 added ``strategy`` lines).
FILE_FORMAT = 2
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
#: Columns of :attr:`Ledger.history`.
HISTORY_COLUMNS = ["step", "event", "index", "id", "cell_size", "strategy", "mu", "sigma",
                   "label", "labelled_by", "source", "reason", "undoes", "time"]
#: Columns of :attr:`Ledger.labelled`.
LABELLED_COLUMNS = ["index", "id", "cell_size", "label", "labelled_by", "step"]
#: Environment variable naming the folder that :func:`labels_file` uses.
LABELS_DIR_VARIABLE = "ALMAT_LABELS_DIR"


class CampaignError(AlmatError, ValueError):
    """A campaign (or its ledger) cannot do what was asked in its current state."""


class LabelError(CampaignError):
    """A label was refused (not a number, outside the plausible range, or a duplicate).

    Nothing is recorded when this is raised.
    """


class LabelsFileError(CampaignError):
    """A labels file does not belong to the pool, or cannot be read as a labels file."""


class LabelsFileWriteError(LabelsFileError, OSError):
    """The labels file could not be opened for writing, or a line could not be saved.

    Nothing is recorded when this is raised: the file holds what it held before.
    """


class TruncatedLabelsWarning(UserWarning):
    """The last line of a labels file was cut short (e.g. a crash mid-write) and was dropped."""


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


def history_frame(events: list[dict]) -> pd.DataFrame:
    """History table of events (the file's ``type`` becomes the ``event`` column)."""
    rows = [{("event" if k == "type" else k): v for k, v in e.items()} for e in events]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS, index=[e["step"] - 1 for e in events])
    for col in ("mu", "sigma", "label"):
        frame[col] = pd.to_numeric(frame[col])
    frame["undoes"] = frame["undoes"].astype("Int64")
    return frame


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_float(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@contextmanager
def _locked(fd: int) -> Iterator[None]:
    """Hold an exclusive lock on an open file; other ledgers' reads and writes wait for it.

    ``flock`` on POSIX, which the kernel releases when the process dies, so a
    kernel killed mid-write leaves no stale lock; ``msvcrt.locking`` of the
    first byte on Windows.
    """
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_directory(folder: Path) -> None:
    """Make a new file's directory entry durable, where the system allows it.

    Windows cannot open a directory, and some file systems refuse to fsync
    one (EINVAL); the file's own lines are fsync'ed all the same.
    """
    if fcntl is not None:
        with suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


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
    """

    index: int
    id: str
    cell_size: int
    mu: float
    sigma: float
    strategy: str
    reason: str


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

    Raises
    ------
    LabelsFileWriteError
        The file cannot be opened for writing (a read-only file or folder):
        raised here, before any label is computed, not after.
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
        self._file_size = 0  # bytes of the file as this ledger last saw it
        if self.path is not None:
            self._open()

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
        return np.array([self.events[s - 1]["label"] for s in self._label_steps.values()], dtype=float)

    def taken(self) -> np.ndarray:
        """Boolean mask over the pool: labelled or skipped."""
        mask = np.zeros(len(self.pool), dtype=bool)
        mask[list(self._label_steps)] = True
        mask[list(self._skip_steps)] = True
        return mask

    def counts(self, event: dict) -> bool:
        """Whether a label or skip event still counts (it was not undone or replaced)."""
        book = self._label_steps if event["type"] == "label" else self._skip_steps
        return book.get(event["index"]) == event["step"]

    def label_range(self) -> tuple[float, float]:
        """Plausible range (eV/atom) of a label; values outside it are refused.

        The pool's reference energies widened by :data:`REFERENCE_MARGIN` on
        each side; without a reference, the physical :data:`ENERGY_BOUNDS`.
        """
        ref = self.pool.reference["energy_per_atom"].to_numpy(dtype=float)
        ref = ref[np.isfinite(ref)]
        if ref.size:
            return float(ref.min() - REFERENCE_MARGIN), float(ref.max() + REFERENCE_MARGIN)
        return ENERGY_BOUNDS

    def check_label(self, value: Any) -> float:
        """The value as an energy per atom (eV/atom), or :class:`LabelError` if it is not plausible."""
        value = parse_energy(value)
        low, high = self.label_range()
        if not low <= value <= high:
            where = ("for this pool" if (low, high) != ENERGY_BOUNDS else
                     "of an energy per atom of a solid (this pool has no reference energies)")
            raise LabelError(
                f"{value:g} eV/atom is far outside the plausible range {low:.2f} to {high:.2f} "
                f"eV/atom {where}. Check the sign and the units: a label is the energy per "
                "atom in eV, not the total energy and not meV."
            )
        return value

    # ------------------------------------------------------------- recording
    def add(self, kind: str, query: Query, *, by: str, source: str, label: Any = None,
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
        label
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
        CampaignError
            A skip of a candidate that is labelled or skipped already.
        """
        if query.index in self._label_steps:
            step = self._label_steps[query.index]
            if kind == "label":
                raise LabelError(
                    f"Candidate {query.id} already has the label {self.events[step - 1]['label']} "
                    f"eV/atom (step {step}). Labels are never overwritten: undo it first if it was wrong."
                )
            raise CampaignError(f"Candidate {query.id} is labelled; undo the label before skipping it.")
        if kind == "skip" and query.index in self._skip_steps:
            raise CampaignError(f"Candidate {query.id} is skipped already.")
        return self._write({"type": kind, "index": query.index, "id": query.id,
                            "cell_size": query.cell_size, "strategy": query.strategy,
                            "mu": _json_float(query.mu), "sigma": _json_float(query.sigma),
                            "label": self.check_label(label) if kind == "label" else None,
                            "labelled_by": by, "source": source,
                            "reason": reason if kind == "skip" else query.reason, "undoes": None})

    def undo(self, source: str = "human") -> pd.Series:
        """Take back the most recent label or skip that still counts, as a new ``undo`` event.

        The original line stays in the file; the candidate can then be labelled again.
        """
        for event in reversed(self.events):
            if event["type"] in ("label", "skip") and self.counts(event):
                break
        else:
            raise CampaignError("There is nothing to undo.")
        record = {k: event[k] for k in ("index", "id", "cell_size")}
        record.update(type="undo", strategy=None, mu=None, sigma=None, label=None,
                      labelled_by=str(source), source=str(source), reason=f"undo of step {event['step']}",
                      undoes=event["step"])
        return self._write(record)

    def record_strategy(self, name: str) -> None:
        """Record that picks use strategy ``name`` from now on; nothing is written if it is so already."""
        if name != self.strategy:
            if self.path is not None:
                self._append_line({"type": "strategy", "strategy": name, "after_step": len(self.events),
                                   "time": _now()})
            self.strategy = name

    def _write(self, record: dict) -> pd.Series:
        event = {"type": record.pop("type"), "step": len(self.events) + 1, **record, "time": _now()}
        if self.path is not None:
            self._append_line(event)
        self._apply(event)
        return history_frame([event]).iloc[0]

    def _apply(self, event: dict) -> None:
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

        Columns are :data:`HISTORY_COLUMNS`; ``event`` is ``"label"``, ``"skip"``
        or ``"undo"``; ``mu``, ``sigma`` and ``label`` are in eV/atom; ``time``
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
                         "label": e["label"], "labelled_by": e["labelled_by"], "step": step})
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
        return None if labelled.empty else labelled.loc[labelled["label"].idxmin()]

    def best_so_far(self) -> pd.DataFrame:
        """Lowest label found against the number of labels (eV/atom).

        Columns ``n_labels``, ``id``, ``label`` and ``best``, the running minimum.
        """
        labelled = self.labelled
        return pd.DataFrame({"n_labels": np.arange(1, len(labelled) + 1), "id": labelled["id"],
                             "label": labelled["label"], "best": labelled["label"].cummin()})

    # ------------------------------------------------------------ the file
    def _header(self) -> dict:
        from almat import __version__

        return {"type": "header", "format": FILE_FORMAT, "pool": self.pool.name,
                "fingerprint": self.pool.fingerprint, "n_candidates": len(self.pool),
                "created": _now(), "almat": __version__, "seed": self.seed, "strategy": self.strategy}

    def _open_fd(self, flags: int) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0) | flags, 0o644)
        except OSError as err:
            raise LabelsFileWriteError(
                f"Cannot open {self.path} to record labels in it ({err.strerror or err}). Nothing was "
                "recorded. Choose a labels file in a folder you can write to, e.g. "
                "almat.labels_file(name, directory=...)."
            ) from err

    def _append_line(self, record: dict) -> None:
        """Append one JSON line under the file's lock, with a single ``write`` call, then fsync."""
        fd = self._open_fd(0)
        try:
            with _locked(fd):
                self._write_line(fd, record)
        finally:
            os.close(fd)

    def _write_line(self, fd: int, record: dict) -> None:
        """Write a line to a locked file that must hold exactly what this ledger last saw.

        A failed or short write, or a failed fsync, is taken back (the file is
        cut to its former size) and raised: a line is acknowledged only once
        it is on disk.
        """
        data = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
        size = os.fstat(fd).st_size
        if size != self._file_size:
            raise LabelsFileError(
                f"{self.path} changed since this campaign last wrote to it (is another "
                "Campaign object, or another kernel, using the same file?). Nothing was recorded. "
                "Create the campaign again from the file to continue from what it holds."
            )
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes could be written")
            os.fsync(fd)
        except OSError as err:
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise LabelsFileWriteError(
                f"Could not save to {self.path} ({err.strerror or err}); nothing was recorded and the "
                "file holds what it held before. Free some disk space, or choose another labels "
                "file, and try again."
            ) from err
        self._file_size = size + len(data)

    def _open(self) -> None:
        """Start the labels file, or replay the one that exists, holding the file's lock throughout.

        Creation is exclusive: the header is written only while the lock is
        held and the file is still empty, so two kernels that create the same
        file at once write one header between them, and the second replays it.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LabelsFileWriteError(
                f"Cannot create the folder of {self.path} ({err.strerror or err}). Choose a labels "
                "file in a folder you can write to."
            ) from err
        fd = self._open_fd(os.O_CREAT)
        try:
            with _locked(fd):
                raw = _read_all(fd)
                if raw:
                    self._replay_file(fd, raw)
                else:
                    self._write_line(fd, self._header())
                    _fsync_directory(self.path.parent)
        finally:
            os.close(fd)

    def _replay_file(self, fd: int, raw: bytes) -> None:
        """Replay a file's lines; repair only an unfinished last line, and only in this pool's file.

        Each line is written whole with its newline, so only a last line
        without a newline can have been cut by a crash: it is dropped (with a
        warning) if it is not valid JSON, and completed with its newline if it
        is. Any other line that is not valid JSON is an error, and the file is
        left as it is.
        """
        path = self.path
        lines = raw.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline, else its unfinished last line
        records = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except ValueError:
                    raise LabelsFileError(
                        f"Line {number} of {path} is not valid JSON: {line[:80]!r}. The file was "
                        "edited by hand or damaged; fix or remove that line."
                    ) from None
        cut = False
        if tail.strip():
            try:
                records.append((len(lines) + 1, json.loads(tail)))
            except ValueError:
                cut = True
        if not records:
            raise LabelsFileError(
                f"{path} holds no complete line, so it is not a labels file or it was cut short "
                "while its header was written. Delete it to start afresh, or choose another labels file."
            )
        self._check_header(records[0][1])
        for number, event in records[1:]:
            self._replay(number, event)
        self._file_size = len(raw)
        # Only a file that has proved to be this pool's labels file is touched.
        if cut:
            warnings.warn(
                f"The last line of {path} was cut short, probably by a crash while it was written, "
                f"and is dropped: {tail[:80]!r}. Every earlier line is kept.",
                TruncatedLabelsWarning, stacklevel=5)
            os.ftruncate(fd, len(raw) - len(tail))
            self._file_size = len(raw) - len(tail)
        elif tail:
            os.write(fd, b"\n")
            self._file_size += 1
        if cut or tail:
            os.fsync(fd)

    def _check_header(self, header: dict) -> None:
        path = self.path
        if not isinstance(header, dict) or header.get("type") != "header":
            raise LabelsFileError(
                f"{path} does not start with a labels-file header; it is not a campaign's labels "
                "file. Choose another labels file."
            )
        if header.get("fingerprint") not in self.pool.accepted_fingerprints:
            other = path.with_name(f"{path.stem}-{self.pool.name}-{self.pool.fingerprint[:8]}"
                                   f"{path.suffix}")
            raise LabelsFileError(
                f"{path} holds labels for pool {header.get('pool')!r} (fingerprint "
                f"{header.get('fingerprint')}), but this campaign's pool is {self.pool.name!r} "
                f"(fingerprint {self.pool.fingerprint}). Labels of one pool mean nothing for another. "
                f"Use a new file for this pool, e.g. ledger_path={str(other)!r}, or load the pool "
                "the file was made for."
            )
        if not isinstance(header.get("format", 1), int) or header.get("format", 1) > FILE_FORMAT:
            raise LabelsFileError(
                f"{path} has labels-file format {header.get('format')!r}; this almat reads formats up "
                f"to {FILE_FORMAT}. Update almat to read it."
            )
        strategy = header.get("strategy")
        if strategy is not None and not (isinstance(strategy, str) and strategy):
            raise LabelsFileError(f"The header of {path} names no valid strategy: {strategy!r}.")
        self.strategy = strategy
        if header.get("seed") != self.seed:
            warnings.warn(f"{path} was started with seed {header.get('seed')}; this campaign uses "
                          f"seed {self.seed} from now on.", stacklevel=6)

    def _replay(self, number: int, event: dict) -> None:
        def bad(why: str) -> LabelsFileError:
            return LabelsFileError(f"Line {number} of {self.path}: {why}. The file was "
                                   "edited by hand or damaged; fix or remove that line.")

        if isinstance(event, dict) and event.get("type") == "strategy":
            if not isinstance(event.get("strategy"), str) or not event["strategy"]:
                raise bad("a strategy change that names no strategy")
            self.strategy = event["strategy"]
            return
        if not isinstance(event, dict) or event.get("type") not in ("label", "skip", "undo"):
            raise bad("not a label, skip, undo or strategy event")
        if event.get("step") != len(self.events) + 1:
            raise bad(f"step {event.get('step')} where {len(self.events) + 1} was expected")
        index = event.get("index")
        if not isinstance(index, int) or not 0 <= index < len(self.pool) \
                or self.pool.ids[index] != event.get("id"):
            raise bad(f"candidate {event.get('id')!r} at index {index!r} is not in this pool")
        if event["type"] == "label":
            try:
                parse_energy(event.get("label"))
            except LabelError as err:
                raise bad(str(err)) from None
            if index in self._label_steps:
                raise bad(f"candidate {event['id']} is labelled twice without an undo")
        if event["type"] == "undo":
            target = event.get("undoes")
            if not isinstance(target, int) or not 1 <= target <= len(self.events) \
                    or self.events[target - 1]["type"] == "undo" \
                    or not self.counts(self.events[target - 1]):
                raise bad(f"undoes step {target!r}, which is not a label or skip that still counts")
        self._apply(event)
