"""The lesson passes its own checker, and the checker catches each kind of broken episode.

Each rule is tested by copying the real lesson to a temporary folder, breaking one
thing in one file, and asserting that the checker reports exactly that.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

import lessoncheck

ROOT = Path(__file__).resolve().parents[1]
EPISODE = "_episodes/02-enumeration.md"


def test_real_lesson_passes():
    problems = lessoncheck.check_lesson(ROOT)
    assert problems == [], "\n".join(problems)


def test_real_lesson_has_seven_episodes():
    episodes = lessoncheck.episode_files(ROOT)
    assert [p.name[:2] for p in episodes] == ["01", "02", "03", "04", "05", "06", "07"]
    for path in episodes:
        assert front_matter(path)["teaching"] > 0, path.name


def test_real_schedule_holds_the_half_day_it_claims():
    # Summed here from the episodes' front matter, independently of the website's Liquid.
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    work = sum(front_matter(p)["teaching"] + front_matter(p)["exercises"]
               for p in lessoncheck.episode_files(ROOT))
    assert work + config["break_minutes"] <= config["workshop_minutes"] <= HALF_DAY
    assert schedule_problems(ROOT) == []


# --- what the schedule, the outline and the episodes promise each other (issue 19) -----------

#: The most minutes a half-day workshop can take.
HALF_DAY = 240
OPTIONAL = "## If you have time"
OUTLINE = "_extras/outline.md"
_OUTLINE_ROW = re.compile(r"^\|\s*(\d+):(\d\d)" + r"\s*\|\s*([^|]*?)" * 3 + r"\s*\|$")


def front_matter(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8").split("---")[1])


def duration(minutes: int) -> str:
    """How the pages write a duration: 3 h 30 min."""
    return f"{minutes // 60} h {minutes % 60} min"


def main_part(path: Path) -> list[lessoncheck.Block]:
    """The top-level blockquotes of an episode before its 'If you have time' part."""
    parsed = lessoncheck.parse_markdown(path)
    end = parsed.lines.index(OPTIONAL) + 1 if OPTIONAL in parsed.lines else len(parsed.lines) + 1
    return [b for b in parsed.blocks if b.kind == "quote" and b.line < end]


def title(block: lessoncheck.Block) -> str:
    return next(t for t in block.lines if t.strip()).removeprefix("## ").strip()


def exercises_in_schedule(path: Path) -> list[str]:
    """Titles of the challenges, discussions and checkpoints in an episode's main part."""
    return [title(b) for b in main_part(path)
            if b.classes in (["challenge"], ["discussion"])
            or (b.classes == ["callout"] and title(b).startswith("Checkpoint:"))]


