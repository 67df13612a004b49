"""Build the lesson notebooks from the episodes, run them, and write their outputs back.

The episode Markdown is the one source of every notebook cell. Notebook
``notebooks/NN-slug.ipynb`` is built from ``_episodes/NN-slug.md``, in the episode's order:

- a first cell that says what the notebook is, where the lesson's website is (``lesson_url``
  in ``_config.yml``) and how to work, then the episode's questions and objectives;
- the prose as Markdown cells, a new one at each ``## Section`` heading: reference links
  (``[text][name]``, defined in ``_includes/links.md``) and ``{{ page.root }}`` resolved to the
  website's addresses, Liquid tags removed, a figure that no cell draws embedded as an
  attachment (a learner's copy shows it with no ``fig/`` beside it);
- one code cell per ``{: .language-python}`` block not marked ``.no-run``; a block marked
  ``.nbval-ignore-output`` gets that cell tag (nbval runs the cell but does not compare its
  output: the labeling widget). Its ``{: .output}`` block and image lines are the cell's
  outputs, so they are not repeated as Markdown. Other code blocks (shell commands, errors,
  ``.no-run`` Python) are shown as fenced code;
- each blockquote (``{: .challenge}``, ``.callout``, ``.discussion``...) as a Markdown
  blockquote headed "Challenge: title", "Note: title"...; a challenge whose solution has code
  is followed by an empty cell to work in;
- each ``{: .solution}`` folded: its text in ``<details>`` blocks, its Python as code cells
  whose source and outputs JupyterLab shows collapsed (cell metadata ``jupyter.source_hidden``
  and ``outputs_hidden``, and ``collapsed``), headed by a "# Solution" comment, the line a
  folded cell shows.
  They run with the rest of the notebook, and nbval compares them;
- the key points last.

Each notebook is executed top to bottom in a fresh kernel, as a learner and
``pytest --nbval`` run it. The kernel starts in an empty temporary folder with
``ALMAT_LABELS_DIR`` unset, so that the labeling campaign starts from an empty
``labels/`` folder and shows the path a learner sees. The state of the labeling app is
saved with the notebook, so that JupyterLab shows a snapshot of it, rather than
"model not found", before the notebook is run; a 3-D view of ``almat.views`` is saved as a
line that says to run its cell (:func:`shrink_views`), without chemiscope's 3 MB of
JavaScript. A ``tqdm.auto`` progress bar (``progress=True``) is stored as it ended, without
timings (:func:`settle_progress_bars`); it is a widget, so it never reaches the episode, and
``tests/nbval_sanitize.cfg`` lets nbval compare it.

The outputs then go back into the episode: the ``{: .output}`` block after each Python
block (a solution's included) is created or replaced from the cell's stdout and text
results, and each figure is written to ``fig/NN-slug-K.png`` with an image line after the
block. The alt text of an image line is the author's and is kept; a new figure gets a TODO
alt that the lesson checker reports. Usage::

    python scripts/make_notebooks.py            # every notebook
    python scripts/make_notebooks.py 02         # just one (or 02-enumeration)
    python scripts/make_notebooks.py --check    # report drift, run nothing

``--check`` (and ``tests/test_consistency.py``) compare each notebook with its episode
without a kernel. The notebook's metadata holds a digest of its cells and outputs as
generated, which tells an edited notebook from an episode (or ``_config.yml``, or
``_includes/links.md``, or a figure) edited without regenerating.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import mimetypes
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import lessoncheck  # noqa: E402  (one Markdown parser for the checker and this script)

NOTEBOOK_DIR = "notebooks"
FIG_DIR = "fig"
CONFIG_FILE = "_config.yml"
#: The key of ``_config.yml`` that holds the lesson website's address.
URL_KEY = "lesson_url"
#: Per-cell time limit while executing (s).
CELL_TIMEOUT = 600
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: Block classes that become cell tags. nbval runs a cell tagged nbval-ignore-output but
#: does not compare its output.
CELL_TAGS = ("nbval-ignore-output",)
#: Metadata of a solution's code cell: its source and outputs folded, as nbformat defines it
#: (``jupyter``) and as JupyterLab 4 reads its outputs' state (``collapsed``).
FOLDED = {"jupyter": {"source_hidden": True, "outputs_hidden": True}, "collapsed": True}
#: How a blockquote's heading names its kind, by class.
QUOTE_LABELS = {"challenge": "Challenge", "callout": "Note", "discussion": "Discussion",
                "testimonial": "Testimonial", "checklist": "Checklist", "prereq": "Prerequisites",
                "quotation": "Quotation", "keypoints": "Key points", "objectives": "Objectives"}
#: Language of the fence that shows a code block which does not run, by class.
FENCE_LANGUAGES = {"language-python": "python", "language-bash": "bash", "language-yaml": "yaml"}
#: The cell after a challenge whose solution has code: a place to work.
WORK_CELL = "# Your code for this challenge: try it before you open the solution."
#: The first line of a solution's code cell: JupyterLab shows a folded cell's first line, which
#: must not give the answer away.
SOLUTION_CODE_HEADER = "# Solution"
#: Where a solution's code is, said in the solution's text.
SOLUTION_CODE_NOTE = "the code is in the folded cell below: click its ⋯ to open it, and run it."
#: Alt text of a new figure; lessoncheck reports it until the author describes the figure.
TODO_ALT = "TODO: describe this figure"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_ID = re.compile(r"[0-9a-f]{32}")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\(\.\./fig/(?P<name>[^)\s]+)\)$")
_HEADING = re.compile(r"^## (?P<title>\S.*)$")
_PAGE_ROOT = re.compile(r"\{\{\s*page\.root\s*\}\}/?")
_SITE_VALUE = re.compile(r"\{\{\s*site\.(?P<key>\w+)\s*\}\}")
_RELATIVE_LINK = re.compile(r"\]\(\.\./")
#: tqdm's text meter, "CHGNet:  40%|####      | 2/5 [00:01<00:01, 2.0structure/s]".
_METER = re.compile(r"\d+%\|")
#: Elapsed and remaining time, and rate, as tqdm's notebook bar shows them (HTML-escaped).
_ELAPSED = re.compile(r"\s*\[\d+:\d{2}(?::\d{2})?(?:&lt;|<)[^\]]*\]")
#: Width of the bar in the text of a settled progress bar.
BAR_WIDTH = 10


class LessonConfigError(ValueError):
    """``_config.yml`` lacks what the notebooks need."""


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
    folded
        A solution's code cell, shown folded.
    attachments
        Figures a Markdown cell shows, by name: the files in ``fig/``.
    """

    kind: str
    source: str
    line: int
    tags: list[str] = field(default_factory=list)
    output: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)
    replace: range | None = None
    depth: int = 0
    folded: bool = False
    attachments: dict[str, Path] = field(default_factory=dict)


