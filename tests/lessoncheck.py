"""Check the lesson's Markdown against the rules in CONTRIBUTING.md.

Usage::

    python tests/lessoncheck.py [LESSON_ROOT]

The rules, each reported as ``file:line: message``:

- episodes are named ``NN-slug.md`` and numbered 01, 02, ... without gaps;
- an episode's front matter has exactly the keys title (str), teaching and
  exercises (int, minutes), questions, objectives and keypoints (lists of str);
  every other page has a front matter with a title (``index.md`` excepted);
- every blockquote carries one known class in a ``{: .class}`` line that
  directly follows it, and every fenced code block one known code class;
- every challenge holds a solution nested inside it, every solution sits in a
  challenge, and both start with a ``##`` heading (the website folds solutions
  behind that heading);
- an episode's last line is ``{% include links.md %}``;
- reference-style links ``[text][name]`` resolve to a definition in the file or,
  when the file includes it, in ``_includes/links.md``;
- every image has alt text (``![what it shows](file)`` or ``<img alt="...">``) that
  does not start with TODO (scripts/make_notebooks.py inserts a TODO alt for a new
  figure, for the author to replace);
- no line is longer than 100 characters, except inside code blocks, in tables,
  in link definitions and in lines that hold one image;
- a numbered list starts at 1 (kramdown numbers every list from 1, so a solution
  that begins "2. ..." shows as "1." on the website: write "**Answer 2.**"), and
  no list item begins with another number or bullet ("1. 924. 2. ..." is three
  nested lists).

It also enforces what the Carpentries' own checker (``lesson_check.py`` of
carpentries/styles, run as ``make lesson-check``) demands, so that both agree:

- the required files exist, and no ``.nojekyll``;
- ``_config.yml`` has ``kind: lesson``, a known ``carpentry``, a ``title``, an
  ``email`` key and the three Carpentries defaults (root ``.`` and layout
  ``page`` for all; root ``..`` and layout ``episode`` for episodes; root ``..``
  and layout ``page`` for extras);
- ``_includes/links.md`` holds only link definitions (besides blank lines,
  one-line HTML comments and includes), without duplicate names or URLs;
- every top-level page, every episode and every extra has front matter, except
  ``README.md`` and ``CONTRIBUTING.md``, which are plain Markdown for the
  repository and must not even contain ``---`` (the Carpentries' checker reads
  the text between the first two as front matter); their code blocks take the
  language from the fence (GitHub's way);
- ``index.md`` has layout ``lesson`` and root ``.``; ``reference.md`` has layout
  ``reference``; every other top-level page sets root ``..`` because, with
  pretty permalinks, it is served one folder down (``setup.md`` at ``/setup/``).

The parser understands the subset of kramdown that the lesson uses: ``>``
blockquotes (nested with ``> >``), fenced code blocks (``~~~`` or backticks),
and block attribute lines ``{: .class}``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: Front-matter keys of an episode and the type of each value.
EPISODE_KEYS: dict[str, type] = {
    "title": str,
    "teaching": int,
    "exercises": int,
    "questions": list,
    "objectives": list,
    "keypoints": list,
}
#: Classes a blockquote may carry.
BLOCKQUOTE_CLASSES = frozenset(
    {
        "challenge",
        "solution",
        "callout",
        "keypoints",
        "objectives",
        "prereq",
        "discussion",
        "checklist",
        "testimonial",
        "quotation",
    }
)
#: Classes a fenced code block may carry; exactly one per block.
CODE_CLASSES = frozenset(
    {"language-python", "language-bash", "language-yaml", "language-text", "output", "error"}
)
#: Extra classes allowed next to a code class, and the code classes they may accompany.
#: ``no-run`` marks Python shown in an episode that no notebook runs; ``nbval-ignore-output``
#: Python whose output nbval does not compare (see scripts/make_notebooks.py).
CODE_MODIFIERS: dict[str, frozenset[str]] = {"no-run": frozenset({"language-python"}),
                                             "nbval-ignore-output": frozenset({"language-python"})}
LINKS_INCLUDE = "{% include links.md %}"
#: Files the Carpentries' checker requires.
REQUIRED_FILES = ("CODE_OF_CONDUCT.md", "CONTRIBUTING.md", "LICENSE.md", "README.md",
                  "_extras/discuss.md", "_extras/guide.md", "index.md", "reference.md", "setup.md")
#: Top-level Markdown files that are plain Markdown for the repository, not Jekyll pages.
PLAIN_PAGES = frozenset({"README.md", "CONTRIBUTING.md"})
#: Front-matter values some top-level pages must have.
PAGE_FRONT_MATTER: dict[str, dict[str, str]] = {
    "index.md": {"layout": "lesson", "root": "."},
    "reference.md": {"layout": "reference", "root": ".."},
}
#: What every other top-level page must have (served one folder down with pretty permalinks).
DEFAULT_PAGE_FRONT_MATTER = {"root": ".."}
#: Values ``_config.yml`` must have; a tuple lists the allowed values, None any value.
CONFIG_VALUES: dict[str, tuple[str, ...] | None] = {
    "kind": ("lesson",),
    "carpentry": ("swc", "dc", "lc", "cp", "incubator"),
    "title": None,
    "email": None,
}
#: The ``defaults`` entries of ``_config.yml`` that the Carpentries' layouts rely on.
CONFIG_DEFAULTS = (
    {"values": {"root": ".", "layout": "page"}},
    {"values": {"root": "..", "layout": "episode"}, "scope": {"type": "episodes", "path": ""}},
    {"values": {"root": "..", "layout": "page"}, "scope": {"type": "extras", "path": ""}},
)
UNWANTED_FILES = (".nojekyll",)
MAX_LINE_LENGTH = 100
EPISODE_DIR = "_episodes"
LINKS_FILE = Path("_includes") / "links.md"

_EPISODE_NAME = re.compile(r"^(\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*\.md$")
_QUOTE_MARKER = re.compile(r"^ {0,3}> ?")
_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_IAL = re.compile(r"^\{:\s*([^}]*)\}\s*$")
_REF_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\[([^\[\]]*)\]")
#: A reference-link definition: its name and its target (which may start with Liquid).
_LINK_DEFINITION = re.compile(r"^ {0,3}\[([^\[\]]+)\]:\s*(\{\{.*?\}\}\S*|\S+)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(")
_IMAGE_LINE = re.compile(r"^!\[[^\]]*\]\([^)]*\)$")
_LIQUID = re.compile(r"\{%.*?%\}|\{\{.*?\}\}")
_IMAGE = re.compile(r"!\[([^\]]*)\]")
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.I)
_IMG_ALT = re.compile(r"""\balt\s*=\s*("([^"]*)"|'([^']*)')""", re.I)
_HTML_COMMENT_LINE = re.compile(r"^<!--.*-->$")
#: A list item at the left margin (after any blockquote markers): its number, or None for a
#: bullet, and its text.
_LIST_ITEM = re.compile(r"^(?:(?P<number>\d+)\.|[-*+])[ \t]+(?P<text>.*)$")


