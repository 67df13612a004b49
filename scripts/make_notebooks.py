"""Build the lesson notebooks from the episodes, run them, and write their outputs back.

The episode Markdown is the one source of every notebook cell. Notebook
``notebooks/NN-slug.ipynb`` is built from ``_episodes/NN-slug.md``:

- a title cell, then one Markdown cell per ``## Section`` heading;
- one code cell per ``{: .language-python}`` block that is not inside a ``{: .solution}``
  and not marked ``.no-run``, in order; a block marked ``.nbval-ignore-output`` gets that
  cell tag (nbval runs the cell but does not compare its output: the labeling widget);
- one comment cell per challenge, an empty place to work that points to the exercise.

Each notebook is executed top to bottom in a fresh kernel, as a learner and
``pytest --nbval`` run it. The kernel starts in an empty temporary folder with
``ALMAT_LABELS_DIR`` unset, so that the labeling campaign starts from an empty
``labels/`` folder and shows the path a learner sees. The state of the labeling app is
saved with the notebook, so that JupyterLab shows a snapshot of it, rather than
"model not found", before the notebook is run. A ``tqdm.auto`` progress bar (``progress=True``)
is stored as it ended, without timings (:func:`settle_progress_bars`); it is a widget, so it
never reaches the episode, and ``tests/nbval_sanitize.cfg`` lets nbval compare it.

The outputs then go back into the episode: the ``{: .output}`` block after each Python
block is created or replaced from the cell's stdout and text results, and each figure is
written to ``fig/NN-slug-K.png`` with an image line after the block. The alt text of an
image line is the author's and is kept; a new figure gets a TODO alt that the lesson
checker reports. Usage::

    python scripts/make_notebooks.py            # every notebook
    python scripts/make_notebooks.py 02         # just one (or 02-enumeration)
    python scripts/make_notebooks.py --check    # report drift, run nothing

``--check`` (and ``tests/test_consistency.py``) compare each notebook with its episode
without a kernel. The notebook's metadata holds a digest of its cells and outputs as
generated, which tells an edited notebook from an episode edited without regenerating.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import lessoncheck  # noqa: E402  (one Markdown parser for the checker and this script)

NOTEBOOK_DIR = "notebooks"
FIG_DIR = "fig"
#: Per-cell time limit while executing (s).
CELL_TIMEOUT = 600
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: Block classes that become cell tags. nbval runs a cell tagged nbval-ignore-output but
#: does not compare its output.
CELL_TAGS = ("nbval-ignore-output",)
#: Alt text of a new figure; lessoncheck reports it until the author describes the figure.
TODO_ALT = "TODO: describe this figure"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_ID = re.compile(r"[0-9a-f]{32}")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\(\.\./fig/(?P<name>[^)\s]+)\)$")
_HEADING = re.compile(r"^## \S")
#: tqdm's text meter, "CHGNet:  40%|####      | 2/5 [00:01<00:01, 2.0structure/s]".
_METER = re.compile(r"\d+%\|")
#: Elapsed and remaining time, and rate, as tqdm's notebook bar shows them (HTML-escaped).
_ELAPSED = re.compile(r"\s*\[\d+:\d{2}(?::\d{2})?(?:&lt;|<)[^\]]*\]")
#: Width of the bar in the text of a settled progress bar.
BAR_WIDTH = 10


@dataclass
class Cell:
    """A notebook cell as its episode defines it.

    Attributes
    ----------
    kind
        ``"markdown"`` or ``"code"``.
    source
        The cell's text.
    line
        Where the cell comes from in the episode (1-based).
    tags
        Cell tags, from the block's classes.
    output
        Text of the ``{: .output}`` block after a Python block; empty when there is none.
    figures
        ``(alt, file name)`` of each image line after a Python block.
    replace
        For a Python block: the 0-based range of episode lines after the block's class line
        that its output block and image lines fill (empty when it has none).
    depth
        Blockquote depth of a Python block.
    """

    kind: str
    source: str
    line: int
    tags: list[str] = field(default_factory=list)
    output: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)
    replace: range | None = None
    depth: int = 0


def normalise(text: str) -> str:
    """Text with trailing spaces and leading and trailing blank lines removed."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def _runnable(block: lessoncheck.Block) -> bool:
    classes = block.classes or []
    return block.kind == "code" and "language-python" in classes and "no-run" not in classes \
        and not _in_solution(block)