@dataclass
class Lesson:
    """What the notebooks take from the lesson besides their episode.

    Attributes
    ----------
    root
        The lesson's top folder.
    url
        The website's address, ending in ``/`` (``lesson_url`` in ``_config.yml``).
    site
        The values of ``_config.yml``, for ``{{ site.key }}``.
    links
        The shared reference links of ``_includes/links.md``: name to address.
    """

    root: Path
    url: str
    site: dict
    links: dict[str, str]

    @classmethod
    def read(cls, root: Path) -> Lesson:
        """Read ``_config.yml`` and ``_includes/links.md`` of the lesson in ``root``."""
        config_path = root / CONFIG_FILE
        site = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() \
            else {}
        url = (site or {}).get(URL_KEY)
        if not isinstance(url, str) or not re.match(r"^https?://\S+/$", url):
            raise LessonConfigError(
                f"{config_path}: set {URL_KEY} to the address of the lesson's website, ending "
                "in '/' (a placeholder such as https://FILL-IN.example/almat/ until it is known)")
        links_path = root / lessoncheck.LINKS_FILE
        lines = links_path.read_text(encoding="utf-8").splitlines() if links_path.is_file() else []
        lesson = cls(root, url, site, {})
        lesson.links = {name: lesson.resolve(target)
                        for name, target in lessoncheck.link_targets(lines).items()}
        return lesson

    def resolve(self, text: str) -> str:
        """``text`` with the website's values filled in: ``{{ page.root }}``, ``{{ site.key }}``."""
        text = _PAGE_ROOT.sub(self.url, text)
        return _SITE_VALUE.sub(lambda m: str(self.site.get(m["key"], "")), text)

    def episode_url(self, episode: Path) -> str:
        """The episode's page on the website (the episodes' permalink is ``/:path/``)."""
        return f"{self.url}{episode.stem}/"