@dataclass
class Block:
    """A blockquote or a fenced code block of a Markdown file.

    Attributes
    ----------
    kind
        ``"quote"`` or ``"code"``.
    line
        Line number (1-based, in the whole file) where the block starts.
    depth
        Blockquote nesting level: of the quote itself, or of the text holding the code.
    classes
        Classes from the ``{: ...}`` line after the block; None when it has none.
    children
        Blocks directly inside a blockquote.
    lines
        A code block's content, or a blockquote's text lines (markers removed).
    end
        Line number of the block's last line: its class line if it has one, else its closing
        fence or last quoted line.
    """

    kind: str
    line: int
    depth: int
    classes: list[str] | None = None
    children: list[Block] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    parent: Block | None = field(default=None, repr=False)
    end: int = 0


@dataclass
class CodeBlock:
    """A fenced code block as the consistency test needs it."""

    line: int
    classes: list[str]
    text: str
    in_solution: bool


@dataclass
class ParsedFile:
    """A Markdown file split into front matter and blocks."""

    path: Path
    lines: list[str]
    front_matter: dict | None
    body_start: int
    blocks: list[Block]
    code_spans: set[int]
    problems: list[str]


def _strip_markers(line: str, limit: int | None = None) -> tuple[int, str]:
    """Remove up to ``limit`` blockquote markers; return (markers removed, rest)."""
    depth = 0
    while limit is None or depth < limit:
        match = _QUOTE_MARKER.match(line)
        if not match:
            break
        line = line[match.end():]
        depth += 1
    return depth, line