def schedule_problems(root: Path) -> list[str]:
    """Where the episodes' minutes, the break, the stated half day and the outline disagree."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    episodes = lessoncheck.episode_files(root)
    fronts = [front_matter(p) for p in episodes]
    work = sum(f["teaching"] + f["exercises"] for f in fronts)
    length, pause, after = (config["workshop_minutes"], config["break_minutes"],
                            config["break_after_episode"])
    problems = []
    if work + pause > length:
        problems.append(f"episodes take {work} min and the break {pause}: more than the "
                        f"{length} min of the workshop")
    if length > HALF_DAY:
        problems.append(f"a workshop of {length} min is no half day")
    for page, claims in {"index.md": (length, work), "_extras/guide.md": (length, work),
                         OUTLINE: (length,)}.items():
        text = " ".join((root / page).read_text(encoding="utf-8").split())
        problems += [f"{page} does not say {duration(m)}" for m in claims
                     if duration(m) not in text]
    rows = [m.groups() for m in map(_OUTLINE_ROW.match,
                                     (root / OUTLINE).read_text(encoding="utf-8").splitlines()) if m]
    expected, clock = [], 0
    for number, (path, front) in enumerate(zip(episodes, fronts), start=1):
        expected.append((clock, f"{number} ", f"{front['teaching']} + {front['exercises']}"))
        clock += front["teaching"] + front["exercises"]
        if number == after:
            expected.append((clock, "Break", str(pause)))
            clock += pause
    expected.append((clock, "Finish", ""))
    if len(rows) != len(expected):
        return problems + [f"{OUTLINE} has {len(rows)} rows, not {len(expected)}"]
    episode_rows = iter(zip(episodes, fronts))
    for (hours, minutes, name, spent, items), (start, first, want) in zip(rows, expected):
        name = name.replace("&nbsp;", " ")
        if (int(hours) * 60 + int(minutes), spent) != (start, want) or not name.startswith(first):
            problems.append(f"{OUTLINE}: row {name!r} should start at {start // 60}:"
                            f"{start % 60:02d} and take {want!r}")
        if first[0].isdigit():
            path, front = next(episode_rows)
            listed = [re.fullmatch(r"(.*\S) (\d+)", item.strip()) for item in items.split(";")]
            if not all(listed):
                problems.append(f"{OUTLINE}: row {name!r} lists an exercise without minutes")
                continue
            if sum(int(m[2]) for m in listed) != front["exercises"]:
                problems.append(f"{OUTLINE}: the exercises of {name!r} do not add up to "
                                f"{front['exercises']} min")
            titles = [m[1].strip("*") for m in listed]
            if sorted(titles) != sorted(exercises_in_schedule(path)):
                problems.append(f"{OUTLINE}: {name!r} lists {titles}, the episode has "
                                f"{exercises_in_schedule(path)} before '{OPTIONAL}'")
    return problems


def test_a_schedule_longer_than_the_half_day_is_reported(lesson):
    edit(lesson / "_episodes/04-surrogates.md", "exercises: 10\n", "exercises: 40\n")
    problems = schedule_problems(lesson)
    assert any("more than the 210 min of the workshop" in p for p in problems), problems
    assert any("the exercises of '4 Surrogates' do not add up to 40 min" in p
               for p in problems), problems


def test_outline_row_that_disagrees_with_the_episode_is_reported(lesson):
    edit(lesson / OUTLINE, "What does the 0.56 tell you? 5", "What does the 0.56 tell you? 4")
    edit(lesson / OUTLINE, "| 0:45 |", "| 0:40 |")
    problems = schedule_problems(lesson)
    assert any("do not add up to 5 min" in p for p in problems), problems
    assert any("'3 Scoring' should start at 0:45" in p for p in problems), problems


def test_a_challenge_in_the_schedule_that_the_outline_does_not_pay_for(lesson):
    text = (lesson / EPISODE).read_text(encoding="utf-8")
    start = text.index("> ## From 924 to 4")
    block = text[start:text.index("{: .challenge}", start) + len("{: .challenge}\n")]
    text = text.replace(block, "").replace("## The lesson's candidates\n",
                                           block + "\n## The lesson's candidates\n")
    (lesson / EPISODE).write_text(text, encoding="utf-8")
    assert any("the episode has ['What does the 0.56 tell you?', 'From 924 to 4']" in p
               for p in schedule_problems(lesson))


def test_a_stated_length_that_is_not_the_configured_one(lesson):
    edit(lesson / "index.md", "3 h 30 min", "4 h")
    assert schedule_problems(lesson) == ["index.md does not say 3 h 30 min"]


def test_optional_exercises_come_last_and_keep_their_solutions():
    for path in lessoncheck.episode_files(ROOT):
        lines = path.read_text(encoding="utf-8").splitlines()
        headings = [line for line in lines if line.startswith("## ")]
        assert headings[-1] == OPTIONAL, path.name
        assert any(line.startswith("> ## ") for line in lines[lines.index(OPTIONAL):]), path.name


def test_sticky_note_checkpoints_after_setup_first_run_all_and_first_label():
    checkpoints = {path.name[:2]: [b for b in main_part(path) if b.classes == ["callout"]
                                   and title(b).startswith("Checkpoint:")]
                   for path in lessoncheck.episode_files(ROOT)}
    assert {k: len(v) for k, v in checkpoints.items() if v} == {"01": 1, "03": 1, "06": 1}
    where = {"01": "almat check-setup", "03": "Run All Cells", "06": "Look up in table"}
    for number, (block,) in ((k, v) for k, v in checkpoints.items() if v):
        text = " ".join(" ".join(block.lines).split())
        assert "**green** sticky note" in text and "**red**" in text, number
        assert where[number] in text, number


def test_every_challenge_of_the_real_lesson_has_a_solution():
    # Counted independently of the checker's parser: by the class lines themselves.
    for path in lessoncheck.episode_files(ROOT):
        text = path.read_text(encoding="utf-8")
        challenges = len(re.findall(r"^\{: \.challenge\}$", text, flags=re.M))
        solutions = len(re.findall(r"^> \{: \.solution\}$", text, flags=re.M))
        assert challenges == solutions, path.name


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    """A copy of the lesson's Markdown files and configuration, which passes the checker."""
    for folder in ("_episodes", "_extras"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "_includes").mkdir()
    shutil.copy(ROOT / lessoncheck.LINKS_FILE, tmp_path / lessoncheck.LINKS_FILE)
    for path in [*ROOT.glob("*.md"), ROOT / "_config.yml"]:
        shutil.copy(path, tmp_path / path.name)
    assert lessoncheck.check_lesson(tmp_path) == []
    return tmp_path


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace ``old`` by ``new`` in a file, insisting that ``old`` is there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def problems_in(root: Path, filename: str = EPISODE) -> list[str]:
    problems = lessoncheck.check_lesson(root)
    assert problems, "the broken lesson passed the checker"
    assert all(p.startswith(filename) for p in problems), problems
    return problems


