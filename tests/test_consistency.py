"""Episodes, notebooks and figures cannot drift apart.

The episode ``_episodes/NN-slug.md`` is the one source of ``notebooks/NN-slug.ipynb`` and of
its figures ``fig/NN-slug-K.png``: ``scripts/make_notebooks.py`` builds the notebook from the
episode, runs it and writes the outputs back into the episode (see its docstring for which
blocks become cells). Its check, run here without a kernel, fails in both directions:

- a notebook edited after it was generated (its cells or outputs no longer match the digest
  stored in its metadata): move the edit into the episode and regenerate;
- an episode whose code, output blocks or image lines no longer match its notebook: it was
  edited without regenerating.
"""

from __future__ import annotations

import ast
import base64
import uuid
from pathlib import Path

import nbformat
import pytest

import lessoncheck
from notebook_script import load_make_notebooks

ROOT = Path(__file__).resolve().parents[1]

make_notebooks = load_make_notebooks()

# --- the real lesson -----------------------------------------------------------------------

EPISODES = lessoncheck.episode_files(ROOT)


@pytest.mark.parametrize("episode", EPISODES, ids=[p.stem for p in EPISODES])
def test_episode_notebook_and_figures_agree(episode):
    problems = make_notebooks.check_episode(ROOT, episode)
    assert problems == [], "\n".join(problems)


def test_every_notebook_has_an_episode():
    problems = make_notebooks.check_lesson(ROOT)
    assert problems == [], "\n".join(problems)