def _ial_classes(text: str) -> list[str] | None:
    """The classes of a block attribute line such as ``{: .challenge}``, or None."""
    match = _IAL.match(text.strip())
    if not match:
        return None
    return [token[1:] for token in match.group(1).split() if token.startswith(".")]


def _walk(blocks: list[Block]):
    for block in blocks:
        yield block
        yield from _walk(block.children)


def parse_markdown(path: str | Path, label: str | None = None, plain: bool = False) -> ParsedFile:
    """Read a lesson Markdown file into front matter and a tree of blocks.

    Parameters
    ----------
    path
        The file.
    label
        How the file is named in messages; ``path`` as given by default.
    plain
        The file is plain Markdown for the repository (README.md): a language
        on a code fence (```` ```bash ````) gives the block its class.

    Returns
    -------
    ParsedFile
        With ``problems`` listing what could not be parsed (bad front matter,
        unclosed code blocks, blocks without a class line).
    """
    path = Path(path)
    label = label or str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    problems: list[str] = []
    front_matter = None
    body_start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            problems.append(f"{label}:1: front matter is not closed by a '---' line")
        else:
            try:
                front_matter = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as exc:
                problems.append(f"{label}:1: front matter is not valid YAML: {exc}")
            else:
                if not isinstance(front_matter, dict):
                    problems.append(f"{label}:1: front matter must be a YAML mapping")
                    front_matter = None
            body_start = end + 1

    roots: list[Block] = []
    stack: list[Block] = []  # open blockquotes, innermost last
    fence: tuple[Block, str] | None = None  # open code block and its fence marker
    awaiting: list[Block] = []  # blocks that closed on the previous line, waiting for a class
    code_spans: set[int] = set()

    def add(block: Block) -> None:
        block.parent = stack[-1] if stack else None
        (stack[-1].children if stack else roots).append(block)

    def unclassed(block: Block) -> str:
        what = "blockquote" if block.kind == "quote" else "code block"
        example = "{: .challenge}" if block.kind == "quote" else "{: .language-python}"
        return (f"{label}:{block.line}: {what} has no class; put a line such as {example} "
                "directly after its last line")

    for index in range(body_start, len(lines)):
        number = index + 1
        raw = lines[index]
        if fence is not None:
            block, marker = fence
            depth, content = _strip_markers(raw, block.depth)
            if depth < block.depth and raw.strip():
                problems.append(f"{label}:{block.line}: code block is not closed before its "
                                "blockquote ends")
                fence = None
            else:
                code_spans.add(number)
                closing = _FENCE.match(content.strip())
                if closing and closing.group(1)[0] == marker[0] and \
                        len(closing.group(1)) >= len(marker) and not closing.group(2).strip():
                    fence = None
                    block.end = number
                    awaiting = [] if block.classes else [block]
                else:
                    block.lines.append(content)
                continue

        depth, content = _strip_markers(raw)
        while stack and stack[-1].depth > depth:
            stack[-1].end = number - 1
            awaiting.append(stack.pop())
        classes = _ial_classes(content)
        if classes is not None:
            # A class line belongs to the quote one level deeper that ends here, or else to
            # the code block that ended on the line before, at this depth.
            targets = [b for b in awaiting if b.kind == "quote" and b.depth == depth + 1] or \
                      [b for b in awaiting if b.kind == "code" and b.depth == depth]
            if targets:
                targets[0].classes = classes
                targets[0].end = number
        for block in awaiting:
            if block.classes is None:
                problems.append(unclassed(block))
        awaiting = []
        if classes is not None:
            continue
        while len(stack) < depth:
            block = Block("quote", number, len(stack) + 1)
            add(block)
            stack.append(block)
        if stack:
            stack[-1].lines.append(content)
        opening = _FENCE.match(content.strip())
        if opening and not content.startswith("    "):
            block = Block("code", number, depth)
            add(block)
            code_spans.add(number)
            fence = (block, opening.group(1))
            if plain and opening.group(2).strip():
                block.classes = [f"language-{opening.group(2).split()[0]}"]
            elif opening.group(2).strip():
                problems.append(f"{label}:{number}: code fence names a language "
                                f"('{opening.group(2).strip()}'); remove it and give the class in "
                                "a line such as {: .language-python} after the block")
    if fence is not None:
        problems.append(f"{label}:{fence[0].line}: code block is never closed")
        fence[0].end = len(lines)
    for block in stack:
        block.end = len(lines)
    for block in awaiting + stack[::-1]:
        if block.classes is None:
            problems.append(unclassed(block))
    return ParsedFile(path, lines, front_matter, body_start, roots, code_spans, problems)