def normalise(text: str) -> str:
    """Text with trailing spaces and leading and trailing blank lines removed."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def _runnable(block: lessoncheck.Block) -> bool:
    classes = block.classes or []
    return block.kind == "code" and "language-python" in classes and "no-run" not in classes


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


def _fence(lines: list[str]) -> str:
    """A fence longer than any run of backticks in ``lines``."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _details(summary: str, text: str) -> str:
    """Markdown folded under ``summary``; JupyterLab renders the Markdown inside."""
    return f"<details>\n<summary><b>{summary}</b></summary>\n\n{text}\n\n</details>"


class _Renderer:
    """Turns one episode into cells (see the module's docstring for the rules)."""

    def __init__(self, episode: Path, parsed: lessoncheck.ParsedFile, lesson: Lesson):
        self.episode, self.parsed, self.lesson = episode, parsed, lesson
        blocks = list(_walk(parsed.blocks))
        self.codes = {b.line: b for b in blocks if b.kind == "code"}
        self.quotes = {(b.line, b.depth): b for b in blocks if b.kind == "quote"}
        own = lessoncheck.link_targets(parsed.lines, parsed.code_spans)
        self.links = {**lesson.links, **{name: lesson.resolve(url) for name, url in own.items()}}
        self.definitions = {  # link definition lines, which a reader does not see
            n for n, line in enumerate(parsed.lines, 1) if n not in parsed.code_spans
            and lessoncheck._LINK_DEFINITION.match(lessoncheck._strip_markers(line)[1])}
        self.cells: list[Cell] = []
        self.pending: list[str] = []  # Markdown of the cell being written
        self.first = 0  # the episode line it starts at
        self.attachments: dict[str, Path] = {}
        self.summary: str | None = None  # inside a solution: the summary of its next text

    # --- cells
    def add(self, number: int, text: str, level: int) -> None:
        """Add a Markdown line at notebook blockquote ``level``."""
        if not self.pending:
            if not text.strip():
                return  # a cell starts at its first line of text
            self.first = number
        self.pending.append(("> " * level + text).rstrip() if text.strip() else ">" * level)

    def flush(self, code_follows: bool = False) -> None:
        """End the Markdown cell being written (folded inside a solution)."""
        lines = self.pending
        while lines and not lines[-1].replace(">", "").strip():
            lines = lines[:-1]
        text = normalise("\n".join(lines))
        has_text = bool(text.replace(">", "").strip())
        if self.summary is not None and (has_text or code_follows):
            if has_text:
                note = f"\n\n*{SOLUTION_CODE_NOTE.capitalize()}*" if code_follows else ""
                text = _details(self.summary, text + note)
            else:
                text = f"**{self.summary}**: {SOLUTION_CODE_NOTE}"
            self.summary = "Solution, continued"
            has_text = True
        if has_text:
            self.cells.append(Cell("markdown", text, self.first, attachments=self.attachments))
        self.pending, self.attachments = [], {}

    # --- the episode
    def render(self) -> list[Cell]:
        front = self.parsed.front_matter or {}
        title = front.get("title", self.episode.stem)
        number = int(self.episode.name[:2])
        self.cells.append(Cell("markdown", self.header(number, title), 1))
        overview = [f"## Overview\n\nTeaching: {front.get('teaching', '?')} min · "
                    f"Exercises: {front.get('exercises', '?')} min"]
        for key, heading in (("questions", "Questions"), ("objectives", "Objectives")):
            if front.get(key):
                overview.append(f"**{heading}**\n\n" + "\n".join(f"- {self.prose(item)}"
                                                                 for item in front[key]))
        self.cells.append(Cell("markdown", "\n\n".join(overview), 1))
        self.body(self.parsed.body_start + 1, len(self.parsed.lines) + 1, 0, 0)
        self.flush()
        if front.get("keypoints"):
            self.cells.append(Cell("markdown", "## Key points\n\n" + "\n".join(
                f"- {self.prose(item)}" for item in front["keypoints"]), len(self.parsed.lines)))
        return self.cells

    def header(self, number: int, title: str) -> str:
        """The first cell: what the notebook is, where the lesson lives, how to work."""
        lesson = self.lesson.site.get("title", "this lesson")
        return (f"# {number}. {title}\n\n"
                f"This notebook is episode {number} of the lesson *{lesson}*: the episode's text, "
                "code, challenges and key points. The lesson's website is "
                f"<{self.lesson.url}>; this episode is at "
                f"<{self.lesson.episode_url(self.episode)}>."
                "\n\n**How to work.** Run the cells from top to bottom (Shift+Enter runs one cell "
                "and moves on); the outputs stored here are what you should see. Try each "
                "challenge before you open its solution: solutions are folded. Click "
                "**Solution** to open one, and click the ⋯ of a folded code cell to show its "
                "code and output; it runs like any other cell.")

    def body(self, start: int, stop: int, depth: int, level: int) -> None:
        """Render episode lines ``start`` to ``stop - 1`` (1-based), of quote depth ``depth``."""
        number = start
        while number < stop:
            quote = self.quotes.get((number, depth + 1))
            code = self.codes.get(number)
            if quote is not None:
                self.quote(quote, level)
                number = quote.end + 1
            elif code is not None and code.depth == depth:
                number = self.code(code, level)
            else:
                self.line(number, lessoncheck._strip_markers(self.parsed.lines[number - 1],
                                                             depth)[1], depth, level)
                number += 1

    def line(self, number: int, content: str, depth: int, level: int) -> None:
        stripped = content.strip()
        if stripped.startswith("{%") or lessoncheck._IAL.match(stripped) \
                or number in self.definitions:
            return
        if depth == 0 and _HEADING.match(content):
            self.flush()
        image = _IMAGE.match(stripped)
        if image:
            self.attachments[image["name"]] = self.lesson.root / FIG_DIR / image["name"]
            content = f"![{image['alt']}](attachment:{image['name']})"
        self.add(number, self.prose(content), level)

    def prose(self, text: str) -> str:
        """A line of prose with links resolved for a reader outside the website."""
        parts, last = [], 0
        for code in lessoncheck._INLINE_CODE.finditer(text):
            parts += [self.links_in(text[last:code.start()]), code.group(0)]
            last = code.end()
        return "".join(parts + [self.links_in(text[last:])])

    def links_in(self, text: str) -> str:
        text = _RELATIVE_LINK.sub(f"]({self.lesson.url}", self.lesson.resolve(text))

        def target(match: re.Match) -> str:
            name = lessoncheck._normalise_ref(match.group(2) or match.group(1))
            url = self.links.get(name)
            return match.group(0) if url is None else f"{match.group(0).split('][')[0]}]({url})"

        return lessoncheck._REF_LINK.sub(target, text)

    def quote(self, block: lessoncheck.Block, level: int) -> None:
        kind = (block.classes or ["callout"])[0]
        stop = block.end if block.classes else block.end + 1
        if kind == "solution":
            self.solution(block, stop)
            return
        self.flush()
        label = QUOTE_LABELS.get(kind, kind.capitalize())
        first = lessoncheck._strip_markers(self.parsed.lines[block.line - 1], block.depth)[1]
        heading = _HEADING.match(first)
        title = f"{label}: {self.prose(heading['title'])}" if heading else label
        self.add(block.line, f"### {title}", level + 1)
        self.body(block.line + 1 if heading else block.line, stop, block.depth, level + 1)
        self.flush()

    def solution(self, block: lessoncheck.Block, stop: int) -> None:
        self.flush()
        if any(_runnable(b) for b in _walk(block.children)):
            self.cells.append(Cell("code", WORK_CELL, block.line))
        first = lessoncheck._strip_markers(self.parsed.lines[block.line - 1], block.depth)[1]
        heading = _HEADING.match(first)
        self.summary = self.prose(heading["title"]) if heading else "Solution"
        self.body(block.line + 1 if heading else block.line, stop, block.depth, 0)
        self.flush()
        self.summary = None

    def code(self, block: lessoncheck.Block, level: int) -> int:
        """Render a code block; return the episode line after it (and after its outputs)."""
        if _runnable(block):
            self.flush(code_follows=True)
            folded = self.summary is not None
            source = normalise("\n".join(block.lines))
            cell = Cell("code", f"{SOLUTION_CODE_HEADER}\n{source}" if folded else source,
                        block.line, [c for c in block.classes if c in CELL_TAGS],
                        depth=block.depth, folded=folded)
            _trailing(self.parsed, block, cell, self.codes)
            self.cells.append(cell)
            return max(block.end, cell.replace.stop) + 1
        classes = block.classes or []
        language = next((FENCE_LANGUAGES[c] for c in classes if c in FENCE_LANGUAGES), "")
        fence = _fence(block.lines)
        for offset, text in enumerate([fence + language, *block.lines, fence]):
            self.add(block.line + offset, text, level)
        return block.end + 1