def _in_solution(block: lessoncheck.Block) -> bool:
    parent = block.parent
    while parent is not None:
        if "solution" in (parent.classes or []):
            return True
        parent = parent.parent
    return False


def _walk(blocks: list[lessoncheck.Block]):
    for block in blocks:
        yield block
        yield from _walk(block.children)


def _trailing(parsed: lessoncheck.ParsedFile, block: lessoncheck.Block, cell: Cell,
              starts: dict[int, lessoncheck.Block]) -> None:
    """Find the output block and image lines after a Python block and record them in ``cell``."""
    lines = parsed.lines
    first = block.line + len(block.lines) + 2  # 0-based index of the line after the class line
    end = index = first
    while index < len(lines):
        depth, content = lessoncheck._strip_markers(lines[index], block.depth)
        if depth < block.depth or (block.depth and lessoncheck._QUOTE_MARKER.match(content)):
            break
        if not content.strip():
            index += 1
            continue
        found = starts.get(index + 1)
        if found is not None and found.kind == "code" and "output" in (found.classes or []) \
                and not cell.output and not cell.figures:
            cell.output = normalise("\n".join(found.lines))
            index = end = index + len(found.lines) + 3
            continue
        image = _IMAGE.match(content.strip())
        if not image:
            break
        cell.figures.append((image["alt"], image["name"]))
        index = end = index + 1
    cell.replace = range(first, end)


def episode_cells(episode: Path, parsed: lessoncheck.ParsedFile | None = None) -> list[Cell]:
    """The notebook cells that an episode defines, with the outputs it shows.

    Parameters
    ----------
    episode
        ``_episodes/NN-slug.md``.
    parsed
        The episode as ``lessoncheck.parse_markdown`` reads it; read here if not given.

    Returns
    -------
    list of Cell
        The title cell first; no other cell when the episode has no runnable Python.
    """
    parsed = parsed or lessoncheck.parse_markdown(episode)
    title = (parsed.front_matter or {}).get("title", episode.stem)
    number = episode.name[:2]
    header = Cell("markdown", f"# {int(number)}. {title}\n\n"
                  f"This notebook goes with the episode *{title}* (`_episodes/{episode.name}`),\n"
                  "which is its source: change the episode and run "
                  f"`python scripts/make_notebooks.py {number}`, not this file.\n"
                  "Run the cells from top to bottom; the outputs stored here are what you should "
                  "see.\nCells marked **Challenge** are for you to complete.", 1)
    blocks = list(_walk(parsed.blocks))
    starts = {b.line: b for b in blocks}
    cells: list[Cell] = []
    for block in blocks:
        if _runnable(block):
            cell = Cell("code", normalise("\n".join(block.lines)), block.line,
                        [c for c in block.classes if c in CELL_TAGS], depth=block.depth)
            _trailing(parsed, block, cell, starts)
            cells.append(cell)
        elif block.kind == "quote" and block.classes == ["challenge"] and not _in_solution(block):
            title_line = next((t for t in block.lines if t.strip()), "## Challenge")
            cells.append(Cell("code", f"# Challenge: {title_line.removeprefix('## ').strip()}\n"
                              f"# The exercise and its solution are in _episodes/{episode.name}.\n"
                              "# Write your code here.", block.line))
    for number, line in enumerate(parsed.lines, start=1):
        if number > parsed.body_start and number not in parsed.code_spans and _HEADING.match(line):
            cells.append(Cell("markdown", line.strip(), number))
    if not any(c.replace is not None for c in cells):
        return [header]
    return [header] + sorted(cells, key=lambda c: c.line)


def has_notebook(episode: Path) -> bool:
    """Whether an episode has runnable Python, and so a notebook."""
    return len(episode_cells(episode)) > 1