def assert_reported(root: Path, message: str, filename: str = EPISODE, line: int | None = None):
    problems = problems_in(root, filename)
    hits = [p for p in problems if message in p]
    assert hits, f"expected {message!r}, got {problems}"
    if line is not None:
        assert any(p.startswith(f"{filename}:{line}:") for p in hits), hits


# --- front matter -------------------------------------------------------------------------

def test_missing_front_matter_key(lesson):
    edit(lesson / EPISODE, "exercises: 5\n", "")
    assert_reported(lesson, "front matter lacks 'exercises'", line=1)


def test_timing_that_is_not_an_integer(lesson):
    edit(lesson / EPISODE, "teaching: 20\n", "teaching: 20 min\n")
    assert_reported(lesson, "'teaching' must be int")


def test_timing_that_is_a_boolean(lesson):
    edit(lesson / EPISODE, "exercises: 5\n", "exercises: true\n")
    assert_reported(lesson, "'exercises' must be int")


def test_keypoints_that_are_not_a_list(lesson):
    text = (lesson / EPISODE).read_text(encoding="utf-8")
    start = text.index("keypoints:\n")
    end = text.index("---", start)
    (lesson / EPISODE).write_text(text[:start] + "keypoints: enumerate things\n" + text[end:])
    assert_reported(lesson, "'keypoints' must be list")


def test_misspelt_front_matter_key(lesson):
    edit(lesson / EPISODE, "objectives:\n", "objective:\n")
    problems = problems_in(lesson)
    assert any("lacks 'objectives'" in p for p in problems)
    assert any("unknown front matter key 'objective'" in p for p in problems)


def test_episode_without_front_matter(lesson):
    text = (lesson / EPISODE).read_text(encoding="utf-8")
    body = text.split("---\n", 2)[2]
    (lesson / EPISODE).write_text(body, encoding="utf-8")
    assert_reported(lesson, "episode has no '---' front matter")


def test_page_without_title(lesson):
    edit(lesson / "setup.md", "title: Setup\n", "")
    assert_reported(lesson, "front matter lacks 'title'", filename="setup.md")


# --- numbering ----------------------------------------------------------------------------

def test_gap_in_episode_numbers(lesson):
    (lesson / "_episodes/03-scoring.md").rename(lesson / "_episodes/08-scoring.md")
    assert_reported(lesson, "episode number 04 breaks the sequence; expected 03",
                    filename="_episodes/04-surrogates.md")


def test_episode_name_without_two_digits(lesson):
    (lesson / EPISODE).rename(lesson / "_episodes/2-enumeration.md")
    problems = lessoncheck.check_lesson(lesson)
    assert any("_episodes/2-enumeration.md:1: episode file name must look like" in p
               for p in problems), problems


