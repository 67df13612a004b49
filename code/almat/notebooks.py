"""The learner's own copy of the lesson notebooks (``almat notebooks DIR``).

The wheel carries the notebooks as the package ``almat.lesson`` (``pyproject.toml`` maps the
repository's ``notebooks/`` folder there), so a learner who installed almat without a
checkout still has them. Learners work in a copy, so that the repository's notebooks stay
clean and a ``git pull`` never conflicts. A copy never replaces a file that differs from the
lesson's without being told to: that file may hold a learner's work.
"""

from __future__ import annotations

from pathlib import Path

from almat.errors import AlmatError
from almat.files import OutputError, packaged_folder, write_atomic

class NotebooksMissingError(AlmatError, FileNotFoundError):
    """This installation of almat carries no notebooks."""


class NotebookExistsError(AlmatError, FileExistsError):
    """The destination already holds a different file of a notebook's name."""


def lesson_notebooks() -> list[Path]:
    """The lesson's notebooks as this installation carries them, in episode order.

    Read with :mod:`importlib.resources` from the installed package; a source checkout (run
    with ``PYTHONPATH=code`` or installed editable) has them in its ``notebooks/`` folder.

    Raises
    ------
    NotebooksMissingError
        If there are none (an installation built without them).
    """
    folder = packaged_folder("lesson", "notebooks")
    found = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    if not found:
        raise NotebooksMissingError(
            "This installation of almat has no lesson notebooks; reinstall it from the lesson's "
            "folder or wheel (pip install .), as setup.md says.")
    return found


def copy_notebooks(folder: str | Path, overwrite: bool = False) -> list[Path]:
    """Copy the lesson's notebooks into ``folder``, created if needed.

    Parameters
    ----------
    folder
        Where the learner will work.
    overwrite
        Replace notebooks in ``folder`` that differ from the lesson's (a learner's work).

    Returns
    -------
    list of Path
        The notebooks now in ``folder``, written or already identical.

    Raises
    ------
    NotebookExistsError
        If ``folder`` holds a notebook that differs from the lesson's and ``overwrite`` is
        false; nothing is written then.
    OutputError
        If ``folder`` is a file or cannot be written to.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"'{folder}' is a file, not a folder; name a folder for the notebooks.")
    sources = {f.name: f.read_bytes() for f in lesson_notebooks()}
    targets = {name: folder / name for name in sources}
    changed = [name for name, path in targets.items()
               if path.exists() and path.read_bytes() != sources[name]]
    if changed and not overwrite:
        raise NotebookExistsError(
            f"'{folder}' already holds {', '.join(changed)}, which may hold your work; nothing "
            "was copied. Choose another folder, or pass --overwrite (overwrite=True in Python) "
            "to replace them with fresh copies.")
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in targets.items():
        if not path.exists() or name in changed:
            write_atomic(path, sources[name])
    return list(targets.values())
