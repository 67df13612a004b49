"""Episodes and notebooks cannot drift apart.

The rule (also in CONTRIBUTING.md): episode ``_episodes/NN-slug.md`` is paired with
the one notebook ``notebooks/NN-*.ipynb``. Every ``{: .language-python}`` block of the
episode must appear in a single code cell of that notebook, compared line by line
after collapsing whitespace. Two kinds of block are exempt:

- blocks inside a ``{: .solution}``: the notebook leaves exercises for learners to
  complete, and the answers live in the episode;
- blocks marked ``{: .language-python .no-run}``: code that is shown but must not run
  in a workshop, such as the outdated calls of the original script or writing VASP
  input files.

An episode without a notebook (the introduction, the wrap-up) may therefore hold
only exempt Python blocks.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

import lessoncheck

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = "notebooks"


def normalised_lines(code: str) -> list[str]:
    """Code as a list of non-blank lines with runs of whitespace collapsed to one space."""
    return [" ".join(line.split()) for line in code.splitlines() if line.strip()]


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` occurs as consecutive lines of ``haystack``."""
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def runnable_blocks(episode: Path) -> list[lessoncheck.CodeBlock]:
    """The Python blocks of an episode that its notebook must contain."""
    return [
        block
        for block in lessoncheck.code_blocks(episode)
        if "language-python" in block.classes
        and "no-run" not in block.classes
        and not block.in_solution
    ]


def notebook_code_cells(notebook: Path) -> list[list[str]]:
    """Normalised lines of each code cell of a notebook."""
    data = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    for cell in data.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        cells.append(normalised_lines("".join(source) if isinstance(source, list) else source))
    return cells


def paired_notebooks(root: Path, episode: Path) -> list[Path]:
    return sorted((root / NOTEBOOK_DIR).glob(f"{episode.name[:2]}-*.ipynb"))


def drift(root: Path, episode: Path) -> list[str]:
    """Problems with one episode's pairing, as ``file:line: message``."""
    label = episode.relative_to(root)
    blocks = runnable_blocks(episode)
    notebooks = paired_notebooks(root, episode)
    if len(notebooks) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in notebooks)
        return [f"{label}:1: more than one notebook is paired with this episode: {names}"]
    if not notebooks:
        return [
            f"{label}:{b.line}: Python block, but there is no {NOTEBOOK_DIR}/"
            f"{episode.name[:2]}-*.ipynb to run it; add the notebook or mark the block "
            "{: .language-python .no-run}"
            for b in blocks
        ]
    cells = notebook_code_cells(notebooks[0])
    notebook = notebooks[0].relative_to(root)
    problems = []
    for block in blocks:
        wanted = normalised_lines(block.text)
        if not any(contains_run(cell, wanted) for cell in cells):
            problems.append(f"{label}:{block.line}: this Python block is not in any code cell "
                            f"of {notebook}; first line: {wanted[0] if wanted else '(empty)'}")
    return problems


def lesson_has_notebooks(root: Path) -> bool:
    return any((root / NOTEBOOK_DIR).glob("*.ipynb"))


# --- the real lesson -----------------------------------------------------------------------

EPISODES = lessoncheck.episode_files(ROOT)


@pytest.mark.parametrize("episode", EPISODES, ids=[p.stem for p in EPISODES])
def test_episode_code_is_in_its_notebook(episode):
    if not lesson_has_notebooks(ROOT):
        pytest.skip(f"{NOTEBOOK_DIR}/ holds no notebooks yet, so there is nothing to compare "
                    "the episodes with; this test runs as soon as the first notebook is added")
    problems = drift(ROOT, episode)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("episode", EPISODES, ids=[p.stem for p in EPISODES])
def test_every_python_block_is_valid_python(episode):
    for block in lessoncheck.code_blocks(episode):
        if "language-python" in block.classes:
            try:
                ast.parse(block.text)
            except SyntaxError as exc:
                pytest.fail(f"{episode.name}:{block.line}: not valid Python: {exc}")


def test_introduction_and_wrap_up_have_no_runnable_code():
    # These episodes are meant to have no notebook.
    for episode in (EPISODES[0], EPISODES[-1]):
        assert runnable_blocks(episode) == [], episode.name


# --- the rule catches drift ------------------------------------------------------------------