# --- blockquotes ---------------------------------------------------------------------------

def test_unknown_blockquote_class(lesson):
    edit(lesson / EPISODE, "{: .callout}", "{: .note}")
    assert_reported(lesson, "blockquote class ['note'] is not one of")


def test_blockquote_without_class(lesson):
    edit(lesson / EPISODE, "{: .callout}\n", "\n")
    assert_reported(lesson, "blockquote has no class")


def test_class_line_separated_from_its_blockquote(lesson):
    # kramdown would give the class to the next block instead.
    edit(lesson / EPISODE, "{: .callout}\n", "\n{: .callout}\n")
    assert_reported(lesson, "blockquote has no class")


def test_challenge_without_solution(lesson):
    text = (lesson / EPISODE).read_text(encoding="utf-8")
    start = text.index("> > ## Solution")
    end = text.index("> {: .solution}\n", start) + len("> {: .solution}\n")
    (lesson / EPISODE).write_text(text[:start] + text[end:], encoding="utf-8")
    assert_reported(lesson, "challenge has no solution")


def test_solution_outside_a_challenge(lesson):
    edit(lesson / EPISODE, "{: .callout}", "{: .solution}")
    assert_reported(lesson, "solution is not nested inside a challenge")


def test_solution_without_heading(lesson):
    edit(lesson / EPISODE, "> > ## Solution\n> >\n", "")
    assert_reported(lesson, "a solution must start with a '## Title' line")


# --- code blocks ---------------------------------------------------------------------------

def test_old_python_class(lesson):
    edit(lesson / EPISODE, "{: .language-python}", "{: .python}")
    assert_reported(lesson, "(use language-python, not python)")


def test_code_block_without_class(lesson):
    edit(lesson / EPISODE, "~~~\n{: .output}\n", "~~~\n\n")
    assert_reported(lesson, "code block has no class")


def test_code_fence_with_language_tag(lesson):
    edit(lesson / EPISODE, "~~~\nimport almat", "~~~python\nimport almat")
    assert_reported(lesson, "code fence names a language ('python')")


def test_no_run_on_an_output_block(lesson):
    edit(lesson / EPISODE, "{: .output}", "{: .output .no-run}")
    assert_reported(lesson, "class 'no-run' is not allowed on a output code block")


def test_nbval_ignore_output_only_on_python(lesson):
    edit(lesson / EPISODE, "{: .output}", "{: .output .nbval-ignore-output}")
    assert_reported(lesson, "class 'nbval-ignore-output' is not allowed on a output code block")


def test_unclosed_code_block(lesson):
    text = (lesson / EPISODE).read_text(encoding="utf-8")
    cut = text.rindex("~~~\n{: .language-python}")
    (lesson / EPISODE).write_text(text[:cut] + text[cut + 4:], encoding="utf-8")
    assert_reported(lesson, "code block is never closed")


# --- the links include and reference links --------------------------------------------------

def test_last_line_is_not_the_links_include(lesson):
    edit(lesson / EPISODE, "{% include links.md %}\n", "")
    assert_reported(lesson, "the last line must be '{% include links.md %}'")


def test_text_after_the_links_include(lesson):
    path = lesson / EPISODE
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more thing.\n", encoding="utf-8")
    assert_reported(lesson, "the last line must be")


def test_unresolved_reference_link(lesson):
    edit(lesson / EPISODE, "[enumlib-repo]", "[enumlib-repository]")
    assert_reported(lesson, "link reference '[enumlib-repository]' is not defined")


def test_reference_link_defined_in_the_episode_resolves(lesson):
    edit(lesson / EPISODE, "[enumlib-repo]", "[enumlib-local]")
    edit(lesson / EPISODE, "{% include links.md %}",
         "[enumlib-local]: https://example.org/enumlib\n\n{% include links.md %}")
    assert lessoncheck.check_lesson(lesson) == []


def test_shared_links_need_the_include(lesson):
    # A page that does not include links.md cannot use its definitions.
    edit(lesson / "_extras/about.md", "{% include links.md %}\n", "")
    assert_reported(lesson, "is not defined in this file (it does not include",
                    filename="_extras/about.md")