def test_hands_on_episodes_have_notebooks():
    with_notebooks = [e.name[:2] for e in EPISODES if make_notebooks.has_notebook(e)]
    assert with_notebooks == ["02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("episode", EPISODES, ids=[p.stem for p in EPISODES])
def test_every_python_block_is_valid_python(episode):
    for block in lessoncheck.code_blocks(episode):
        if "language-python" in block.classes:
            try:
                ast.parse(block.text)
            except SyntaxError as exc:
                pytest.fail(f"{episode.name}:{block.line}: not valid Python: {exc}")


# --- a tiny episode and its notebook ---------------------------------------------------------

EPISODE_TEXT = """---
title: "Counting"
---
## Setting up

Some prose.

~~~
import almat

half = almat.set_occupancy(almat.load_parent(), 0.5)
print(half.composition)
~~~
{: .language-python}

~~~
an old output, replaced when the notebook runs
~~~
{: .output}

More prose.

~~~
app = almat.LabelingApp(campaign)
app
~~~
{: .language-python .nbval-ignore-output}

~~~
plot(half)
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
PRINTED = "Li+6 P5+1 S2-5 Cl-1   \n"  # trailing spaces, as pandas prints them
PNG = b"\x89PNG\r\n\x1a\n not really a picture"


def fake_run(nb: nbformat.NotebookNode, printed: str = PRINTED) -> None:
    """Give the notebook the outputs a kernel would, without starting one."""
    new = nbformat.v4.new_output
    for cell in nb.cells:
        if cell.source.startswith("import almat"):
            cell.outputs = [new("stream", name="stdout", text=printed[:4]),
                            new("stream", name="stdout", text=printed[4:])]
        elif cell.source.startswith("app ="):
            box, label = uuid.uuid4().hex, uuid.uuid4().hex  # random, as a kernel makes them
            cell.outputs = [new("execute_result", execution_count=2, data={
                "text/plain": "VBox(children=(...))",
                make_notebooks.WIDGET_VIEW: {"model_id": box}})]
            nb.metadata["widgets"] = {make_notebooks.WIDGET_STATE: {"state": {
                label: {"state": {"value": "next"}},
                box: {"state": {"children": [f"IPY_MODEL_{label}"]}}}}}
        elif cell.source.startswith("plot("):
            cell.outputs = [new("display_data", data={
                "image/png": base64.b64encode(PNG).decode(), "text/plain": "<Figure>"})]


def generate(root: Path, text: str | None = EPISODE_TEXT, printed: str = PRINTED) -> Path:
    """Write (or keep) the episode and generate its notebook and figure, as the script does."""
    episode = root / "_episodes" / "02-counting.md"
    episode.parent.mkdir(exist_ok=True)
    (root / "notebooks").mkdir(exist_ok=True)
    if text is not None:
        episode.write_text(text, encoding="utf-8")
    nb = make_notebooks.build(episode)
    fake_run(nb, printed)
    make_notebooks.save(root, episode, nb)
    return episode


def notebook_path(root: Path) -> Path:
    return root / "notebooks" / "02-counting.ipynb"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line == text)


def test_cells_come_from_the_episode(tmp_path):
    generate(tmp_path)
    nb = nbformat.read(notebook_path(tmp_path), as_version=4)
    assert [(c.cell_type, c.source.splitlines()[0]) for c in nb.cells] == [
        ("markdown", "# 2. Counting"),
        ("markdown", "## Setting up"),
        ("code", "import almat"),
        ("code", "app = almat.LabelingApp(campaign)"),
        ("code", "plot(half)"),
        ("code", "# Challenge: Try it"),
    ]  # neither the solution nor the .no-run block
    assert nb.cells[3].metadata["tags"] == ["nbval-ignore-output"]
    assert [c.id for c in nb.cells] == [f"02-{i:02d}" for i in range(6)]


def test_outputs_and_figures_are_written_back(tmp_path):
    episode = generate(tmp_path)
    text = episode.read_text(encoding="utf-8")
    assert "an old output" not in text
    assert "print(half.composition)\n~~~\n{: .language-python}\n\n~~~\nLi+6 P5+1 S2-5 Cl-1\n~~~\n" \
           "{: .output}\n\nMore prose." in text
    assert "VBox" not in text  # a widget has no text output to show
    assert "plot(half)\n~~~\n{: .language-python}\n\n" \
           "![TODO: describe this figure](../fig/02-counting-1.png)\n\n> ## Try" in text
    assert (tmp_path / "fig" / "02-counting-1.png").read_bytes() == PNG
    assert make_notebooks.check_episode(tmp_path, episode) == []


def test_todo_alt_text_is_reported_by_the_lesson_checker(tmp_path):
    episode = generate(tmp_path)
    problems = lessoncheck.check_file(episode, set(), "e.md")
    line = line_of(episode, "![TODO: describe this figure](../fig/02-counting-1.png)")
    assert problems == [f"e.md:{line}: image has no alt text; say what it shows in ![...]"]


def test_regenerating_keeps_the_alt_text_and_is_byte_identical(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "TODO: describe this figure", "Half of the Li sites filled")
    before = episode.read_bytes(), notebook_path(tmp_path).read_bytes()
    generate(tmp_path, text=None)
    assert (episode.read_bytes(), notebook_path(tmp_path).read_bytes()) == before
    assert make_notebooks.check_episode(tmp_path, episode) == []


def test_an_edited_notebook_cell_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(notebook_path(tmp_path), "half = almat.set_occupancy(almat.load_parent(), 0.5)",
         "half = almat.set_occupancy(almat.load_parent(), 0.25)")
    line = line_of(episode, "import almat")
    assert make_notebooks.check_episode(tmp_path, episode) == [
        f"notebooks/02-counting.ipynb:1: cell 3 was edited in the notebook after it was "
        f"generated; move your edit into _episodes/02-counting.md:{line - 1} and run "
        "`python scripts/make_notebooks.py 02`"]


def test_an_edited_notebook_output_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(notebook_path(tmp_path), "S2-5", "S2-6")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "cell 3 was edited in the notebook" in problem


def test_a_cell_added_to_the_notebook_is_drift(tmp_path):
    episode = generate(tmp_path)
    nb = nbformat.read(notebook_path(tmp_path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('mine')"))
    nbformat.write(nb, notebook_path(tmp_path))
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "cell 7 was edited in the notebook" in problem


def test_edited_episode_code_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "print(half.composition)", "print(half.composition.reduced_formula)")
    assert make_notebooks.check_episode(tmp_path, episode) == [
        f"_episodes/02-counting.md:{line_of(episode, 'import almat') - 1}: this block differs "
        "from notebooks/02-counting.ipynb; the episode was edited without regenerating: run "
        "`python scripts/make_notebooks.py 02`"]


def test_edited_episode_output_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "Li+6 P5+1 S2-5 Cl-1\n~~~", "Li+6 P5+1 S2-5 Cl-2\n~~~")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "this output block differs" in problem and "without regenerating" in problem


def test_removed_output_block_and_image_line_are_drift(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "~~~\nLi+6 P5+1 S2-5 Cl-1\n~~~\n{: .output}\n", "")
    edit(episode, "![TODO: describe this figure](../fig/02-counting-1.png)\n", "")
    problems = make_notebooks.check_episode(tmp_path, episode)
    assert ["output block" in problems[0], "image lines" in problems[1]] == [True, True]


def test_new_episode_block_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "More prose.\n", "More prose.\n\n~~~\nprint(1)\n~~~\n{: .language-python}\n")
    problems = make_notebooks.check_episode(tmp_path, episode)
    assert problems[-1] == ("_episodes/02-counting.md:1: the episode defines 7 cells, "
                            "notebooks/02-counting.ipynb has 6; run "
                            "`python scripts/make_notebooks.py 02`")


def test_changed_or_stale_figure_is_drift(tmp_path):
    episode = generate(tmp_path)
    (tmp_path / "fig" / "02-counting-1.png").write_bytes(b"edited")
    (tmp_path / "fig" / "02-counting-2.png").write_bytes(PNG)
    assert [p.split(":")[0] for p in make_notebooks.check_episode(tmp_path, episode)] == [
        "fig/02-counting-1.png", "fig/02-counting-2.png"]


def test_episode_without_its_notebook(tmp_path):
    episode = generate(tmp_path)
    notebook_path(tmp_path).unlink()
    assert make_notebooks.check_episode(tmp_path, episode) == [
        "_episodes/02-counting.md:1: there is no notebooks/02-counting.ipynb for this episode's "
        "Python; run `python scripts/make_notebooks.py 02`"]


def test_notebooks_without_python_or_without_episode(tmp_path):
    episode = generate(tmp_path)
    episode.write_text(EPISODE_TEXT.replace("{: .language-python}", "{: .language-python .no-run}")
                       .replace(".nbval-ignore-output", ".no-run"), encoding="utf-8")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / "03-gone.ipynb")
    assert make_notebooks.check_lesson(tmp_path) == [
        "notebooks/02-counting.ipynb:1: _episodes/02-counting.md has no Python to run; delete "
        "the notebook",
        "fig/02-counting-1.png:1: no cell of notebooks/02-counting.ipynb makes this figure; "
        "run `python scripts/make_notebooks.py 02`",
        "notebooks/03-gone.ipynb:1: there is no _episodes/03-gone.md to generate this notebook "
        "from; move its cells into an episode"]
