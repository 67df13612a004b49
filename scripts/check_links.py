#!/usr/bin/env python3
"""Report broken internal links in a built static site.

Usage::

    python scripts/check_links.py _site

Every ``href`` and ``src`` of every HTML page that does not name another host
(``http:``, ``mailto:`` ...) must point to a file of the site, and a
``#fragment`` must name an ``id`` on the target page. Exits with status 1 and
one line per broken link, or 0 when all links resolve.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"href", "src"}


class _PageParser(HTMLParser):
    """Collect link targets (with line numbers) and element ids of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[int, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in LINK_ATTRIBUTES:
                self.links.append((self.getpos()[0], value))
            elif name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)


def _parse(page: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _target_file(site: Path, page: Path, path: str) -> Path:
    """The file a URL path refers to, the way a static web server resolves it."""
    base = site if path.startswith("/") else page.parent
    target = (base / unquote(path).lstrip("/")).resolve()
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target


def find_broken_links(site: str | Path) -> list[str]:
    """Return one message per broken internal link in the site under ``site``.

    Parameters
    ----------
    site
        Folder holding the built site (``index.html`` at its top).

    Returns
    -------
    list of str
        ``page:line: message`` for each link whose file or fragment is missing;
        empty when every internal link resolves.
    """
    site = Path(site).resolve()
    if not (site / "index.html").is_file():
        return [f"{site}: no index.html; is this a built site?"]
    parsed: dict[Path, _PageParser] = {}

    def page_ids(path: Path) -> set[str]:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path].ids

    problems = []
    for page in sorted(site.rglob("*.html")):
        if page not in parsed:
            parsed[page] = _parse(page)
        for line, url in parsed[page].links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith("data:"):
                continue
            where = f"{page.relative_to(site)}:{line}"
            target = _target_file(site, page, parts.path) if parts.path else page
            if site not in target.parents and target != site:
                problems.append(f"{where}: link '{url}' points outside the site")
                continue
            if not target.is_file():
                problems.append(f"{where}: link '{url}' points to a missing file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in page_ids(target):
                problems.append(f"{where}: link '{url}' names a missing anchor '#{fragment}'")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    problems = find_broken_links(argv[0])
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} broken internal link(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
