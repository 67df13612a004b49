"""Helpers for the real-browser tests: Debian's Chromium driven by Playwright.

Used by the website test and meant for the JupyterLab tests too. Import what you
need; importing the ``chromium`` fixture into a test module makes it available::

    from browser_util import chromium, serve_directory, PageErrors  # noqa: F401

Rules these helpers enforce:

- The browser is Debian's ``/usr/bin/chromium`` (``ALMAT_CHROMIUM`` overrides the
  path), never a downloaded one, started with flags that keep it off the network.
- When Playwright or Chromium is missing or does not start, a test *fails* if the
  environment variable ``CI`` is set (CI must be able to run it), and is skipped
  with the reason otherwise (a learner's laptop).
- Screenshots and other artifacts go to ``artifacts/`` at the top of the repository,
  or to the folder named by ``ALMAT_ARTIFACTS``.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: Flags for a headless Chromium in a container, without background network traffic.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
#: Extra flags for pages that draw WebGL (the 3-D views): headless Chromium then draws it in
#: software (SwiftShader); without them a WebGL canvas stays blank.
WEBGL_ARGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader")


def unavailable(reason: str) -> NoReturn:
    """Fail the test when running in CI (env ``CI`` set), skip it otherwise."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}. CI must provide it (see .ci/run), so this is a failure, "
                    "not a skip.", pytrace=False)
    pytest.skip(f"{reason}; browser tests are skipped outside CI")


def chromium_path() -> str:
    """Path of the Chromium executable, or :func:`unavailable` if there is none."""
    path = os.environ.get("ALMAT_CHROMIUM", CHROMIUM)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        unavailable(f"Chromium not found at {path} (Debian: apt-get install chromium; "
                    "or set ALMAT_CHROMIUM)")
    return path


def artifacts_dir(*parts: str) -> Path:
    """A folder for artifacts such as screenshots, created if needed.

    ``artifacts/<parts...>`` at the top of the repository, or under the folder named
    by the environment variable ``ALMAT_ARTIFACTS``.
    """
    base = Path(os.environ.get("ALMAT_ARTIFACTS", REPO_ROOT / "artifacts"))
    folder = base.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as ``artifacts/screenshots/<name>.png`` and return its path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    path = artifacts_dir("screenshots") / f"{safe}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextmanager
def serve_directory(directory: str | Path) -> Iterator[str]:
    """Serve a folder over HTTP on 127.0.0.1, on a free port, in a background thread.

    Yields
    ------
    str
        The base URL, ending in ``/``.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def launch_chromium(*extra_args: str, **launch_options) -> Iterator[object]:
    """Start Playwright and Debian's Chromium; yield the Playwright ``Browser``.

    ``extra_args`` are flags added to :data:`CHROMIUM_ARGS` (e.g. :data:`WEBGL_ARGS`).
    Extra keyword arguments go to ``playwright.chromium.launch`` (for example
    ``headless=False`` when debugging by hand).
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright)")
    executable = chromium_path()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args], **launch_options
            )
        except PlaywrightError as exc:
            first_lines = "\n".join(str(exc).splitlines()[:6])
            unavailable(f"Chromium at {executable} did not start: {first_lines}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium():
    """One Chromium per test module (Playwright's sync API allows one instance at a time, so a
    session-wide browser would clash with another module's); make a fresh context per test."""
    with launch_chromium() as browser:
        yield browser


class OutsideRequests:
    """Abort every request of a browser context to a host other than 127.0.0.1, and keep it.

    ``requests`` lists each as ``"METHOD URL"``; a lesson that works offline and sends nothing
    to third parties (chemiscope's analytics, a CDN) leaves it empty.
    """

    def __init__(self, context) -> None:
        self.requests: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route) -> None:
        request = route.request
        if urlsplit(request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.requests.append(f"{request.method} {request.url}")
            route.abort()


@contextmanager
def offline_page(browser, viewport: dict, init_script: str | None = None) -> Iterator[tuple]:
    """A page of a new browser context at ``viewport`` (CSS px), with requests outside 127.0.0.1
    aborted and counted; yields ``(page, outside)`` (an :class:`OutsideRequests`), then closes
    the context. ``init_script`` runs in every page before the page's own scripts."""
    context = browser.new_context(viewport=viewport)
    if init_script is not None:
        context.add_init_script(init_script)
    outside = OutsideRequests(context)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page, outside
    finally:
        context.close()


class PageErrors:
    """Record a page's JavaScript errors: console messages of type error, and uncaught exceptions.

    A failed load of a page resource (a 404 for a script or stylesheet) is logged by
    Chromium as a console error, so it is caught too.
    """

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message) -> None:
        if message.type == "error":
            location = message.location or {}
            where = location.get("url", "")
            self.messages.append(f"console error: {message.text} ({where})")

    def _on_page_error(self, error) -> None:
        self.messages.append(f"uncaught exception: {error}")

    def clear(self) -> None:
        self.messages.clear()


#: Impacts that fail an accessibility check; "minor" and "moderate" are reported only.
AXE_FAILING_IMPACTS = ("serious", "critical")


def axe_script() -> str:
    """The axe-core script, from the ``axe-playwright-python`` package (PyPI), which bundles it.

    Only its ``axe.min.js`` is used: it is injected into the page and run there.
    """
    try:
        from importlib.resources import files

        return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        unavailable("axe-core is not installed (pip install axe-playwright-python, which "
                    "bundles it; it is in the test extra of pyproject.toml)")


def axe_violations(page, include: list[str] | None = None, exclude: list[str] | None = None
                   ) -> list[dict]:
    """Run axe-core on the page and return its violations.

    Parameters
    ----------
    page
        A Playwright page, loaded.
    include, exclude
        CSS selectors of the parts to check, or to leave out; the whole page by default.

    Returns
    -------
    list of dict
        axe's violation objects (``id``, ``impact``, ``help``, ``nodes`` ...).
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_script())
    context = {"include": [[s] for s in include or ["html"]],
               "exclude": [[s] for s in exclude or []]}
    return page.evaluate("context => axe.run(context, {resultTypes: ['violations']})"
                         ".then(r => r.violations)", context)


def serious(violations: list[dict]) -> list[str]:
    """One line per serious or critical violation: rule, impact, help and the first nodes."""
    def where(target: list) -> str:  # inside a shadow DOM, a target is a list of selectors
        return " ".join(" >> ".join(t) if isinstance(t, list) else t for t in target)

    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + "; ".join(where(n["target"]) for n in v["nodes"][:3])
            for v in violations if v["impact"] in AXE_FAILING_IMPACTS]
