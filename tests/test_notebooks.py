"""``almat notebooks DIR``: the learner's own copy, which never replaces their work unasked.

These run from the checkout (``PYTHONPATH=code``), where the notebooks come from the
repository's ``notebooks/``; ``tests/test_install.py`` runs the same command from a wheel
installed outside the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from almat.cli import main
from almat.files import OutputError
from almat.notebooks import NotebookExistsError, copy_notebooks, lesson_notebooks

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = sorted((ROOT / "notebooks").glob("*.ipynb"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_lesson_notebooks_are_the_repositorys():
    assert [f.name for f in lesson_notebooks()] == [p.name for p in REPOSITORY]
    assert len(REPOSITORY) == 6


def test_copies_every_notebook_into_a_new_folder(tmp_path):
    folder = tmp_path / "work" / "lesson"
    copied = copy_notebooks(folder)
    assert copied == [folder / p.name for p in REPOSITORY]
    assert snapshot(folder) == {p.name: p.read_bytes() for p in REPOSITORY}


def test_copying_again_over_identical_copies_is_fine(tmp_path):
    copy_notebooks(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    copy_notebooks(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # nothing rewritten


def test_a_learners_work_is_never_replaced_unasked(tmp_path):
    copy_notebooks(tmp_path)
    (tmp_path / "03-scoring.ipynb").write_text("my work", encoding="utf-8")
    (tmp_path / "02-enumeration.ipynb").unlink()
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(tmp_path)
    with pytest.raises(NotebookExistsError) as refused:
        copy_notebooks(tmp_path)
    assert str(refused.value) == (
        f"'{tmp_path}' already holds 03-scoring.ipynb, which may hold your work; nothing was "
        "copied. Choose another folder, or pass --overwrite (overwrite=True in Python) to "
        "replace them with fresh copies.")
    assert snapshot(tmp_path) == before  # not even the missing notebook was written


def test_overwrite_replaces_only_what_differs(tmp_path):
    copy_notebooks(tmp_path)
    (tmp_path / "03-scoring.ipynb").write_text("my work", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    copy_notebooks(tmp_path, overwrite=True)
    assert (tmp_path / "03-scoring.ipynb").read_bytes() == (ROOT / "notebooks" /
                                                            "03-scoring.ipynb").read_bytes()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "lesson"
    path.write_text("", encoding="utf-8")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        copy_notebooks(path)


def test_command_line(tmp_path, capsys):
    folder = tmp_path / "lesson"
    assert main(["notebooks", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"6 lesson notebooks in {folder}: 02-enumeration.ipynb, " in out
    assert f"jupyter lab {folder}" in out
    (folder / "06-labeling-loop.ipynb").write_text("my labels", encoding="utf-8")
    assert main(["notebooks", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("almat notebooks: ")
    assert "06-labeling-loop.ipynb" in err and "--overwrite" in err
    assert (folder / "06-labeling-loop.ipynb").read_text(encoding="utf-8") == "my labels"
    assert main(["notebooks", str(folder), "--overwrite"]) == 0