def code_blocks(path: str | Path) -> list[CodeBlock]:
    """The fenced code blocks of a Markdown file, with their classes and context."""
    parsed = parse_markdown(path)
    result = []
    for block in _walk(parsed.blocks):
        if block.kind != "code":
            continue
        in_solution = False
        parent = block.parent
        while parent is not None:
            in_solution = in_solution or "solution" in (parent.classes or [])
            parent = parent.parent
        result.append(CodeBlock(block.line, block.classes or [], "\n".join(block.lines),
                                in_solution))
    return result


def link_definitions(lines: list[str], skip: set[int] = frozenset(),
                     normalise: bool = True) -> set[str]:
    """Names of the reference-link definitions among ``lines``.

    Normalised (lower case, single spaces) as kramdown matches them within one
    file, or as written: the Carpentries' checker looks names up in
    ``_includes/links.md`` exactly.
    """
    return set(link_targets(lines, skip, normalise))


def link_targets(lines: list[str], skip: set[int] = frozenset(),
                 normalise: bool = True) -> dict[str, str]:
    """The reference-link definitions among ``lines``: name to target, as written.

    Names are normalised as for :func:`link_definitions`; a name defined twice keeps its
    first target.
    """
    targets: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if number in skip:
            continue
        match = _LINK_DEFINITION.match(_strip_markers(line)[1])
        if match:
            name = _normalise_ref(match.group(1)) if normalise else match.group(1)
            targets.setdefault(name, match.group(2))
    return targets


def _normalise_ref(name: str) -> str:
    return " ".join(name.lower().split())


def _check_blocks(parsed: ParsedFile, label: str, plain: bool = False) -> list[str]:
    problems = []
    for block in _walk(parsed.blocks):
        if block.classes is None:
            continue  # already reported by the parser
        where = f"{label}:{block.line}"
        if block.kind == "quote":
            unknown = [c for c in block.classes if c not in BLOCKQUOTE_CLASSES]
            if unknown or len(block.classes) != 1:
                problems.append(f"{where}: blockquote class {block.classes} is not one of "
                                f"{', '.join(sorted(BLOCKQUOTE_CLASSES))}")
                continue
            kind = block.classes[0]
            if kind in ("challenge", "solution"):
                first = next((t for t in block.lines if t.strip()), "")
                if not first.startswith("## "):
                    problems.append(f"{where}: a {kind} must start with a '## Title' line")
            if kind == "challenge" and not any(
                c.kind == "quote" and c.classes == ["solution"] for c in block.children
            ):
                problems.append(f"{where}: challenge has no solution; nest a '> > ## Solution' "
                                "blockquote with '> {: .solution}' inside it")
            if kind == "solution" and (block.parent is None or block.parent.classes != ["challenge"]):
                problems.append(f"{where}: solution is not nested inside a challenge")
        else:
            base = [c for c in block.classes
                    if c in CODE_CLASSES or (plain and c.startswith("language-"))]
            extra = [c for c in block.classes if c not in CODE_CLASSES]
            if len(base) != 1:
                hint = " (use language-python, not python)" if "python" in block.classes else ""
                problems.append(f"{where}: code block classes {block.classes} must include "
                                f"exactly one of {', '.join(sorted(CODE_CLASSES))}{hint}")
                continue
            for cls in extra:
                if base[0] not in CODE_MODIFIERS.get(cls, ()):
                    problems.append(f"{where}: class '{cls}' is not allowed on a {base[0]} "
                                    "code block")
    return problems


