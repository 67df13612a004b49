"""The labels file: where a campaign's events are kept, one JSON line each, safe from crashes.

The first line is a header naming the pool and its fingerprint, the seed and
the strategy; each further line is one event of the :class:`~almat.ledger.Ledger`
(``label``, ``skip``, ``undo``, ``strategy``). The file is an exclusive
:class:`~almat.journal.Journal`: locked while it is created, read or appended
to, a line appended only when the file holds exactly what this campaign last
saw (a second kernel on the file is refused), and acknowledged only once it
is fsync'ed. Files of formats 1 and 2, written before checksums, still replay.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from almat.journal import CutLineWarning, Journal, JournalError, JournalWriteError

if TYPE_CHECKING:
    from almat.pool import Pool

#: Version of the labels file layout, written in its header (2 added ``strategy`` lines, 3 the
#: journal's ``kind`` and checksums).
FILE_FORMAT = 3
#: Environment variable naming the folder that :func:`labels_file` uses.
LABELS_DIR_VARIABLE = "ALMAT_LABELS_DIR"


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
