"""Episodes, notebooks and figures cannot drift apart, and a notebook carries its episode.

The episode ``_episodes/NN-slug.md`` is the one source of ``notebooks/NN-slug.ipynb`` and of
its figures ``fig/NN-slug-K.png``: ``scripts/make_notebooks.py`` builds the notebook from the
episode, runs it and writes the outputs back into the episode (see its docstring for which
blocks become cells). Its check, run here without a kernel, fails in both directions:

- a notebook edited after it was generated (its cells or outputs no longer match the digest
  stored in its metadata): move the edit into the episode and regenerate;
- an episode whose prose, code, output blocks or image lines no longer match its notebook: it
  was edited without regenerating.

The real notebooks are also read as a learner's JupyterLab shows them: the episode's prose
(counted here from the episode's text, not by the generator) and every titled box are there,
questions and objectives come first and key points last, solutions are folded, and nothing of
the website's markup (Liquid, kramdown classes, reference links, ``../fig/`` paths) is left.
"""

from __future__ import annotations

import ast
import base64
import re
import uuid
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import yaml

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


# --- the real notebooks, as a learner reads them ------------------------------------------

NOTEBOOKS = [e for e in EPISODES if (ROOT / "notebooks" / f"{e.stem}.ipynb").exists()]
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_FENCE = re.compile(r"^(?:> ?)*(~~~|```)")
_DETAILS = re.compile(r"<details>.*?</details>", re.S)


def episode_prose(text: str) -> str:
    """An episode's prose: no front matter, code or output blocks, class lines or Liquid tags."""
    body = text.split("\n---\n", 1)[1]
    kept, in_code = [], False
    for line in body.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            continue
        bare = re.sub(r"^(?:> ?)+", "", line).strip()
        if in_code or bare.startswith("{:") or bare.startswith("{%"):
            continue
        kept.append(bare)
    return "\n".join(kept)


def words(text: str) -> Counter:
    return Counter(w.lower() for w in _WORD.findall(text))


def markdown(nb: nbformat.NotebookNode) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def read(episode: Path) -> tuple[str, nbformat.NotebookNode]:
    return (episode.read_text(encoding="utf-8"),
            nbformat.read(ROOT / "notebooks" / f"{episode.stem}.ipynb", as_version=4))


def test_every_episode_with_python_has_its_notebook_checked():
    assert NOTEBOOKS == [e for e in EPISODES if make_notebooks.has_notebook(e)]