def test_reference_links_in_code_are_ignored(lesson):
    edit(lesson / EPISODE, "print(len(structure))", "print(data[i][j])")
    edit(lesson / EPISODE, "`math.comb`", "`table[row][column]`")
    assert lessoncheck.check_lesson(lesson) == []


# --- line length ---------------------------------------------------------------------------

def test_long_prose_line(lesson):
    edit(lesson / EPISODE, "## The parent structure\n", "## The parent structure\n\n" + "x" * 101 + "\n")
    assert_reported(lesson, "line is 101 characters long")


def test_long_line_in_a_blockquote(lesson):
    edit(lesson / EPISODE, "> > 1. No: 48 is the number of sites per *cubic* cell, which holds four formula units. This", "> > 1. No: 48 is the number of sites per *cubic* cell, which holds four formula units. This" + " yes" * 25)
    assert_reported(lesson, "characters long; wrap it at 100")


def test_long_lines_in_code_tables_and_definitions_are_allowed(lesson):
    long = "y" * 120
    edit(lesson / EPISODE, "print(len(structure))", f"print(len(structure))  # {long}")
    edit(lesson / EPISODE, "## The parent structure\n",
         f"## The parent structure\n\n| a | {long} |\n|---|---|\n| 1 | 2 |\n")
    edit(lesson / EPISODE, "{% include links.md %}",
         f"[long-link]: https://example.org/{long}\n\n{{% include links.md %}}")
    assert lessoncheck.check_lesson(lesson) == []


# --- figures ---------------------------------------------------------------------------------

FIGURE = "(../fig/02-enumeration-1.png)"


def test_figure_with_todo_alt_text(lesson):
    text = (lesson / EPISODE).read_text(encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.endswith(FIGURE))
    alt = text.splitlines()[line - 1].removesuffix(FIGURE)
    edit(lesson / EPISODE, alt, "![TODO: describe this figure]")
    assert_reported(lesson, "image has no alt text", line=line)


def test_figure_without_alt_text(lesson):
    edit(lesson / EPISODE, "## The parent structure\n", f"## The parent structure\n\n![ ]{FIGURE}\n")
    assert_reported(lesson, "image has no alt text")


def test_long_image_line_is_allowed(lesson):
    assert any(len(line) > 100 and line.endswith(FIGURE)
               for line in (lesson / EPISODE).read_text(encoding="utf-8").splitlines())


def test_command_line_reports_and_fails(lesson, capsys):
    edit(lesson / EPISODE, "{: .language-python}", "{: .python}")
    assert lessoncheck.main([str(lesson)]) == 1
    assert "use language-python" in capsys.readouterr().out


# --- images -----------------------------------------------------------------------------------

def test_markdown_image_without_alt_text(lesson):
    edit(lesson / EPISODE, "## The parent structure\n",
         "## The parent structure\n\n![](../fig/parent.png)\n")
    assert_reported(lesson, "image has no alt text")


def test_html_image_without_alt_text(lesson):
    edit(lesson / EPISODE, "## The parent structure\n",
         '## The parent structure\n\n<img src="../fig/parent.png" alt=" ">\n')
    assert_reported(lesson, "<img> has no alt text")


def test_images_with_alt_text_pass(lesson):
    edit(lesson / EPISODE, "## The parent structure\n",
         "## The parent structure\n\n![The cubic cell of Li6PS5Cl](../fig/parent.png)\n"
         '<img src="../fig/cages.png" alt="Two cages of twelve sites">\n')
    assert lessoncheck.check_lesson(lesson) == []


# --- the rules of the Carpentries' checker (lesson_check.py of carpentries/styles) ------------

def test_config_without_email(lesson):
    edit(lesson / "_config.yml", 'email: ""\n', "")
    assert_reported(lesson, "'email' is missing", filename="_config.yml")


