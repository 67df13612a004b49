"""Writing results so that a failure never leaves a file that looks complete.

Every file almat writes goes first to a temporary file in the same folder and
is renamed over its destination only once all of its bytes are on disk. A
full disk, a crash or Ctrl-C therefore leaves the destination as it was (or
absent), never cut short. :func:`check_output_file` and
:func:`check_output_dir` look at a destination before any long computation,
so that a typo in ``--out`` costs nothing.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path

from almat.errors import AlmatError


#: Prefix of almat's own temporary entries in an output folder.
STAGING_PREFIX = ".almat-"


class OutputError(AlmatError, OSError):
    """A result cannot be written where it was asked to go."""


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return (f"The disk is full: '{path}' could not be written, and nothing was left there "
                "looking complete. Free some space (or choose another --out) and run again.")
    if exc.errno == errno.EDQUOT:
        return f"Your disk quota is used up: '{path}' could not be written. Free some space and run again."
    return f"Could not write '{path}' ({exc.strerror or exc}). Choose another place for the output."


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def write_new(path: str | Path, data: bytes | str) -> Path:
    """Create ``path`` (which must not exist) with ``data``; for files in a staging folder.

    Raises
    ------
    OutputError
        If any byte cannot be written; the partial file is removed.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, payload)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise OutputError(_describe(exc, path)) from exc
    return path


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file and one rename.

    Parameters
    ----------
    path
        Destination; its folder must exist.
    data
        The whole content; text is encoded as UTF-8.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        If any byte cannot be written (full disk, no permission, ...); the
        destination is then left as it was and no temporary file remains.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(_describe(exc, path)) from exc
    try:
        try:
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(_describe(exc, path)) from exc
        raise
    return path


def _probe_folder(folder: Path, what: str) -> None:
    """Create and remove a file in ``folder``: the only portable test that it accepts files."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".almat-probe-", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"Cannot write into '{folder}' ({exc.strerror or exc}), so {what} could not be saved. "
            "Choose a folder you can write to, e.g. one in your home folder."
        ) from exc
    os.close(fd)
    os.unlink(tmp)


def check_output_file(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Make sure a result file can be written at ``path``, before the work that produces it.

    Parameters
    ----------
    path
        The file to be written (it may exist; it will be replaced).
    inputs
        Files the command reads; writing over one of them is refused.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        If ``path`` is a folder, its folder does not exist or cannot be
        written to, or it is one of ``inputs``.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"'{path}' is a folder; give a file name for the output, e.g. '{path / 'scores.csv'}'.")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"Cannot write '{path}': '{parent}' {what}. Create the folder first or "
                          "choose another output path.")
    target = path.resolve()
    for source in inputs:
        if Path(source).resolve() == target:
            raise OutputError(f"The output '{path}' is also an input; writing it would destroy that "
                              "input. Choose another output name.")
    _probe_folder(parent, f"'{path}'")
    return path


def check_output_dir(folder: str | Path) -> Path:
    """Make sure ``folder`` is, or can be created as, a folder files can be written into.

    Nothing is created: a folder that does not exist yet is tested through
    its nearest existing parent, so a refused run leaves no empty folder.

    Raises
    ------
    OutputError
        If ``folder`` is a file, lies under a file, or cannot be written to.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"'{folder}' is a file, not a folder; choose a folder name for --out.")
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"Cannot create the folder '{folder}': '{existing}' is a file. Choose another --out.")
    _probe_folder(existing, f"'{folder}'")
    return folder


def index_names(path: str | Path, header: str) -> list[str] | None:
    """First column of an index CSV that almat wrote with ``header``; None if missing or another file."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0].strip() != header:
        return None
    return [line.split(",", 1)[0] for line in lines[1:] if line.strip()]


def earlier_output(out: str | Path, index: str, owned: set[str] | None, made_by: str) -> list[Path]:
    """Check an output folder before a run fills it; return the files of an earlier run, to be replaced.

    A folder that is empty, or holds only files that an earlier run listed in
    its index, is ours to fill; anything else in it is refused, so that no
    stale or foreign file is mixed with new results, and none is deleted.

    Parameters
    ----------
    out
        The output folder (it need not exist).
    index
        Name of the index file an earlier run wrote last, e.g. ``"index.csv"``.
    owned
        Paths relative to ``out`` (``/``-separated) that the index lists;
        None when there is no index of ``made_by`` (see :func:`index_names`).
    made_by
        The command that writes such folders, for the message, e.g. ``"almat enumerate"``.

    Returns
    -------
    list of Path
        The earlier run's files, its index last; empty for a new or empty folder.

    Raises
    ------
    OutputError
        If ``out`` cannot be a folder, or holds files that are not an earlier run's.
    """
    out = check_output_dir(out)
    if not out.exists():
        return []
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and not p.relative_to(out).parts[0].startswith(STAGING_PREFIX))
    if not files:
        return []
    foreign = [f for f in files if f != index and f not in (owned or ())]
    if owned is None or foreign:
        shown = ", ".join(foreign[:3] or files[:3])
        why = (f"has no {index} from an earlier `{made_by}`" if owned is None
               else f"holds files that its {index} does not list")
        raise OutputError(
            f"The output folder '{out}' is not empty and {why} (e.g. {shown}). almat only replaces "
            "its own earlier results, so that no stale file is mixed with new ones. Choose a new "
            "or empty folder for --out, or move those files away."
        )
    return [out / f for f in files if f != index] + [out / index]


@contextmanager
def staged_output(out: str | Path, previous: Sequence[Path] = ()) -> Iterator[Path]:
    """A hidden staging folder inside ``out`` to write a run's results into; swapped in at the end.

    When the ``with`` block ends without an error, the earlier run's files
    (``previous``, from :func:`earlier_output`) are removed and the staged
    entries are moved into ``out``. Until then the earlier results stay as they
    were; a failure (full disk, Ctrl-C) removes the staging folder and leaves no
    new file. Write the index after the block, so that it comes last.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}staging-", dir=out))
    try:
        yield staging
        for path in previous:
            path.unlink(missing_ok=True)
        for folder in sorted({p.parent for p in previous} - {out}, key=lambda p: -len(p.parts)):
            with suppress(OSError):  # only an emptied subfolder of the earlier run goes
                folder.rmdir()
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: The repository a source checkout of almat runs from (``PYTHONPATH=code``, or ``pip install -e .``).
CHECKOUT = Path(__file__).resolve().parents[2]


def packaged_folder(name: str, checkout: str) -> Path:
    """A folder of files the wheel carries inside the package as ``almat/NAME``, or a source
    checkout's ``checkout`` folder.

    ``pyproject.toml`` maps top-level folders of the repository (``data/``,
    ``notebooks/``) into the wheel as ``almat/data`` and ``almat/lesson``. A checkout
    run with ``PYTHONPATH=code``, or installed editable, has them where the repository
    keeps them: the editable import finder does not map a folder without ``__init__.py``.

    Parameters
    ----------
    name
        The folder inside the installed package, e.g. ``"data"``.
    checkout
        The folder of the repository, e.g. ``"data"``.
    """
    inside = Path(str(resources.files("almat"))) / name
    return inside if inside.is_dir() else CHECKOUT / checkout