def episode_cells(episode: Path, parsed: lessoncheck.ParsedFile | None = None,
                  lesson: Lesson | None = None) -> list[Cell]:
    """The notebook cells that an episode defines, with the outputs it shows.

    Parameters
    ----------
    episode
        ``_episodes/NN-slug.md``.
    parsed
        The episode as ``lessoncheck.parse_markdown`` reads it; read here if not given.
    lesson
        The lesson's address and links; read from the episode's lesson if not given.

    Returns
    -------
    list of Cell
        Markdown and code cells, in the episode's order.
    """
    parsed = parsed or lessoncheck.parse_markdown(episode)
    lesson = lesson or Lesson.read(episode.resolve().parents[1])
    return _Renderer(episode, parsed, lesson).render()


def has_notebook(episode: Path) -> bool:
    """Whether an episode has runnable Python, and so a notebook."""
    return any(c.replace is not None for c in episode_cells(episode))


def _attachment(path: Path) -> dict[str, str]:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return {kind: base64.b64encode(path.read_bytes()).decode()}


def build(episode: Path) -> nbformat.NotebookNode:
    """The notebook of an episode, with cells but no outputs."""
    cells = []
    for index, spec in enumerate(episode_cells(episode)):
        if spec.kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(spec.source)
            if spec.attachments:
                cell.attachments = {name: _attachment(path)
                                    for name, path in spec.attachments.items()}
        else:
            cell = nbformat.v4.new_code_cell(spec.source)
            if spec.tags:
                cell.metadata["tags"] = list(spec.tags)
            if spec.folded:
                cell.metadata.update(json.loads(json.dumps(FOLDED)))
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