def test_config_of_another_kind_and_carpentry(lesson):
    edit(lesson / "_config.yml", 'kind: "lesson"', 'kind: "workshop"')
    edit(lesson / "_config.yml", 'carpentry: "incubator"', 'carpentry: "xyz"')
    problems = problems_in(lesson, "_config.yml")
    assert any("'kind' is 'workshop'" in p for p in problems)
    assert any("'carpentry' is 'xyz'" in p for p in problems)


def test_config_without_the_carpentries_default_for_pages(lesson):
    edit(lesson / "_config.yml", 'root: "."\n      layout: page', 'root: ".."\n      layout: page')
    assert_reported(lesson, "'defaults' lacks the entry {'values': {'root': '.', 'layout': 'page'}}",
                    filename="_config.yml")


def test_liquid_comment_in_the_links_file(lesson):
    # lesson_check.py stops with a traceback on any line that is not a link definition.
    path = lesson / lessoncheck.LINKS_FILE
    path.write_text("{% comment %}\nShared links.\n{% endcomment %}\n" + path.read_text())
    problems = problems_in(lesson, str(lessoncheck.LINKS_FILE))
    assert [p.split(":")[1] for p in problems] == ["1", "2", "3"]
    assert "only link definitions" in problems[0]


def test_duplicate_name_and_url_in_the_links_file(lesson):
    path = lesson / lessoncheck.LINKS_FILE
    path.write_text(path.read_text() + "[pymatgen]: https://example.org/pmg\n"
                    "[pmg-again]: https://pymatgen.org/\n")
    problems = problems_in(lesson, str(lessoncheck.LINKS_FILE))
    assert any("link name 'pymatgen' is defined twice" in p for p in problems)
    assert any("URL https://pymatgen.org/ is defined twice" in p for p in problems)


def test_shared_link_names_are_matched_exactly(lesson):
    edit(lesson / EPISODE, "[enumlib-repo]", "[Enumlib-Repo]")
    assert_reported(lesson, "link reference '[Enumlib-Repo]' is not defined")


def test_missing_required_file(lesson):
    (lesson / "_extras/guide.md").unlink()
    assert_reported(lesson, "file is missing", filename="_extras/guide.md")


def test_nojekyll_file(lesson):
    (lesson / ".nojekyll").write_text("")
    assert_reported(lesson, "remove this file", filename=".nojekyll")


def test_front_matter_in_contributing(lesson):
    path = lesson / "CONTRIBUTING.md"
    path.write_text('---\ntitle: "Contributing"\n---\n' + path.read_text())
    assert_reported(lesson, "'---' in a plain Markdown file", filename="CONTRIBUTING.md", line=1)


def test_table_rule_of_three_dashes_in_readme(lesson):
    edit(lesson / "README.md", "|--|--|--|--|\n", "|---|---|---|---|\n")
    assert_reported(lesson, "write a table rule as |--|--|", filename="README.md")


def test_readme_code_blocks_take_the_fence_language(lesson):
    edit(lesson / "README.md", "```bash\npytest --nbval\n", "```\npytest --nbval\n")
    assert_reported(lesson, "code block has no class", filename="README.md")


def test_index_layout_and_root(lesson):
    edit(lesson / "index.md", "layout: lesson\nroot: .\n", "layout: page\n")
    problems = problems_in(lesson, "index.md")
    assert any("must set layout: 'lesson'" in p for p in problems)
    assert any("must set root: '.'" in p for p in problems)


def test_reference_without_its_layout(lesson):
    edit(lesson / "reference.md", "layout: reference\n", "")
    assert_reported(lesson, "must set layout: 'reference'", filename="reference.md")


def test_top_level_page_without_root(lesson):
    edit(lesson / "setup.md", "root: ..\n", "")
    assert_reported(lesson, "must set root: '..'", filename="setup.md")


def test_episode_with_a_layout(lesson):
    edit(lesson / EPISODE, "exercises: 5\n", "exercises: 5\nlayout: page\n")
    assert_reported(lesson, "unknown front matter key 'layout'")


# --- numbered lists as kramdown renders them (issue 19: episode 2's solution list) ----------

def test_numbered_list_that_does_not_start_at_one(lesson):
    # kramdown writes <ol> without a start number: "2. B's total energy" shows as "1.".
    edit(lesson / EPISODE, "> > 1. No: 48 is the number", "> > 2. No: 48 is the number")
    assert_reported(lesson, "a numbered list starting at 2 shows as 1 on the website")