def _check_links_and_lengths(parsed: ParsedFile, label: str, shared: set[str]) -> list[str]:
    problems = []
    includes_links = any(line.strip() == LINKS_INCLUDE for line in parsed.lines)
    known = link_definitions(parsed.lines, parsed.code_spans)
    shared = shared if includes_links else set()
    in_raw = False
    for number, line in enumerate(parsed.lines, start=1):
        if number in parsed.code_spans:
            continue
        content = _strip_markers(line)[1]
        is_table = content.lstrip().startswith("|")
        is_definition = bool(_LINK_DEFINITION.match(content))
        is_image = bool(_IMAGE_LINE.match(content.strip()))
        if len(line) > MAX_LINE_LENGTH and not (is_table or is_definition or is_image):
            problems.append(f"{label}:{number}: line is {len(line)} characters long; wrap it "
                            f"at {MAX_LINE_LENGTH}")
        if "{% raw %}" in line:
            in_raw = True
        prose = _INLINE_CODE.sub("", _LIQUID.sub("", line))
        problems += _check_images(prose, f"{label}:{number}")
        if not in_raw and number > parsed.body_start:
            for match in _REF_LINK.finditer(prose):
                name = match.group(2) or match.group(1)
                if _normalise_ref(name) not in known and name not in shared:
                    where = "this file or _includes/links.md" if includes_links else (
                        f"this file (it does not include {LINKS_FILE})")
                    problems.append(f"{label}:{number}: link reference '[{name}]' is not "
                                    f"defined in {where}")
        if "{% endraw %}" in line:
            in_raw = False
    return problems


def _check_lists(parsed: ParsedFile, label: str) -> list[str]:
    """Numbered lists that kramdown renders other than as written.

    kramdown gives every ``<ol>`` the numbers 1, 2, ..., whatever the first item says, and
    reads an item whose text starts with a list marker as a nested list.
    """
    problems = []
    in_list = False  # the previous non-blank line belongs to a list at the margin
    blank = False
    depth = 0
    for number, line in enumerate(parsed.lines, start=1):
        if number <= parsed.body_start:
            continue
        if number in parsed.code_spans:
            in_list = blank = False
            continue
        quote_depth, content = _strip_markers(line)
        if quote_depth != depth:
            depth, in_list, blank = quote_depth, False, False
        if not content.strip():
            blank = True
            continue
        item = _LIST_ITEM.match(content)
        if item:
            if item["number"] is not None and not in_list and int(item["number"]) != 1:
                problems.append(f"{label}:{number}: a numbered list starting at "
                                f"{item['number']} shows as 1 on the website (kramdown numbers "
                                f"every list from 1); write '**Answer {item['number']}.**' or "
                                "start the list at 1")
            if _LIST_ITEM.match(item["text"]):
                problems.append(f"{label}:{number}: this list item begins with another list "
                                "marker, which kramdown renders as a nested list; put each "
                                "item on its own line")
            in_list = True
        elif content.startswith((" ", "\t")) and in_list:
            pass  # an item's continuation
        elif blank or content.startswith("#"):
            in_list = False
        blank = False
    return problems


def _check_images(prose: str, where: str) -> list[str]:
    """Images without alt text on one line of prose (code spans removed)."""
    problems = []
    for match in _IMAGE.finditer(prose):
        alt = match.group(1).strip()
        if not alt or alt.upper().startswith("TODO"):
            problems.append(f"{where}: image has no alt text; say what it shows in ![...]")
    for tag in _IMG_TAG.findall(prose):
        alt = _IMG_ALT.search(tag)
        if alt is None or not (alt.group(2) or alt.group(3) or "").strip():
            problems.append(f'{where}: <img> has no alt text; add alt="what it shows"')
    return problems


