"""Append-only JSON Lines journals: the one way almat appends to a file.

The labels file, the relaxations file of ``build-pool``, the relaxed oracle's
cache and the score cache are journals. A journal is a text file of JSON
objects, one per line:

- the first line is a **header**: ``type`` ``"header"``, the ``kind`` of
  journal, its ``format``, ``journal`` (the version of this layer) and the
  writer's identity fields (a pool's fingerprint, relaxation settings, the
  CHGNet version...). A file whose header is not what the writer expects is
  refused with one line saying what to do; it is never mixed into;
- every further line is a **record** with a ``check`` field: the first 16 hex
  digits of the SHA-256 of the record's canonical JSON (sorted keys, no
  spaces, without ``check``). A record edited by hand no longer matches it.

Every read and every append holds an exclusive lock on the file (``flock``,
which the kernel releases when a process dies; ``msvcrt.locking`` on
Windows). The header is written only while the locked file is empty, so two
writers creating one file leave one header. A record is acknowledged only
once its line is written whole, newline included, and fsync'ed; a failed or
short write is taken back (the file is cut to its former size).

One rule for a cut or bad line:

- a last line without its newline was never acknowledged: it is dropped (cut
  away under the lock, once the header has shown the file is the right one)
  with a :class:`CutLineWarning`, so that the next append never glues onto it;
- any other line that is not a valid record is refused: one line naming the
  file, the line number and what to do.

Two modes. An *exclusive* journal (the labels file) appends a line only if
the file holds exactly what this journal last read or wrote, so a second
writer is refused instead of interleaved. A *shared* journal (caches and
results) lets many processes append; each first reads what the others
appended, and a record whose key is in the file already is not written again:
the first record of a key is the one that counts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from almat.errors import AlmatError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

#: Version of this layer, the header's ``journal`` field; from 1 on every record carries ``check``.
JOURNAL_VERSION = 1
#: The field of a record that holds its checksum.
CHECK = "check"
#: Bytes at the end of what a journal read that it compares before appending (a replaced file differs).
END = 64


class JournalError(AlmatError, ValueError):
    """A file is not the journal expected (another kind, pool, settings or version), or a line is damaged."""


class JournalWriteError(JournalError, OSError):
    """A journal cannot be opened for writing, or a record could not be saved; nothing was recorded."""


class CutLineWarning(UserWarning):
    """The last line of a journal was cut short (it was never acknowledged) and was dropped."""


def checksum(record: dict) -> str:
    """First 16 hex digits of the SHA-256 of ``record``'s canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@contextmanager
def _locked(fd: int) -> Iterator[None]:
    """Hold an exclusive lock on an open file; other journals' reads and appends wait for it."""
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