def test_list_item_that_begins_with_another_number(lesson):
    # "1. 924. 2. Two choices ..." is three nested lists, and the 924 disappears.
    edit(lesson / EPISODE, "> > 1. `comb(12, 6)` is 924.\n> > 2. Two choices",
         "> > 1. 924. 2. Two choices")
    assert_reported(lesson, "begins with another list marker")


def test_list_items_and_answers_of_the_real_lesson_render_as_written():
    site = ROOT / "_episodes"
    text = (site / "02-enumeration.md").read_text(encoding="utf-8")
    assert "> > 1. `comb(12, 6)` is 924.\n> > 2. Two choices per pair" in text
    assert "> > **Answer 2.**\n> > B's total energy" in (site / "03-scoring.md").read_text(
        encoding="utf-8")


# --- issue 19's smaller things that are text ------------------------------------------------

EPISODE_5 = "_episodes/05-strategies.md"
#: Pages a learner follows (README.md points learners to setup.md).
LEARNER_PAGES = ("index.md", "setup.md", "README.md", "_episodes/*.md", "_extras/*.md")


def numpy_problems(root: Path) -> list[str]:
    """Python blocks that use ``np.`` with no ``import numpy as np`` before them.

    An import in a solution counts only for that solution: a learner may never open it.
    """
    problems = []
    for path in lessoncheck.episode_files(root):
        imported = False
        for block in lessoncheck.code_blocks(path):
            if "language-python" not in block.classes or "no-run" in block.classes:
                continue
            use = re.search(r"\bnp\.", block.text)
            here = re.search(r"^import numpy as np$", block.text, flags=re.M)
            if use and not imported and not (here and here.start() < use.start()):
                problems.append(f"{path.name}:{block.line}: np is used before numpy is imported")
            imported = imported or bool(here and not block.in_solution)
    return problems


def test_numpy_is_imported_where_first_needed():
    assert numpy_problems(ROOT) == []


def test_a_missing_numpy_import_is_reported(lesson):
    edit(lesson / EPISODE_5, "> > import almat\n> > import numpy as np\n", "> > import almat\n")
    assert numpy_problems(lesson) == ["05-strategies.md:67: np is used before numpy is imported"]


def iloc_problems(root: Path) -> list[str]:
    """The first episode whose Python uses ``.iloc`` must say, in prose, what it does and why
    a plain ``[1]`` on a Series labelled by id is a ``KeyError``."""
    for path in lessoncheck.episode_files(root):
        parsed = lessoncheck.parse_markdown(path)
        if any(".iloc[" in b.text for b in lessoncheck.code_blocks(path)):
            prose = " ".join(" ".join(lessoncheck._strip_markers(line)[1] for number, line
                                      in enumerate(parsed.lines, 1)
                                      if number not in parsed.code_spans).split())
            needed = ["`.iloc[", "*position*", "*labelled*", "`KeyError: 1`"]
            return [f"{path.name}: uses .iloc first but never says {w}" for w in needed
                    if w not in prose]
    return []


def test_iloc_is_explained_where_the_lesson_first_uses_it():
    assert iloc_problems(ROOT) == []


def test_a_missing_iloc_explanation_is_reported(lesson):
    path = lesson / "_episodes/03-scoring.md"
    text = path.read_text(encoding="utf-8")
    start = text.index("> >\n> > Why `.iloc`?")
    path.write_text(text[:start] + text[text.index("> {: .solution}", start):], encoding="utf-8")
    assert iloc_problems(lesson) == ["03-scoring.md: uses .iloc first but never says "
                                     "`KeyError: 1`"]


def multiple_choice(path: Path) -> list[str]:
    """Titles of the challenges in an episode's main part that offer at least three numbered
    answers and whose solution speaks to every one of them."""
    found = []
    for block in main_part(path):
        if block.classes != ["challenge"]:
            continue
        options = [m[1] for m in map(re.compile(r"^(\d+)\. ").match, block.lines) if m]
        solution = next((c for c in block.children if c.classes == ["solution"]), None)
        said = " ".join(solution.lines) if solution else ""
        if len(options) >= 3 and all(re.search(rf"\b{n}\b", said) for n in options):
            found.append(title(block))
    return found