#: The widgets of ``almat.views`` (anywidget's id of their class starts with this: they are
#: defined in ``almat.chemiscope_widgets``).
VIEW_ID_PREFIX = "almat.chemiscope_widgets."
#: What a saved 3-D view draws until its cell runs again, in place of chemiscope's 3 MB module.
SAVED_VIEW_ESM = ('export default { render({ el }) { el.textContent = '
                  '"3-D view: run this cell to draw it."; } };')


def shrink_views(nb: nbformat.NotebookNode) -> int:
    """Store each 3-D view of ``almat.views`` as a line that says to run its cell; return how many.

    A view's saved state holds chemiscope's JavaScript (3.3 MB) and the crystal's data. Kept,
    they would make each view cost the notebook, and the wheel that ships it, 3.4 MB. The
    view's place (in the labeling app, too) is kept, so a reopened notebook shows the line
    (trusted) or the view's description (untrusted), never "model not found".
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    views = [model["state"] for model in state.values()
             if str(model.get("state", {}).get("_anywidget_id", "")).startswith(VIEW_ID_PREFIX)]
    for view in views:
        view.update(_esm=SAVED_VIEW_ESM, value="", settings={})
    return len(views)


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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def notebook_view(nb: nbformat.NotebookNode, stem: str) -> list[dict]:
    """What the consistency check compares, cell by cell, as the notebook holds it."""
    names = figure_names(stem, [len(f) for f in figures(nb)])
    return [{"type": cell.cell_type, "source": cell.source,
             "tags": list(cell.get("metadata", {}).get("tags", [])),
             "folded": all(cell.get("metadata", {}).get(k) == v for k, v in FOLDED.items()),
             "attachments": {name: _sha(base64.b64decode(next(iter(data.values()))))
                             for name, data in cell.get("attachments", {}).items()},
             "output": text_output(cell) if cell.cell_type == "code" else "",
             "figures": names[i]} for i, cell in enumerate(nb.cells)]


def episode_view(cells: list[Cell]) -> list[dict]:
    """What the consistency check compares, cell by cell, as the episode defines it."""
    return [{"type": c.kind, "source": c.source, "tags": c.tags, "folded": c.folded,
             "attachments": {name: _sha(path.read_bytes()) if path.is_file() else "missing"
                             for name, path in c.attachments.items()},
             "output": c.output, "figures": [name for _, name in c.figures]} for c in cells]


def digest(view: list[dict]) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()


def write_back(episode: Path, nb: nbformat.NotebookNode,
               lesson: Lesson) -> list[tuple[str, bytes]]:
    """Put a run notebook's outputs into its episode; return the figures to write to ``fig/``.

    Each Python block gets its text output as a ``{: .output}`` block (none when it printed
    nothing) and one image line per figure, keeping the alt texts already there.
    """
    parsed = lessoncheck.parse_markdown(episode)
    lines = list(parsed.lines)
    cells = episode_cells(episode, parsed, lesson)
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
    shrink_views(nb)
    nb = renumber_widgets(nb, episode.stem)
    nb.metadata["almat"] = {"episode": f"_episodes/{episode.name}",
                            "digest": digest(notebook_view(nb, episode.stem))}
    nbformat.validate(nb)
    nbformat.write(nb, root / NOTEBOOK_DIR / f"{episode.stem}.ipynb")
    files = write_back(episode, nb, Lesson.read(root))
    fig_dir = root / FIG_DIR
    fig_dir.mkdir(exist_ok=True)
    for old in fig_dir.glob(f"{episode.stem}-*.png"):
        old.unlink()
    for name, png in files:
        (fig_dir / name).write_bytes(png)


def check_episode(root: Path, episode: Path, lesson: Lesson | None = None) -> list[str]:
    """Drift between one episode, its notebook and its figures, as ``file:line: message``."""
    label = f"_episodes/{episode.name}"
    rerun = f"run `python scripts/make_notebooks.py {episode.name[:2]}`"
    path = root / NOTEBOOK_DIR / f"{episode.stem}.ipynb"
    cells = episode_cells(episode, lesson=lesson or Lesson.read(root))
    figs = sorted((root / FIG_DIR).glob(f"{episode.stem}-*.png"))
    if not any(c.replace is not None for c in cells):
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
        what = [key for key in ("type", "source", "tags", "folded", "attachments", "output",
                                "figures") if h[key] != w[key]]
        if what:
            kind = {"output": "output block", "figures": "image lines",
                    "attachments": "figure"}.get(what[0], "block")
            source = (f" (or {CONFIG_FILE}, or {lessoncheck.LINKS_FILE})"
                      if w["type"] == "markdown" else "")
            problems.append(f"{label}:{cell.line}: this {kind} differs from {NOTEBOOK_DIR}/"
                            f"{path.name}; the episode{source} was edited without "
                            f"regenerating: {rerun}")
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
    lesson = Lesson.read(root)
    problems = [p for episode in episodes for p in check_episode(root, episode, lesson)]
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
    try:
        Lesson.read(ROOT)
    except LessonConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
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