EPISODE_TEXT = """---
title: "Counting"
---
Some prose.

~~~
import almat

structure = almat.load_parent()
half = almat.set_occupancy(structure, 0.5)
~~~
{: .language-python}

~~~
print(len(orderings))
~~~
{: .language-python}

> ## Try it
>
> Count again.
>
> > ## Solution
> >
> > ~~~
> > print(almat.count_orderings(half, max_cell_size=1))
> > ~~~
> > {: .language-python}
> {: .solution}
{: .challenge}

~~~
from pymatgen import Structure
~~~
{: .language-python .no-run}

{% include links.md %}
"""

CELLS = [
    "import almat\n\nstructure = almat.load_parent()\nhalf = almat.set_occupancy(structure, 0.5)",
    "orderings = almat.enumerate_orderings(half, max_cell_size=1)\nprint(len(orderings))",
    "# Exercise: count the orderings again\n",
]


def make_pair(root: Path, cells: list[str], episode_text: str = EPISODE_TEXT,
              name: str = "02-counting") -> Path:
    (root / "_episodes").mkdir(exist_ok=True)
    (root / NOTEBOOK_DIR).mkdir(exist_ok=True)
    episode = root / "_episodes" / f"{name}.md"
    episode.write_text(episode_text, encoding="utf-8")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(notebook, root / NOTEBOOK_DIR / f"{name}.ipynb")
    return episode


def test_matching_pair_passes(tmp_path):
    episode = make_pair(tmp_path, CELLS)
    assert drift(tmp_path, episode) == []


def test_whitespace_differences_are_tolerated(tmp_path):
    cells = [CELLS[0].replace(" = ", "  =  ") + "\n\n", "  " + CELLS[1].replace("\n", "\n\n"),
             CELLS[2]]
    episode = make_pair(tmp_path, cells)
    assert drift(tmp_path, episode) == []


def test_changed_line_in_notebook_is_drift(tmp_path):
    cells = [CELLS[0].replace("0.5", "0.56"), CELLS[1], CELLS[2]]
    episode = make_pair(tmp_path, cells)
    problems = drift(tmp_path, episode)
    assert len(problems) == 1
    assert problems[0].startswith("_episodes/02-counting.md:6: this Python block is not in")


def test_changed_line_in_episode_is_drift(tmp_path):
    text = EPISODE_TEXT.replace("print(len(orderings))", "print(len(orderings), 'orderings')")
    episode = make_pair(tmp_path, CELLS, text)
    assert [p.split(":")[1] for p in drift(tmp_path, episode)] == ["14"]


def test_block_split_over_two_cells_is_drift(tmp_path):
    cells = ["import almat\nstructure = almat.load_parent()",
             "half = almat.set_occupancy(structure, 0.5)", CELLS[1]]
    episode = make_pair(tmp_path, cells)
    assert len(drift(tmp_path, episode)) == 1


def test_markdown_cell_does_not_count(tmp_path):
    episode = make_pair(tmp_path, [CELLS[0], CELLS[2]])
    notebook_path = tmp_path / NOTEBOOK_DIR / "02-counting.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell(CELLS[1]))
    nbformat.write(notebook, notebook_path)
    assert len(drift(tmp_path, episode)) == 1


def test_solutions_and_no_run_blocks_are_exempt(tmp_path):
    # CELLS holds neither the solution's count_orderings call nor the old import.
    episode = make_pair(tmp_path, CELLS)
    assert [b.line for b in runnable_blocks(episode)] == [6, 14]


def test_episode_without_notebook_may_not_have_runnable_code(tmp_path):
    episode = make_pair(tmp_path, CELLS)
    (tmp_path / NOTEBOOK_DIR / "02-counting.ipynb").unlink()
    problems = drift(tmp_path, episode)
    assert len(problems) == 2
    assert "there is no notebooks/02-*.ipynb" in problems[0]


def test_episode_without_notebook_with_only_exempt_code_passes(tmp_path):
    text = EPISODE_TEXT.replace("{: .language-python}\n\n~~~\nprint",
                                "{: .language-python .no-run}\n\n~~~\nprint")
    text = text.replace("print(len(orderings))\n~~~\n{: .language-python}",
                        "print(len(orderings))\n~~~\n{: .language-python .no-run}")
    episode = make_pair(tmp_path, [], text, name="07-wrap-up")
    (tmp_path / NOTEBOOK_DIR / "07-wrap-up.ipynb").unlink()
    assert drift(tmp_path, episode) == []


def test_two_notebooks_for_one_episode(tmp_path):
    episode = make_pair(tmp_path, CELLS)
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / NOTEBOOK_DIR / "02-other.ipynb")
    assert "more than one notebook" in drift(tmp_path, episode)[0]
