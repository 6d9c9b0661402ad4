"""Real-browser fixtures for the HTML report: playwright driving Debian's chromium.

``browser`` (session): headless chromium at ``/usr/bin/chromium``; playwright never downloads a browser
here. ``open_page(path, screenshot=None)`` (per test): opens a local HTML file by its ``file://`` URL,
waits for its load event, and returns ``(page, errors)``, where ``errors`` lists every console error
and uncaught page error the page raised (it keeps growing while the test goes on using the page).
``screenshot=path`` saves a full-page PNG there after the load.

Chromium is installed by ``.ci/run`` (``bash .ci/run --browser-only`` or ``make browser`` does only that
step). When it is missing the fixture fails rather than skips: CI installs it, so a skip would hide a
broken setup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
#: As root on a machine whose network reaches only package registries: no sandbox, no GPU, and no
#: background connections (they would be refused, many at a time).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
LOAD_TIMEOUT_MS = 30_000


class OpenedPage(NamedTuple):
    page: Page
    errors: list[str]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium. Install it with "
            "`bash .ci/run --browser-only` (or `make browser`; as root or with sudo), the same step "
            ".ci/run runs before `make test`.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., OpenedPage]]:
    contexts = []

    def _open(path: str | Path, screenshot: str | Path | None = None) -> OpenedPage:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location
                errors.append(
                    f"console.error: {message.text} ({where.get('url', '')}:{where.get('lineNumber', '')})"
                )

        def on_page_error(error: Error) -> None:
            errors.append(f"page error: {error.name}: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.goto(Path(path).resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        return OpenedPage(page, errors)

    yield _open
    for context in contexts:
        context.close()
