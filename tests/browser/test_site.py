"""The lesson website in a real browser (issue 5, item 2).

The site is built with ``scripts/build_site.sh``, served on 127.0.0.1 and visited
with Debian's Chromium. For every episode, each solution must start folded and
unfold on click; no page may log a JavaScript error; every page links back to
the index; axe-core finds no serious or critical accessibility violation on any
page (solutions unfolded, so that their content is checked too); long code
lines scroll inside their box instead of being cut off at the page's edge; no page requests
anything from a host other than 127.0.0.1 (such requests are aborted and counted); every
picture is drawn and has alt text. Screenshots go to ``artifacts/screenshots/`` (or ``$ALMAT_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urljoin

import pytest
from browser_util import (PageErrors, axe_violations, chromium, offline_page, screenshot,
                          serious, serve_directory, unavailable)

pytestmark = pytest.mark.browser
__all__ = ["chromium"]  # the fixture, imported so that pytest finds it

REPO_ROOT = Path(__file__).resolve().parents[2]
EPISODES = sorted((REPO_ROOT / "_episodes").glob("*.md"))
#: Pages besides the episodes, by URL path relative to the site root.
PAGES = ["", "setup/", "reference/", "keypoints/", "guide/", "outline/", "discuss/", "about/",
         "license/", "conduct/", "contributing/"]


def build_site(destination: Path) -> Path:
    if not shutil.which("jekyll"):
        unavailable("jekyll is not installed (Debian: apt-get install jekyll), so the site "
                    "cannot be built")
    result = subprocess.run(["sh", str(REPO_ROOT / "scripts" / "build_site.sh"),
                             str(destination)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return destination


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site") / "_site")


@pytest.fixture(scope="module")
def site_url(site_dir) -> str:
    with serve_directory(site_dir) as url:
        yield url


@pytest.fixture
def page(chromium):
    """A page whose requests outside 127.0.0.1 are aborted; none may be made (no CDN, no web
    font, no analytics: the site works offline, from a USB stick or a workshop server)."""
    with offline_page(chromium, {"width": 1200, "height": 900}) as (page, outside):
        page.set_default_timeout(10_000)
        yield page
    assert outside.requests == [], f"requests left 127.0.0.1: {outside.requests}"


def open_page(page, url: str) -> PageErrors:
    """Go to ``url`` with error recording on, and wait until the page has loaded."""
    errors = PageErrors(page)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
    return errors


def solution_states(page) -> list[dict]:
    """For each solution box: its toggle's state and whether its body is visible."""
    return page.eval_on_selector_all(
        "blockquote.solution",
        """boxes => boxes.map(box => {
            const button = box.querySelector(':scope > :first-child > button.fold-toggle');
            const body = box.querySelector(':scope > .fold-body');
            const shown = el => !!el && el.getClientRects().length > 0
                && getComputedStyle(el).visibility !== 'hidden';
            return {
                hasToggle: !!button,
                expanded: button ? button.getAttribute('aria-expanded') : null,
                bodyVisible: shown(body),
                contentVisible: Array.from(box.children).slice(1).some(shown),
            };
        })""",
    )


def solutions_in_source(episode: Path) -> int:
    """Solutions in an episode's Markdown, counted from its class lines."""
    return len(re.findall(r"^> \{: \.solution\}$", episode.read_text(encoding="utf-8"), re.M))


@pytest.mark.parametrize("episode", EPISODES, ids=[p.stem for p in EPISODES])
def test_solutions_start_folded_and_unfold_on_click(page, site_url, episode):
    errors = open_page(page, urljoin(site_url, f"{episode.stem}/"))
    states = solution_states(page)
    assert len(states) == solutions_in_source(episode) > 0
    for i, state in enumerate(states):
        assert state["hasToggle"], f"solution {i + 1} has no fold button"
        assert state["expanded"] == "false" and not state["bodyVisible"], \
            f"solution {i + 1} of {episode.stem} is not folded at first: {state}"
    screenshot(page, f"site-{episode.stem}")

    toggles = page.locator("blockquote.solution button.fold-toggle")
    for i in range(len(states)):
        toggles.nth(i).click()
        state = solution_states(page)[i]
        assert state["expanded"] == "true" and state["bodyVisible"], \
            f"solution {i + 1} of {episode.stem} did not unfold on click: {state}"
        assert page.locator("blockquote.solution > .fold-body").nth(i).inner_text().strip()
    screenshot(page, f"site-{episode.stem}-solutions-open")

    toggles.first.click()
    assert not solution_states(page)[0]["bodyVisible"], "a second click must fold it again"
    assert errors.messages == []