@pytest.mark.parametrize("episode", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_holds_the_episodes_prose_and_titles(episode):
    text, nb = read(episode)
    want, have = words(episode_prose(text)), words(markdown(nb))
    kept = sum((want & have).values()) / sum(want.values())
    assert kept >= 0.8, f"the notebook's Markdown holds {kept:.0%} of the episode's prose words"
    titles = re.findall(r"^(?:> )+## (.+)$", text, flags=re.M)  # challenges, solutions, callouts
    sections = re.findall(r"^## (.+)$", text.split("\n---\n", 1)[1], flags=re.M)
    for title in titles + sections:
        assert title in markdown(nb), f"{title!r} is not in the notebook"


@pytest.mark.parametrize("episode", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_with_the_lesson_and_ends_with_key_points(episode):
    text, nb = read(episode)
    front = yaml.safe_load(text.split("---")[1])
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["lesson_url"]
    first, overview, last = nb.cells[0].source, nb.cells[1].source, nb.cells[-1].source
    assert first.startswith(f"# {int(episode.name[:2])}. {front['title']}\n")
    assert f"<{url}>" in first and f"<{url}{episode.stem}/>" in first
    assert "top to bottom" in first and "solution" in first.lower()
    for item in front["questions"] + front["objectives"]:
        assert item in overview
    for item in front["keypoints"]:
        assert item in last
    for cell in nb.cells:  # no maintainer's note for learners
        assert "make_notebooks" not in cell.source and "_episodes/" not in cell.source


@pytest.mark.parametrize("episode", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_website_markup_is_left(episode):
    _, nb = read(episode)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        prose = re.sub(r"^```.*?^```", "", cell.source, flags=re.S | re.M)
        prose = re.sub(r"`[^`]*`", "", prose)
        for markup in ("{{", "{%", "{:", "../fig/", "](../"):
            assert markup not in prose, f"{markup!r} left in cell {cell.id}"
        assert not re.search(r"\]\[[^\]]*\]", prose), f"a reference link is left in {cell.id}"
        for name in re.findall(r"\(attachment:([^)]+)\)", prose):
            png = base64.b64decode(cell.attachments[name]["image/png"])
            assert png == (ROOT / "fig" / name).read_bytes()


@pytest.mark.parametrize("episode", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_outputs_are_not_repeated_as_markdown(episode):
    _, nb = read(episode)
    shown = markdown(nb)
    for cell in nb.cells:
        output = make_notebooks.text_output(cell) if cell.cell_type == "code" else ""
        if output:
            assert f"\n{output}\n```" not in shown, f"the output of {cell.id} is repeated"


@pytest.mark.parametrize("episode", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_solutions_are_folded(episode):
    _, nb = read(episode)
    folded = [c for c in nb.cells if c.cell_type == "code"
              and c.metadata.get("jupyter", {}).get("source_hidden")]
    for cell in folded:  # JupyterLab 4 reads "collapsed" for the outputs
        assert cell.metadata["jupyter"].get("outputs_hidden"), f"{cell.id} shows its output"
        assert cell.metadata.get("collapsed") is True, f"{cell.id} shows its output"
    solution_code = [b.text for b in lessoncheck.code_blocks(episode) if b.in_solution
                     and "language-python" in b.classes and "no-run" not in b.classes]
    assert [c.source for c in folded] == [f"# Solution\n{code.strip()}" for code in solution_code]
    shown = _DETAILS.sub("", markdown(nb))
    hidden = "\n".join(_DETAILS.findall(markdown(nb)))
    # Whole lines: a solution's table row may begin like a longer row of the episode's own table.
    shown_lines = {re.sub(r"^(?:> ?)+", "", line).strip() for line in shown.splitlines()}
    parsed = lessoncheck.parse_markdown(episode)
    for block in make_notebooks._walk(parsed.blocks):
        if "solution" not in (block.classes or []):
            continue
        prose = [line.strip() for line in block.lines if line.strip() and not line.startswith(
            ("## ", "~~~", "```")) and "](" not in line and "][" not in line
            and len(_WORD.findall(line)) >= 3]  # sentences, not a table rule
        assert prose or block.children, f"solution at line {block.line} is empty"
        for line in prose:
            assert line in hidden and line not in shown_lines, f"{line!r} is not folded"


def _bound_and_read(code: str) -> tuple[set[str], set[str]]:
    """Names a block binds (imports aside: they bind the same module again) and names it reads."""
    tree = ast.parse(code)
    imported = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
             and isinstance(n.ctx, ast.Store)} - imported
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return bound, read


def solution_clashes(episode: Path) -> list[str]:
    """Python blocks that read a name an earlier solution rebinds (they differ if it is skipped)."""
    changed: dict[str, int] = {}  # name: line of the solution that rebinds it
    clashes = []
    for block in lessoncheck.code_blocks(episode):
        if "language-python" not in block.classes or "no-run" in block.classes:
            continue
        bound, read = _bound_and_read(block.text)
        if block.in_solution:
            changed.update(dict.fromkeys(bound, block.line))
            continue
        clashes += [f"{episode.name}:{block.line} reads {name}, which the solution at line "
                    f"{changed[name]} rebinds" for name in sorted(read & set(changed) - bound)]
        for name in bound:
            changed.pop(name, None)
    return clashes


@pytest.mark.parametrize("episode", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_running_a_solution_changes_nothing_later_cells_read(episode):
    # Solutions run in the notebook's kernel (and under nbval), but a learner may skip them.
    assert solution_clashes(episode) == []


# --- a tiny episode and its notebook ---------------------------------------------------------

EPISODE_TEXT = """---
title: "Counting"
teaching: 5
exercises: 5
questions:
- "How many orderings?"
objectives:
- "Count them."
keypoints:
- "Counting comes first."
---
## Setting up

Some prose about a [paper][paper] and a [term]({{ page.root }}/reference/#term).

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
> >
> > Four, as [the reference][lesson-reference] says.
> {: .solution}
{: .challenge}

~~~
from pymatgen import Structure
~~~
{: .language-python .no-run}

![A picture that no cell draws](../fig/02-screen.png)

> ## Careful
>
> Run this first:
>
> ~~~
> almat check-setup
> ~~~
> {: .language-bash}
{: .callout}

{% include links.md %}
"""
PRINTED = "Li+6 P5+1 S2-5 Cl-1   \n"  # trailing spaces, as pandas prints them
PNG = b"\x89PNG\r\n\x1a\n not really a picture"
SCREEN = b"\x89PNG\r\n\x1a\n not really a screenshot"


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


URL = "https://lesson.example/almat/"
CONFIG = f'title: "Tiny"\nlesson_url: "{URL}"\n'
LINKS = "[lesson-reference]: {{ page.root }}/reference/\n[paper]: https://doi.org/10.1/x\n"


def generate(root: Path, text: str | None = EPISODE_TEXT, printed: str = PRINTED) -> Path:
    """Write (or keep) the episode and generate its notebook and figure, as the script does."""
    episode = root / "_episodes" / "02-counting.md"
    episode.parent.mkdir(exist_ok=True)
    (root / "notebooks").mkdir(exist_ok=True)
    (root / "_includes").mkdir(exist_ok=True)
    if not (root / "_config.yml").exists():
        (root / "_config.yml").write_text(CONFIG, encoding="utf-8")
        (root / "_includes" / "links.md").write_text(LINKS, encoding="utf-8")
        (root / "fig").mkdir(exist_ok=True)
        (root / "fig" / "02-screen.png").write_bytes(SCREEN)
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
        ("markdown", "## Overview"),
        ("markdown", "## Setting up"),
        ("code", "import almat"),
        ("markdown", "More prose."),
        ("code", "app = almat.LabelingApp(campaign)"),
        ("code", "plot(half)"),
        ("markdown", "> ### Challenge: Try it"),
        ("code", make_notebooks.WORK_CELL),
        ("markdown", "**Solution**: " + make_notebooks.SOLUTION_CODE_NOTE),
        ("code", "# Solution"),  # the line JupyterLab shows of a folded cell
        ("markdown", "<details>"),
        ("markdown", "```python"),  # a .no-run block is shown, not run
        ("markdown", "> ### Note: Careful"),
        ("markdown", "## Key points"),
    ]
    assert nb.cells[5].metadata["tags"] == ["nbval-ignore-output"]
    assert [c.id for c in nb.cells] == [f"02-{i:02d}" for i in range(15)]


def test_markdown_is_rendered_for_jupyterlab(tmp_path):
    generate(tmp_path)
    cells = nbformat.read(notebook_path(tmp_path), as_version=4).cells
    assert f"<{URL}>" in cells[0].source and f"<{URL}02-counting/>" in cells[0].source
    assert cells[1].source == ("## Overview\n\nTeaching: 5 min · Exercises: 5 min\n\n"
                               "**Questions**\n\n- How many orderings?\n\n"
                               "**Objectives**\n\n- Count them.")
    assert cells[2].source == ("## Setting up\n\nSome prose about a "
                               "[paper](https://doi.org/10.1/x) and a "
                               f"[term]({URL}reference/#term).")
    assert "an old output" not in "".join(c.source for c in cells)  # it is the cell's output
    assert cells[7].source == "> ### Challenge: Try it\n>\n> Count again."
    assert cells[11].source == ("<details>\n<summary><b>Solution, continued</b></summary>\n\n"
                                f"Four, as [the reference]({URL}reference/) says.\n\n</details>")
    assert cells[12].source == ("```python\nfrom pymatgen import Structure\n```\n\n"
                                "![A picture that no cell draws](attachment:02-screen.png)")
    assert cells[12].attachments == {
        "02-screen.png": {"image/png": base64.b64encode(SCREEN).decode()}}
    assert cells[13].source == ("> ### Note: Careful\n>\n> Run this first:\n>\n"
                                "> ```bash\n> almat check-setup\n> ```")
    assert cells[14].source == "## Key points\n\n- Counting comes first."


def test_solution_code_is_folded_and_runs(tmp_path):
    generate(tmp_path)
    cells = nbformat.read(notebook_path(tmp_path), as_version=4).cells
    assert [c.metadata.get("jupyter") for c in cells if c.cell_type == "code"] == [
        None, None, None, None, {"source_hidden": True, "outputs_hidden": True}]
    assert [c.metadata.get("collapsed") for c in cells if c.cell_type == "code"] == [
        None, None, None, None, True]
    assert cells[10].source == "# Solution\nprint(almat.count_orderings(half, max_cell_size=1))"
    assert "tags" not in cells[10].metadata  # nbval runs it and compares its output


def test_a_solution_that_rebinds_a_later_name_is_caught(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "> > print(almat.count_orderings(half, max_cell_size=1))",
         "> > half = None")
    edit(episode, "from pymatgen import Structure\n~~~\n{: .language-python .no-run}",
         "print(half)\n~~~\n{: .language-python}")
    assert solution_clashes(episode) == [
        f"02-counting.md:{line_of(episode, 'print(half)') - 1} reads half, which the solution "
        f"at line {line_of(episode, '> > half = None') - 1} rebinds"]


def test_a_missing_lesson_address_is_one_clear_error(tmp_path):
    generate(tmp_path)
    (tmp_path / "_config.yml").write_text('title: "Tiny"\nlesson_url: ""\n', encoding="utf-8")
    with pytest.raises(make_notebooks.LessonConfigError, match="set lesson_url to the address"):
        make_notebooks.Lesson.read(tmp_path)


def test_lesson_address_is_an_obvious_placeholder_or_real():
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["lesson_url"]
    assert re.fullmatch(r"https://\S+/", url)
    assert "FILL-IN" in url or "example" not in url


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
    problems = lessoncheck.check_file(episode, {"paper", "lesson-reference"}, "e.md")
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
        f"notebooks/02-counting.ipynb:1: cell 4 was edited in the notebook after it was "
        f"generated; move your edit into _episodes/02-counting.md:{line - 1} and run "
        "`python scripts/make_notebooks.py 02`"]


def test_an_edited_notebook_output_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(notebook_path(tmp_path), "S2-5", "S2-6")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "cell 4 was edited in the notebook" in problem


def test_a_cell_added_to_the_notebook_is_drift(tmp_path):
    episode = generate(tmp_path)
    nb = nbformat.read(notebook_path(tmp_path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('mine')"))
    nbformat.write(nb, notebook_path(tmp_path))
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "cell 16 was edited in the notebook" in problem


def test_an_edited_or_unfolded_markdown_cell_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(notebook_path(tmp_path), "More prose.", "More of my prose.")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "cell 5 was edited in the notebook" in problem
    generate(tmp_path, text=None)
    nb = nbformat.read(notebook_path(tmp_path), as_version=4)
    del nb.cells[10].metadata["collapsed"]  # the solution's output unfolded and saved
    nbformat.write(nb, notebook_path(tmp_path))
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "cell 11 was edited in the notebook" in problem


def test_edited_prose_links_address_or_figure_is_drift(tmp_path):
    episode = generate(tmp_path)
    edit(episode, "More prose.", "More prose, edited.")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert problem.startswith(f"_episodes/02-counting.md:{line_of(episode, 'More prose, edited.')}:"
                              " this block differs")
    generate(tmp_path, text=None)
    edit(tmp_path / "_includes" / "links.md", "https://doi.org/10.1/x", "https://doi.org/10.1/y")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert f"_episodes/02-counting.md:{line_of(episode, '## Setting up')}: this block differs" \
        in problem
    assert "(or _config.yml, or _includes/links.md)" in problem
    generate(tmp_path, text=None)
    edit(tmp_path / "_config.yml", URL, "https://elsewhere.example/")
    assert [p.split(": ")[1] for p in make_notebooks.check_episode(tmp_path, episode)] == [
        "this block differs from notebooks/02-counting.ipynb; the episode (or _config.yml, or "
        "_includes/links.md) was edited without regenerating"] * 3  # the header, two site links
    generate(tmp_path, text=None)
    (tmp_path / "fig" / "02-screen.png").write_bytes(b"a new screenshot")
    [problem] = make_notebooks.check_episode(tmp_path, episode)
    assert "this figure differs from notebooks/02-counting.ipynb" in problem


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
    assert problems[-1] == ("_episodes/02-counting.md:1: the episode defines 16 cells, "
                            "notebooks/02-counting.ipynb has 15; run "
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