def _check_episode_front_matter(parsed: ParsedFile, label: str) -> list[str]:
    fm = parsed.front_matter
    if fm is None:
        return [] if parsed.problems else [f"{label}:1: episode has no '---' front matter"]
    problems = []
    for key, kind in EPISODE_KEYS.items():
        if key not in fm:
            problems.append(f"{label}:1: front matter lacks '{key}'")
            continue
        value = fm[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{label}:1: front matter '{key}' must be {kind.__name__}, "
                            f"not {type(value).__name__} ({value!r})")
        elif kind is int and value < 0:
            problems.append(f"{label}:1: front matter '{key}' must not be negative")
        elif kind is list and (not value or not all(isinstance(v, str) and v for v in value)):
            problems.append(f"{label}:1: front matter '{key}' must be a non-empty list of "
                            "strings")
        elif kind is str and not value.strip():
            problems.append(f"{label}:1: front matter '{key}' is empty")
    for key in fm:
        if key not in EPISODE_KEYS:
            problems.append(f"{label}:1: unknown front matter key '{key}' (allowed: "
                            f"{', '.join(EPISODE_KEYS)})")
    return problems


def check_file(path: str | Path, shared_links: set[str], label: str | None = None,
               episode: bool = False) -> list[str]:
    """Check one Markdown file.

    Parameters
    ----------
    path
        The file.
    shared_links
        Names defined in ``_includes/links.md``, as written there.
    label
        How the file is named in messages.
    episode
        Apply the episode rules (front matter keys and types, last line).

    Returns
    -------
    list of str
        ``file:line: message`` for each problem; empty if the file passes.
    """
    path = Path(path)
    label = label or str(path)
    top_level = path.parent.name not in (EPISODE_DIR, "_extras")
    plain = top_level and path.name in PLAIN_PAGES
    parsed = parse_markdown(path, label, plain=plain)
    problems = list(parsed.problems)
    if episode:
        problems += _check_episode_front_matter(parsed, label)
        last = next((i for i in range(len(parsed.lines) - 1, -1, -1) if parsed.lines[i].strip()),
                    None)
        if last is None or parsed.lines[last].strip() != LINKS_INCLUDE:
            problems.append(f"{label}:{(last or 0) + 1}: the last line must be '{LINKS_INCLUDE}'")
    elif plain:
        problems += _check_plain_page(parsed, label)
    elif parsed.front_matter is None and not parsed.problems:
        problems.append(f"{label}:1: page has no '---' front matter, so Jekyll copies it "
                        "unrendered")
    elif parsed.front_matter is not None:
        problems += _check_page_front_matter(parsed.front_matter, label, path.name, top_level)
    problems += _check_blocks(parsed, label, plain)
    problems += _check_links_and_lengths(parsed, label, shared_links)
    if not plain:
        problems += _check_lists(parsed, label)
    return problems


def _check_plain_page(parsed: ParsedFile, label: str) -> list[str]:
    """README.md and CONTRIBUTING.md: no front matter, and no ``---`` that would look like one."""
    for number, line in enumerate(parsed.lines, start=1):
        if "---" in line:
            return [f"{label}:{number}: '---' in a plain Markdown file; the Carpentries' checker "
                    "takes the text between two of them for front matter (write a table rule as "
                    "|--|--|)"]
    return []


def _check_page_front_matter(front_matter: dict, label: str, name: str,
                             top_level: bool) -> list[str]:
    problems = []
    if name != "index.md" and not front_matter.get("title"):
        problems.append(f"{label}:1: front matter lacks 'title'")
    if not top_level:
        return problems
    for key, value in PAGE_FRONT_MATTER.get(name, DEFAULT_PAGE_FRONT_MATTER).items():
        if front_matter.get(key) != value:
            why = " (served at /NAME/ with pretty permalinks)" if key == "root" else ""
            problems.append(f"{label}:1: front matter must set {key}: {value!r}{why}, "
                            f"not {front_matter.get(key)!r}")
    return problems