def build(episode: Path) -> nbformat.NotebookNode:
    """The notebook of an episode, with cells but no outputs."""
    cells = []
    for index, spec in enumerate(episode_cells(episode)):
        if spec.kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(spec.source)
        else:
            cell = nbformat.v4.new_code_cell(spec.source)
            if spec.tags:
                cell.metadata["tags"] = list(spec.tags)
        cell.id = f"{episode.name[:2]}-{index:02d}"  # stable ids: regenerating is byte-identical
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, workdir: str) -> float:
    """Run every cell in a fresh kernel started in ``workdir``; return the wall time in seconds."""
    os.environ.pop("ALMAT_LABELS_DIR", None)
    # The python3 kernelspec runs `python`: make it this environment's.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": workdir}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def coalesce_streams(nb: nbformat.NotebookNode) -> None:
    """Merge consecutive stream outputs of a cell, which the kernel splits by timing."""
    for cell in nb.cells:
        merged: list[nbformat.NotebookNode] = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged


def settle_progress_bars(nb: nbformat.NotebookNode) -> None:
    """Store tqdm's notebook progress bars as they ended, without timings.

    ``tqdm.auto`` in a notebook draws an ipywidgets bar; its output keeps the text it had
    when it was drawn ("0%| | 0/630 [00:00<?, ?structure/s]"), which is what a notebook
    opened without its widgets shows. That text becomes the bar's final state from the
    saved widget state ("CHGNet: 100%|██████████| 630/630"), and the elapsed time and rate
    are dropped from the widget state, so that regenerating stays byte-identical. nbval
    compares the text after ``tests/nbval_sanitize.cfg`` turns every meter into ``PROGRESS``.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            box = state.get(data.get(WIDGET_VIEW, {}).get("model_id"), {})
            if box.get("model_name") != "HBoxModel" or not _METER.search(data.get("text/plain", "")):
                continue
            parts = [state.get(child.removeprefix("IPY_MODEL_"), {})
                     for child in box["state"].get("children", [])]
            texts, fraction = [], 0.0
            for part in parts:
                if part.get("model_name") == "HTMLModel":
                    part["state"]["value"] = _ELAPSED.sub("", part["state"]["value"])
                    texts.append(html.unescape(part["state"]["value"]).replace("\u2007", " ").strip())
                elif part.get("model_name") == "FloatProgressModel":
                    value, top = part["state"].get("value", 0), part["state"].get("max", 0)
                    fraction = min(max(value / top, 0.0), 1.0) if top else 0.0
            if len(texts) == 2:
                filled = round(BAR_WIDTH * fraction)
                data["text/plain"] = (f"{texts[0]}|{'█' * filled}{' ' * (BAR_WIDTH - filled)}| "
                                      f"{texts[1]}")


def renumber_widgets(nb: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """The notebook with its saved widgets' random model ids replaced by stable ones.

    Models are numbered in the order they are reached from the cells' outputs, so that
    regenerating a notebook with a widget is byte-identical. Models that no output reaches
    (an app a cell drives through its methods without showing it) are left out: nothing
    could draw them.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    order: list[str] = []

    def visit(text: str) -> None:
        for model_id in _MODEL_ID.findall(text):
            if model_id in state and model_id not in order:
                order.append(model_id)
                visit(json.dumps(state[model_id], sort_keys=True))

    for cell in nb.cells:
        visit(json.dumps(cell.get("outputs", []), sort_keys=True))
    for model_id in set(state) - set(order):
        del state[model_id]
    text = nbformat.writes(nb)
    for number, model_id in enumerate(order):
        text = text.replace(model_id, hashlib.sha256(f"{stem}/{number}".encode()).hexdigest()[:32])
    return nbformat.reads(text, as_version=4)


