"""The lesson website builds with Debian's jekyll and has no broken internal links.

(Named test_site_build.py so that it does not clash with tests/browser/test_site.py:
the test folders have no __init__.py, so module names must be unique.)
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "scripts" / "build_site.sh"
CHECK_LINKS = ROOT / "scripts" / "check_links.py"
#: What the website is built from; copied to build a deliberately broken lesson.
SITE_SOURCES = ("_config.yml", "_layouts", "_includes", "assets", "_episodes", "_extras",
                "index.md", "setup.md", "reference.md", "CODE_OF_CONDUCT.md", "CONTRIBUTING.md",
                "LICENSE.md", "contributing-page.md", "AUTHORS", "CITATION", "scripts", "fig")


def _load_check_links():
    spec = importlib.util.spec_from_file_location("check_links", CHECK_LINKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_links = _load_check_links()


def require_jekyll() -> None:
    if shutil.which("jekyll"):
        return
    reason = "jekyll is not installed (Debian: apt-get install jekyll), so the site cannot be built"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it")
    pytest.skip(reason)


def build(source_root: Path, destination: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(source_root / "scripts" / "build_site.sh"), str(destination)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    require_jekyll()
    destination = tmp_path_factory.mktemp("site")
    result = build(ROOT, destination)
    assert result.returncode == 0, result.stdout + result.stderr
    return destination


def front_matter(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8").split("---")[1])


def episodes() -> list[Path]:
    return sorted((ROOT / "_episodes").glob("*.md"))


#: kramdown's typographic quotes, mapped back to what the Markdown source has.
SMART_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def text_of(page: Path) -> str:
    """The visible text of an HTML page, whitespace collapsed, quotes made plain."""
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split()).translate(SMART_QUOTES)


def squashed(text: str) -> str:
    """Text without any whitespace, so that tag boundaries do not matter."""
    return "".join(text.split())


def shown(markdown: str, page: str) -> bool:
    """Whether a one-line Markdown item (front matter) appears in a page's text."""
    return squashed(re.sub(r"`([^`]*)`", r"\1", markdown)) in squashed(page)


def test_site_has_no_broken_internal_links(site):
    assert check_links.find_broken_links(site) == []


def test_every_episode_and_page_is_built(site):
    for episode in episodes():
        assert (site / episode.stem / "index.html").is_file(), episode.stem
    for page in ("setup", "reference", "keypoints", "guide", "outline", "discuss", "about",
                 "license", "conduct", "contributing"):
        assert (site / page / "index.html").is_file(), page
    assert not (site / "tests").exists() and not (site / "code").exists()
    assert not list(site.rglob("*.ipynb")), "notebooks must not be published"


def test_every_page_says_where_the_lesson_lives(site):
    # The address the notebooks link to (their first cells), from the same key of _config.yml.
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["lesson_url"]
    for page in ("index.html", "02-enumeration/index.html", "setup/index.html"):
        text = (site / page).read_text(encoding="utf-8")
        assert f'<a class="lesson-url" href="{url}">{url}</a>' in text, page
    # setup.md says it in its text too, from the same key (a Liquid variable, not a copy).
    assert f'<a href="{url}">{url}</a>' in (site / "setup" / "index.html").read_text(
        encoding="utf-8")


def test_schedule_matches_episode_timings(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    teaching = [int(x) for x in re.findall(r'<td class="teaching">(\d+)</td>', index)]
    exercises = [int(x) for x in re.findall(r'<td class="exercises">(\d+)</td>', index)]
    metas = [front_matter(p) for p in episodes()]
    assert teaching == [m["teaching"] for m in metas]
    assert exercises == [m["exercises"] for m in metas]
    total = sum(m["teaching"] + m["exercises"] for m in metas)
    assert f'<span id="schedule-total-minutes">{total}</span>' in index
    # One break, after the episode _config.yml names; the episodes after it start later.
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    after, pause = config["break_after_episode"], config["break_minutes"]
    starts = re.findall(r'<tr class="syllabus-(episode|break|total)">\s*<td class="start">'
                        r'(\d\d):(\d\d)</td>', index)
    clock, expected = 0, []
    for number, meta in enumerate(metas, start=1):
        expected.append(("episode", clock))
        clock += meta["teaching"] + meta["exercises"]
        if number == after:
            expected.append(("break", clock))
            clock += pause
    expected.append(("total", clock))
    assert [(kind, int(h) * 60 + int(m)) for kind, h, m in starts] == expected
    assert clock == total + pause <= config["workshop_minutes"]
    hours, minutes = divmod(clock, 60)
    assert f"{hours:02d}:{minutes:02d} Finish" in text_of(site / "index.html")


def test_episode_pages_show_overview_and_keypoints(site):
    for path in episodes():
        meta = front_matter(path)
        page = text_of(site / path.stem / "index.html")
        assert meta["title"] in page
        for item in meta["questions"] + meta["objectives"] + meta["keypoints"]:
            assert shown(item, page), (path.name, item)


def test_keypoints_page_collects_every_keypoint(site):
    page = text_of(site / "keypoints" / "index.html")
    for path in episodes():
        for point in front_matter(path)["keypoints"]:
            assert shown(point, page), (path.name, point)


def test_challenges_and_code_keep_their_classes(site):
    page = (site / "02-enumeration" / "index.html").read_text(encoding="utf-8")
    assert '<blockquote class="challenge">' in page
    assert '<blockquote class="solution">' in page
    assert 'class="language-python highlighter-rouge"' in page
    assert re.search(r'class="[^"]*\boutput\b', page)


def test_episode_figures_are_published(site):
    figures = sorted((ROOT / "fig").glob("*.png"))
    assert figures, "fig/ holds no figures; run scripts/make_notebooks.py"
    for figure in figures:
        # the episode with the figure's number: notebook figures are NN-slug-K.png, others NN-*.png
        episode = next((ROOT / "_episodes").glob(f"{figure.name[:2]}-*.md")).stem
        page = (site / episode / "index.html").read_text(encoding="utf-8")
        assert f'src="../fig/{figure.name}"' in page, figure.name
        assert (site / "fig" / figure.name).read_bytes() == figure.read_bytes()


def test_checker_catches_a_broken_link_and_a_missing_anchor(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    page = broken / "03-scoring" / "index.html"
    text = page.read_text(encoding="utf-8")
    text = text.replace("</main>", '<a href="../no-such-episode/">x</a>'
                        '<a href="../02-enumeration/#no-such-anchor">y</a></main>', 1)
    page.write_text(text, encoding="utf-8")
    problems = check_links.find_broken_links(broken)
    assert len(problems) == 2, problems
    assert "'../no-such-episode/' points to a missing file" in problems[0]
    assert "missing anchor '#no-such-anchor'" in problems[1]
    result = subprocess.run([sys.executable, str(CHECK_LINKS), str(broken)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "no-such-episode" in result.stdout


def test_build_fails_on_a_broken_link_in_an_episode(tmp_path):
    require_jekyll()
    lesson = tmp_path / "lesson"
    lesson.mkdir()
    for name in SITE_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, lesson / name)
        else:
            shutil.copy(source, lesson / name)
    episode = lesson / "_episodes" / "04-surrogates.md"
    text = episode.read_text(encoding="utf-8")
    episode.write_text(text.replace("## A Bayesian cluster expansion\n",
                                    "## A Bayesian cluster expansion\n\n"
                                    "See [the glossary]({{ page.root }}/glossry/).\n", 1),
                       encoding="utf-8")
    result = build(lesson, tmp_path / "out")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "04-surrogates/index.html" in result.stdout
    assert "'../glossry/' points to a missing file" in result.stdout
