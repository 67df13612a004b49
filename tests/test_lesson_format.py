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


def test_real_lesson_has_seven_episodes_in_about_three_hours():
    episodes = lessoncheck.episode_files(ROOT)
    assert [p.name[:2] for p in episodes] == ["01", "02", "03", "04", "05", "06", "07"]
    total = 0
    for path in episodes:
        text = path.read_text(encoding="utf-8")
        front = yaml.safe_load(text.split("---")[1])
        assert front["teaching"] > 0, path.name
        total += front["teaching"] + front["exercises"]
    assert 170 <= total <= 190, f"episodes add up to {total} minutes, not about 180"


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
    edit(lesson / EPISODE, "exercises: 10\n", "")
    assert_reported(lesson, "front matter lacks 'exercises'", line=1)


def test_timing_that_is_not_an_integer(lesson):
    edit(lesson / EPISODE, "teaching: 15\n", "teaching: 15 min\n")
    assert_reported(lesson, "'teaching' must be int")


def test_timing_that_is_a_boolean(lesson):
    edit(lesson / EPISODE, "exercises: 10\n", "exercises: true\n")
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
    edit(lesson / EPISODE, "exercises: 10\n", "exercises: 10\nlayout: page\n")
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