def text_output(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed and returned as text (no stderr, figures or widgets)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "text/plain" in data and "image/png" not in data and WIDGET_VIEW not in data:
                parts.append(data["text/plain"] + "\n")
    return normalise("".join(parts))


def figures(nb: nbformat.NotebookNode) -> list[list[bytes]]:
    """The PNG images of each cell of a notebook."""
    return [[base64.b64decode(out["data"]["image/png"]) for out in cell.get("outputs", [])
             if out.output_type in ("execute_result", "display_data")
             and "image/png" in out.get("data", {})] for cell in nb.cells]


def figure_names(stem: str, counts: list[int]) -> list[list[str]]:
    """``NN-slug-K.png`` for each figure of each cell, K counting from 1 over the notebook."""
    names, k = [], 0
    for count in counts:
        names.append([f"{stem}-{k + i + 1}.png" for i in range(count)])
        k += count
    return names


def notebook_view(nb: nbformat.NotebookNode, stem: str) -> list[dict]:
    """What the consistency check compares, cell by cell, as the notebook holds it."""
    names = figure_names(stem, [len(f) for f in figures(nb)])
    return [{"type": cell.cell_type, "source": cell.source,
             "tags": list(cell.get("metadata", {}).get("tags", [])),
             "output": text_output(cell) if cell.cell_type == "code" else "",
             "figures": names[i]} for i, cell in enumerate(nb.cells)]


def episode_view(cells: list[Cell]) -> list[dict]:
    """What the consistency check compares, cell by cell, as the episode defines it."""
    return [{"type": c.kind, "source": c.source, "tags": c.tags, "output": c.output,
             "figures": [name for _, name in c.figures]} for c in cells]


def digest(view: list[dict]) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()


def write_back(episode: Path, nb: nbformat.NotebookNode) -> list[tuple[str, bytes]]:
    """Put a run notebook's outputs into its episode; return the figures to write to ``fig/``.

    Each Python block gets its text output as a ``{: .output}`` block (none when it printed
    nothing) and one image line per figure, keeping the alt texts already there.
    """
    parsed = lessoncheck.parse_markdown(episode)
    lines = list(parsed.lines)
    cells = episode_cells(episode, parsed)
    images = figures(nb)
    names = figure_names(episode.stem, [len(i) for i in images])
    files = []
    for spec, cell, pngs, fig_names in reversed(list(zip(cells, nb.cells, images, names))):
        if spec.replace is None:
            continue
        prefix = "> " * spec.depth
        blank = prefix.rstrip()
        new: list[str] = []
        text = text_output(cell)
        if text:
            fence = "~" * max(3, 1 + max(len(m) for m in re.findall(r"^~*", text, flags=re.M)))
            new += [blank, prefix + fence]
            new += [prefix + line if line else blank for line in text.splitlines()]
            new += [prefix + fence, prefix + "{: .output}"]
        for k, (png, name) in enumerate(zip(pngs, fig_names)):
            alt = spec.figures[k][0] if k < len(spec.figures) else TODO_ALT
            # relative to the episode: right on the website (served one folder down) and on GitHub
            new += [blank, f"{prefix}![{alt}](../{FIG_DIR}/{name})"]
            files.append((name, png))
        lines[spec.replace.start:spec.replace.stop] = new
    episode.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files[::-1]


def save(root: Path, episode: Path, nb: nbformat.NotebookNode) -> None:
    """Write a run notebook with its digest, its figures and its outputs in the episode."""
    coalesce_streams(nb)
    settle_progress_bars(nb)
    nb = renumber_widgets(nb, episode.stem)
    nb.metadata["almat"] = {"episode": f"_episodes/{episode.name}",
                            "digest": digest(notebook_view(nb, episode.stem))}
    nbformat.validate(nb)
    nbformat.write(nb, root / NOTEBOOK_DIR / f"{episode.stem}.ipynb")
    files = write_back(episode, nb)
    fig_dir = root / FIG_DIR
    fig_dir.mkdir(exist_ok=True)
    for old in fig_dir.glob(f"{episode.stem}-*.png"):
        old.unlink()
    for name, png in files:
        (fig_dir / name).write_bytes(png)


def check_episode(root: Path, episode: Path) -> list[str]:
    """Drift between one episode, its notebook and its figures, as ``file:line: message``."""
    label = f"_episodes/{episode.name}"
    rerun = f"run `python scripts/make_notebooks.py {episode.name[:2]}`"
    path = root / NOTEBOOK_DIR / f"{episode.stem}.ipynb"
    cells = episode_cells(episode)
    figs = sorted((root / FIG_DIR).glob(f"{episode.stem}-*.png"))
    if len(cells) == 1:
        return [f"{NOTEBOOK_DIR}/{path.name}:1: {label} has no Python to run; delete the "
                "notebook"] * path.exists() + [
            f"{FIG_DIR}/{fig.name}:1: no cell of {NOTEBOOK_DIR}/{path.name} makes this figure; "
            f"{rerun}" for fig in figs]
    if not path.exists():
        return [f"{label}:1: there is no {NOTEBOOK_DIR}/{path.name} for this episode's Python; "
                f"{rerun}"]
    nb = nbformat.read(path, as_version=4)
    have = notebook_view(nb, episode.stem)
    want = episode_view(cells)
    if digest(have) != nb.metadata.get("almat", {}).get("digest"):
        changed = next((i for i, (h, w) in enumerate(zip(have, want)) if h != w),
                       min(len(have), len(want)))
        where = f"{label}:{cells[changed].line}" if changed < len(cells) else label
        return [f"{NOTEBOOK_DIR}/{path.name}:1: cell {changed + 1} was edited in the notebook "
                f"after it was generated; move your edit into {where} and {rerun}"]
    problems = []
    for h, w, cell in zip(have, want, cells):
        what = [key for key in ("type", "source", "tags", "output", "figures") if h[key] != w[key]]
        if what:
            kind = {"output": "output block", "figures": "image lines"}.get(what[0], "block")
            problems.append(f"{label}:{cell.line}: this {kind} differs from {NOTEBOOK_DIR}/"
                            f"{path.name}; the episode was edited without regenerating: {rerun}")
    if len(have) != len(want):
        problems.append(f"{label}:1: the episode defines {len(want)} cells, {NOTEBOOK_DIR}/"
                        f"{path.name} has {len(have)}; {rerun}")
    expected = {name: png for pngs, names in zip(figures(nb), [h["figures"] for h in have])
                for png, name in zip(pngs, names)}
    for name, png in expected.items():
        fig = root / FIG_DIR / name
        if not fig.is_file() or fig.read_bytes() != png:
            problems.append(f"{FIG_DIR}/{name}:1: missing or not the figure stored in "
                            f"{NOTEBOOK_DIR}/{path.name}; {rerun}")
    for fig in figs:
        if fig.name not in expected:
            problems.append(f"{FIG_DIR}/{fig.name}:1: no cell of {NOTEBOOK_DIR}/{path.name} makes "
                            f"this figure; {rerun}")
    return problems


def check_lesson(root: Path) -> list[str]:
    """Drift between every episode and its notebook, and notebooks without an episode."""
    episodes = lessoncheck.episode_files(root)
    problems = [p for episode in episodes for p in check_episode(root, episode)]
    stems = {e.stem for e in episodes}
    for path in sorted((root / NOTEBOOK_DIR).glob("*.ipynb")):
        if path.stem not in stems:
            problems.append(f"{NOTEBOOK_DIR}/{path.name}:1: there is no _episodes/{path.stem}.md "
                            "to generate this notebook from; move its cells into an episode")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="episodes to build, as NN or NN-slug; "
                        "default: every episode with Python to run")
    parser.add_argument("--check", action="store_true",
                        help="report drift between episodes, notebooks and figures; run nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check_lesson(ROOT)
        print("\n".join(problems) or "Episodes, notebooks and figures agree.")
        return 1 if problems else 0
    episodes = [e for e in lessoncheck.episode_files(ROOT) if has_notebook(e)]
    chosen = [e for e in episodes if not args.names or e.stem in args.names
              or e.name[:2] in args.names]
    if args.names and len(chosen) != len(args.names):
        parser.error(f"choose from {', '.join(e.stem for e in episodes)}")
    for episode in chosen:
        nb = build(episode)
        with tempfile.TemporaryDirectory(prefix="almat-notebook-") as workdir:
            seconds = execute(nb, workdir)
        save(ROOT, episode, nb)
        print(f"{NOTEBOOK_DIR}/{episode.stem}.ipynb: ran in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