def _read_from(fd: int, start: int, size: int | None = None) -> bytes:
    """``size`` bytes (all, by default) of an open file from ``start`` on."""
    os.lseek(fd, start, os.SEEK_SET)
    chunks, left = [], (1 << 62) if size is None else size
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _fsync_directory(folder: Path) -> None:
    """Make a new file's directory entry durable where the system allows it (not on Windows)."""
    if fcntl is not None:
        with suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class Journal:
    """One append-only JSON Lines file with a header, a lock, fsync and one rule for bad lines.

    Owners subclass it to set the class attributes and, where their records
    have rules, :meth:`check_record`.

    Parameters
    ----------
    path
        The file; created with its header on the first :meth:`read` or :meth:`append`.
    fields
        The writer's header fields, after ``type``, ``kind``, ``format`` and ``journal``.
    identity
        Names of the ``fields`` a file's header must match to be read or appended to.
    """

    #: The header's ``kind``.
    kind = "almat-journal"
    #: The owner's format version, written in the header; newer files are refused.
    format = 1
    #: What messages call the file.
    what = "journal"
    #: One writer (True) or many appenders, each record kept once by its :meth:`key` (False).
    exclusive = False
    #: Error raised for a file that cannot be read as this journal.
    error: type[JournalError] = JournalError
    #: Error raised when the file cannot be opened for writing or a record cannot be saved.
    write_error: type[JournalWriteError] = JournalWriteError
    #: Warning given when a cut last line is dropped.
    cut_warning: type[Warning] = CutLineWarning
    #: The end of the message about a damaged line: what to do.
    repair = "The file was edited by hand or damaged; delete that line."
    #: The end of the message about a file that cannot be written: what to do.
    elsewhere = "Choose a file in a folder you can write to."
    #: The end of an exclusive journal's refusal when another writer appended: what to do.
    on_change = "Read the file again to go on from what it holds."

    def __init__(self, path: str | os.PathLike, fields: dict, identity: Sequence[str] = ()):
        self.path = Path(path)
        self.fields = dict(fields)
        self.identity = tuple(identity)
        self.header: dict | None = None  # as read or written
        self._size = 0  # bytes of whole lines this journal has read or written
        self._lines = 0  # number of those lines
        self._end = b""  # the last bytes of those lines: a file made again ends otherwise
        self._keys: set[Hashable] = set()  # keys of a shared journal's records

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # ------------------------------------------------------------ owner's rules
    def check_header(self, header: dict) -> None:
        """Refuse a header of another kind, a newer format, or other identity fields."""
        if header.get("type") != "header" or header.get("kind") != self.kind:
            raise self.error(f"{self.path} is not {_a(self.what)} (its first line is "
                             f"{json.dumps(header)[:80]}). Choose another file.")
        self.check_versions(header)
        for name in self.identity:
            if header.get(name) != self.fields[name]:
                raise self.error(self.mismatch(name, header.get(name), self.fields[name]))

    def check_versions(self, header: dict) -> None:
        """Refuse a file written by a newer almat (format or journal version)."""
        for name, ours in (("format", self.format), ("journal", JOURNAL_VERSION)):
            theirs = header.get(name, 0)
            if not isinstance(theirs, int) or theirs > ours:
                raise self.error(f"{self.path} has {self.what} {name} {theirs!r}; this almat reads "
                                 f"up to {ours}. Update almat to read it.")

    def mismatch(self, name: str, found, expected) -> str:
        """The message for a header whose identity field ``name`` is not the expected one."""
        return (f"{self.path} was written with {name} {found!r}, not {expected!r}. Use the same "
                f"{name} to go on with it, or give another file.")

    def check_record(self, record: dict) -> str | None:
        """What is wrong with a record (one phrase), or None; called on every record read or written."""
        return None

    def key(self, record: dict) -> Hashable:
        """What makes records of a shared journal the same (the first one in the file counts)."""
        return record.get("key")

    # --------------------------------------------------------------- reading
    def read(self, create: bool = True,
             on_record: Callable[[dict], str | None] | None = None) -> list[dict]:
        """Every record of the file, in order; a missing or empty file is started with its header.

        Parameters
        ----------
        create
            Start a missing or empty file; with False, a missing file reads as empty.
        on_record
            Called on each record in file order, after :meth:`check_record` and
            before its checksum is compared; a returned phrase refuses the line
            as damaged (an owner's rules across records, such as their order).

        Returns
        -------
        list of dict
            The records without their ``check`` (a shared journal: the first of each key).
        """
        fd = self._open(create)
        if fd is None:
            return []
        try:
            with _locked(fd):
                return self._load(fd, create, on_record)
        finally:
            os.close(fd)

    def _load(self, fd: int, create: bool, on_record=None) -> list[dict]:
        self.header, self._size, self._lines, self._keys, self._end = None, 0, 0, set(), b""
        raw = _read_from(fd, 0)
        if not raw:
            if create:
                header = {"type": "header", "kind": self.kind, "format": self.format,
                          "journal": JOURNAL_VERSION, **self.fields}
                self._write(fd, [json.dumps(header, allow_nan=False)])
                self.header = header
                _fsync_directory(self.path.parent)
            return []
        lines = raw.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with its newline
        if not lines:
            raise self.error(
                f"{self.path} holds no complete line, so it is not {_a(self.what)} or it was cut "
                "short while its header was written. Delete it to start afresh, or choose another file.")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise self.error(f"{self.path} is not {_a(self.what)} (its first line is "
                             f"{lines[0][:80]!r}). Choose another file.")
        self.check_header(header)
        self.header = header
        self._lines = 1
        records = self._parse(lines[1:], on_record)
        self._size = len(raw) - len(tail)
        self._end = raw[max(0, self._size - END):self._size]
        self._drop(fd, tail)
        return records

    def _parse(self, lines: list[bytes], on_record=None) -> list[dict]:
        """Check whole lines read after the ones this journal has seen; returns their new records."""
        checked = self.header.get("journal", 0) >= 1
        records = []
        for line in lines:
            self._lines += 1
            number = self._lines
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise self.error(f"Line {number} of {self.path} is not valid JSON: {line[:80]!r}. "
                                 f"{self.repair}") from None
            if isinstance(record, dict) and record.get("type") == "header":
                raise self.damaged(number, "a second header (an earlier almat let two writers create "
                                           "the file at once)")
            if not isinstance(record, dict):
                raise self.damaged(number, f"{json.dumps(record)[:60]} is not a record")
            check = record.pop(CHECK, None)  # the owner's rules first: they name what is wrong
            problem = self.check_record(record)
            if problem is None and on_record is not None:
                problem = on_record(record)
            if problem is None and (check is not None or checked):
                problem = self._check_sum(record, check)
            if problem is not None:
                raise self.damaged(number, problem)
            if not self.exclusive:
                key = self.key(record)
                if key in self._keys:
                    continue
                self._keys.add(key)
            records.append(record)
        return records

    @staticmethod
    def _check_sum(record: dict, check) -> str | None:
        if check is None:
            return "it has no checksum, so it was not written by almat"
        try:
            if checksum(record) == check:
                return None
        except ValueError:  # NaN or infinity
            pass
        return "it was changed after almat wrote it (its checksum does not match)"

    def damaged(self, number: int, problem: str) -> JournalError:
        """The error for line ``number``: the file, the line, what is wrong and what to do."""
        return self.error(f"Line {number} of {self.path}: {problem}. {self.repair}")

    def _drop(self, fd: int, tail: bytes) -> None:
        """Cut away a last line without its newline (the one rule); the file is this journal's."""
        if not tail:
            return
        if tail.strip():
            warnings.warn(
                f"The last line of {self.path} was cut short, probably by a crash while it was "
                f"written, and is dropped: {tail[:80]!r}. Every earlier line is kept.",
                self.cut_warning, stacklevel=5)
        os.ftruncate(fd, self._size)
        os.fsync(fd)

    # --------------------------------------------------------------- writing
    def append(self, records: Sequence[dict]) -> list[dict]:
        """Append records (one write, one fsync), each as one line with its checksum.

        An exclusive journal refuses if the file changed since it last read or
        wrote it. A shared one first takes in what others appended, and writes
        only records whose key is not in the file yet.

        Returns
        -------
        list of dict
            Records new to this journal: those others appended since it last
            read the file, then those it wrote.

        Raises
        ------
        JournalWriteError
            (the class's ``write_error``) if the file cannot be opened or a line
            cannot be saved; nothing was recorded and the file holds what it held.
        """
        for record in records:
            problem = self.check_record(record)
            if problem is not None:
                raise self.error(f"Not saved to {self.path}: {problem}.")
        fd = self._open(True)
        try:
            with _locked(fd):
                new = self._catch_up(fd)
                if not self.exclusive:
                    fresh: dict[Hashable, dict] = {}
                    for record in records:
                        if self.key(record) not in self._keys:
                            fresh.setdefault(self.key(record), record)
                    records = list(fresh.values())
                if records:
                    self._write(fd, [json.dumps({**r, CHECK: checksum(r)}, allow_nan=False)
                                     for r in records])
                    self._keys.update(self.key(r) for r in records if not self.exclusive)
                return new + list(records)
        finally:
            os.close(fd)

    def _catch_up(self, fd: int) -> list[dict]:
        """Read what others appended since this journal last looked (a shared one; else refuse)."""
        size = os.fstat(fd).st_size
        if self.header is None or size < self._size \
                or _read_from(fd, self._size - len(self._end), len(self._end)) != self._end:
            # never read, or emptied, or deleted and made again
            if self.exclusive and self.header is not None:
                raise self.changed()
            return self._load(fd, True)
        if size == self._size:
            return []
        if self.exclusive:
            raise self.changed()
        data = _read_from(fd, self._size)
        lines = data.split(b"\n")
        tail = lines.pop()
        records = self._parse(lines)
        self._end = (self._end + data[:len(data) - len(tail)])[-END:]
        self._size = size - len(tail)
        self._drop(fd, tail)
        return records

    def changed(self) -> JournalError:
        """The refusal of an exclusive journal whose file was written by someone else."""
        return self.error(f"{self.path} changed since it was last read here (is another object, or "
                          f"another kernel, writing to it?). Nothing was recorded. {self.on_change}")

    def _write(self, fd: int, lines: list[str]) -> None:
        """Write whole lines with one ``write`` and fsync them; take back anything short of that."""
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        size = self._size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes could be written: "
                                            "the disk is full or the file reached a size limit")
            os.fsync(fd)
        except OSError as err:
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise self.write_error(
                f"Could not save to {self.path} ({err.strerror or err}); nothing was recorded and "
                f"the file holds what it held before. Free some disk space, or choose another "
                "file, and try again.") from err
        self._size = size + len(data)
        self._end = (self._end + data)[-END:]
        self._lines += len(lines)

    def _open(self, create: bool) -> int | None:
        """Open the file to read and append (creating it and its folder if asked); None if missing."""
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise self.write_error(f"Cannot create the folder of {self.path} ({err.strerror or err}: "
                                       f"a file may be in its way). {self.elsewhere}") from err
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0) | (os.O_CREAT * create)
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as err:
            if isinstance(err, (FileNotFoundError, NotADirectoryError)) and not create:
                return None
            if err.errno == errno.EISDIR or self.path.is_dir():
                example = self.path / f"{self.kind.removeprefix('almat-')}.jsonl"
                raise self.write_error(f"{self.path} is a folder, not a file. Give a file name, "
                                       f"e.g. {example}.") from err
            raise self.write_error(
                f"Cannot open {self.path} to write to it ({err.strerror or err}). Nothing was "
                f"recorded. {self.elsewhere}") from err


def _a(what: str) -> str:
    """``what`` with its indefinite article."""
    return f"{'an' if what[0] in 'aeiou' else 'a'} {what}"