def test_every_episode_has_a_diagnostic_multiple_choice_question():
    for path in lessoncheck.episode_files(ROOT):
        assert multiple_choice(path), path.name
    assert "Which energy belongs to the candidate on screen?" in multiple_choice(
        ROOT / "_episodes/06-labeling-loop.md")


def test_a_question_whose_solution_skips_an_answer_is_not_diagnostic(lesson):
    path = lesson / "_episodes/06-labeling-loop.md"
    edit(path, "> > - 3 gives an array a name", "> > - The third gives an array a name")
    assert "Which energy belongs to the candidate on screen?" not in multiple_choice(path)


def learner_copy_problems(root: Path) -> list[str]:
    """Pages that send learners into the repository's notebooks/, and a setup without a copy."""
    problems = []
    for pattern in LEARNER_PAGES:
        for path in sorted(root.glob(pattern)):
            text = " ".join(path.read_text(encoding="utf-8").split())
            for wrong in ("jupyter lab notebooks", "notebooks/labels", "jupyter-lab notebooks"):
                if wrong in text:
                    problems.append(f"{path.relative_to(root)} says {wrong!r}")
    setup = " ".join((root / "setup.md").read_text(encoding="utf-8").split())
    for needed in ("almat notebooks almat-lesson", "jupyter lab almat-lesson", "--overwrite",
                   "{{ site.lesson_url }}"):
        if needed not in setup:
            problems.append(f"setup.md does not say {needed!r}")
    return problems


def test_learners_work_in_their_own_copy():
    assert learner_copy_problems(ROOT) == []


def test_a_page_that_opens_the_repositorys_notebooks_is_reported(lesson):
    edit(lesson / "_extras/guide.md", "(`jupyter lab almat-lesson`)", "(`jupyter lab notebooks/`)")
    edit(lesson / "setup.md", "almat notebooks almat-lesson\n", "")
    assert learner_copy_problems(lesson) == [
        "_extras/guide.md says 'jupyter lab notebooks'",
        "setup.md does not say 'almat notebooks almat-lesson'"]


def found_problems(root: Path) -> list[str]:
    """Episode 5's summary: a run found beyond the campaigns' 100 labels must be explained."""
    text = (root / EPISODE_5).read_text(encoding="utf-8")
    start = text.index("summary[[")
    output = text[text.index("~~~\n", text.index("~~~\n{: .language-python}", start) + 4) + 4:]
    table = output[:output.index("~~~")]
    after = " ".join(text[text.index("{: .output}", start):].split("\n\n")[1].split())
    problems = ["episode 5 still says found counts runs 'within their 100 labels'"] * (
        "within their 100 labels" in text)
    for row in table.splitlines()[2:]:
        *name, to_minimum, _, found = row.split()
        if found == "1/1" and float(to_minimum) > 100:
            if f"{float(to_minimum):g}" not in after or "whole pool" not in after:
                problems.append(f"{' '.join(name)} is found at {to_minimum} labels, but the text "
                                "after the table does not say why")
    return problems


def test_the_summary_table_and_its_text_agree():
    assert found_problems(ROOT) == []


def test_a_text_that_forgets_the_whole_pool_is_reported(lesson):
    edit(lesson / EPISODE_5, "the Ewald order after 133 labels", "the Ewald order")
    assert found_problems(lesson) == ["Ewald order is found at 133.0 labels, but the text after "
                                      "the table does not say why"]


def test_the_model_not_found_hint_is_true():
    # The app lived in a kernel that is gone: running the cells brings it back, reloading does not.
    for page in ("_episodes/06-labeling-loop.md", "_extras/guide.md"):
        text = " ".join((ROOT / page).read_text(encoding="utf-8").replace("> ", "").split())
        hint = text[text.index('"Error displaying widget: model not found"'):][:700]
        assert "Run the cells again" in hint and "reloading the page does not" in hint, page