def check_config(root: str | Path) -> list[str]:
    """Check ``_config.yml`` for the keys and defaults the Carpentries' layouts rely on."""
    path = Path(root) / "_config.yml"
    if not path.is_file():
        return ["_config.yml:1: file is missing"]
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return [f"_config.yml:1: not valid YAML: {exc}"]
    problems = []
    for key, allowed in CONFIG_VALUES.items():
        if key not in config:
            problems.append(f"_config.yml:1: '{key}' is missing")
        elif allowed is not None and config[key] not in allowed:
            problems.append(f"_config.yml:1: '{key}' is {config[key]!r}, not one of "
                            f"{', '.join(allowed)}")
    for default in CONFIG_DEFAULTS:
        if default not in (config.get("defaults") or []):
            problems.append(f"_config.yml:1: 'defaults' lacks the entry {default}")
    return problems


def check_links_file(path: Path, label: str = str(LINKS_FILE)) -> list[str]:
    """``_includes/links.md`` holds only link definitions, each name and URL once."""
    problems = []
    names: set[str] = set()
    urls: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or _HTML_COMMENT_LINE.match(text) or re.match(r"^\{% include \S+ %\}$", text):
            continue
        match = re.match(r"^\[([^\]]+)\]:\s*(.+)", line)
        if not match:
            problems.append(f"{label}:{number}: only link definitions, one-line HTML comments "
                            f"and includes may stand here, not {text!r}")
            continue
        name, url = match.group(1), match.group(2)
        if name in names:
            problems.append(f"{label}:{number}: link name '{name}' is defined twice")
        if url in urls:
            problems.append(f"{label}:{number}: URL {url} is defined twice")
        names.add(name)
        urls.add(url)
    return problems


def episode_files(root: str | Path) -> list[Path]:
    """The episode files of a lesson, sorted by name."""
    return sorted((Path(root) / EPISODE_DIR).glob("*.md"))


def check_numbering(names: list[str]) -> list[str]:
    """Check that episode file names are ``NN-slug.md`` numbered 01, 02, ... without gaps."""
    problems = []
    numbers = []
    for name in sorted(names):
        match = _EPISODE_NAME.match(name)
        if not match:
            problems.append(f"{EPISODE_DIR}/{name}:1: episode file name must look like "
                            "'NN-lower-case-slug.md'")
            continue
        numbers.append((int(match.group(1)), name))
    for expected, (number, name) in enumerate(numbers, start=1):
        if number != expected:
            problems.append(f"{EPISODE_DIR}/{name}:1: episode number {number:02d} breaks the "
                            f"sequence; expected {expected:02d}")
            break
    return problems


def check_lesson(root: str | Path = ".") -> list[str]:
    """Check every episode and page of the lesson under ``root``, and its configuration.

    Returns
    -------
    list of str
        ``file:line: message`` for each problem, files relative to ``root``;
        empty if the lesson passes.
    """
    root = Path(root)
    problems = check_config(root)
    for name in REQUIRED_FILES:
        if not (root / name).is_file():
            problems.append(f"{name}:1: file is missing")
    for name in UNWANTED_FILES:
        if (root / name).exists():
            problems.append(f"{name}:1: remove this file (Jekyll must process the lesson)")
    links_path = root / LINKS_FILE
    shared: set[str] = set()
    if links_path.is_file():
        problems += check_links_file(links_path)
        shared = link_definitions(links_path.read_text(encoding="utf-8").splitlines(),
                                  normalise=False)
    else:
        problems.append(f"{LINKS_FILE}:1: file is missing")
    episodes = episode_files(root)
    if not episodes:
        problems.append(f"{EPISODE_DIR}:1: no episodes found")
    problems += check_numbering([p.name for p in episodes])
    for path in episodes:
        problems += check_file(path, shared, str(path.relative_to(root)), episode=True)
    for path in sorted(root.glob("*.md")) + sorted((root / "_extras").glob("*.md")):
        problems += check_file(path, shared, str(path.relative_to(root)))
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    problems = check_lesson(root)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in the lesson under {root}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