@pytest.mark.parametrize("path", PAGES + [f"{p.stem}/" for p in EPISODES])
def test_page_has_no_errors_and_links_back_to_the_index(page, site_url, path):
    url = urljoin(site_url, path)
    errors = open_page(page, url)
    if path in PAGES:  # the episode test takes the episodes' screenshots
        screenshot(page, f"site-page-{path.strip('/') or 'index'}")
    # every picture is drawn (the 3-D views' pictures of episodes 2 and 3 among them), with alt text
    broken = page.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0) || !i.alt)"
               ".map(i => i.getAttribute('src'))")
    assert broken == [], f"{url}: pictures not drawn or without alt text: {broken}"
    index_urls = {site_url, urljoin(site_url, "index.html")}
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert index_urls & set(hrefs), f"{url} has no link to the index {site_url}"

    page.locator(".navbar-brand").click()
    page.wait_for_load_state("load")
    assert page.url in index_urls
    assert page.locator("#schedule").is_visible()
    assert errors.messages == [], errors.messages


def test_episode_menu_leads_to_every_episode(page, site_url):
    errors = open_page(page, site_url)
    for episode in EPISODES:
        page.locator(".navbar-episodes summary").click()
        link = page.locator(f".navbar-episodes a[href$='{episode.stem}/']")
        assert link.is_visible()
        if episode == EPISODES[0]:
            screenshot(page, "site-episode-menu", full_page=False)
        link.click()
        page.wait_for_load_state("load")
        assert page.url == urljoin(site_url, f"{episode.stem}/")
    assert errors.messages == []


def test_checks_catch_a_broken_script(chromium, site_dir, tmp_path):
    # The same checks on a copy of the site whose script throws: solutions stay unfolded
    # and the error is recorded. Without this, the tests above could pass vacuously.
    broken = tmp_path / "site"
    shutil.copytree(site_dir, broken)
    script = broken / "assets" / "js" / "lesson.js"
    script.write_text('throw new Error("deliberately broken");\n' + script.read_text())
    context = chromium.new_context()
    try:
        page = context.new_page()
        with serve_directory(broken) as url:
            errors = open_page(page, urljoin(url, f"{EPISODES[1].stem}/"))
            states = solution_states(page)
        assert states and all(not s["hasToggle"] and s["contentVisible"] for s in states)
        assert any("deliberately broken" in m for m in errors.messages), errors.messages
    finally:
        context.close()


def test_checks_catch_a_missing_stylesheet(chromium, site_dir, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site_dir, broken)
    os.remove(broken / "assets" / "css" / "lesson.css")
    context = chromium.new_context()
    try:
        page = context.new_page()
        with serve_directory(broken) as url:
            errors = open_page(page, url)
        assert any("404" in m for m in errors.messages), errors.messages
    finally:
        context.close()


@pytest.mark.parametrize("path", PAGES + [f"{p.stem}/" for p in EPISODES])
def test_page_has_no_serious_accessibility_violations(page, site_url, path):
    open_page(page, urljoin(site_url, path))
    for toggle in page.locator("button.fold-toggle").all():  # check the solutions' content too
        toggle.click()
    violations = axe_violations(page)
    print(f"axe on /{path}: {len(violations)} violation(s): "
          + ", ".join(f"{v['id']} ({v['impact']})" for v in violations))
    assert serious(violations) == []


def test_accessibility_check_can_fail(page, site_url):
    open_page(page, site_url)
    page.evaluate("""() => {
        const img = document.createElement('img');   // no alt text: 'image-alt', critical
        img.src = 'data:,';
        document.querySelector('main').append(img);
    }""")
    assert any(line.startswith("image-alt (critical)") for line in serious(axe_violations(page)))


def test_long_code_lines_scroll_instead_of_being_cut(page, site_url):
    page.set_viewport_size({"width": 800, "height": 900})
    open_page(page, urljoin(site_url, f"{EPISODES[1].stem}/"))
    page.evaluate("""() => {
        const pre = document.querySelector('div.output pre, pre');
        pre.textContent = 'x'.repeat(400);
    }""")
    box = page.evaluate("""() => {
        const pre = document.querySelector('div.output pre, pre');
        const style = getComputedStyle(pre);
        return {overflowX: style.overflowX, whiteSpace: style.whiteSpace,
                scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth,
                right: pre.getBoundingClientRect().right, page: document.documentElement.clientWidth,
                pageScroll: document.documentElement.scrollWidth};
    }""")
    # The box stays inside the page and its content can be scrolled (or it wraps).
    assert box["right"] <= box["page"] and box["pageScroll"] <= box["page"], box
    assert box["overflowX"] in ("auto", "scroll") or box["whiteSpace"] in ("pre-wrap", "break-spaces"), box


def test_instructor_outline_fits_one_projected_screen(chromium, site_url):
    # A projector at 1024x768: scrolled to the title, the whole outline is on screen.
    context = chromium.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    open_page(page, urljoin(site_url, "outline/"))
    height, width = page.evaluate("""() => {
        const top = document.querySelector('main h1').getBoundingClientRect().top;
        const blocks = Array.from(document.querySelectorAll('main p, main table, main ol'));
        return [Math.max(...blocks.map(b => b.getBoundingClientRect().bottom)) - top,
                document.documentElement.scrollWidth];
    }""")
    screenshot(page, "outline-1024x768")
    context.close()
    assert height <= 768, f"the outline is {height:.0f} px tall from its title"
    assert width <= 1024
