"""Playwright helpers for the browser tests: the system Chromium (never a downloaded one),
pages that fail the test on a JavaScript error or a CSP violation, and small waits.

The hub under test runs in the same event loop as the test, so only Playwright's async API
may be used here: the sync one would block the loop the server needs.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SUPPORTHUB_CHROMIUM", "/usr/bin/chromium")
#: Where the browser tests put their screenshots: SUPPORTHUB_TEST_SCREENSHOTS to keep and
#: look at them, else a temporary directory removed at exit. Never docs/screenshots: the
#: README's pictures come from a seeded demo (`python -m bench.screenshots`), not from
#: test payloads, and a test run leaves the work tree as it found it.
_SCREENSHOTS_KEPT = os.environ.get("SUPPORTHUB_TEST_SCREENSHOTS")
_screenshots: Path | None = None
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> None:
    """Skip (with the reason) when the system Chromium or Playwright is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")


@dataclass
class PageProblems:
    """What went wrong inside a page: uncaught errors, console errors, dialogs."""

    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self, *, allow: tuple[str, ...] = ()) -> None:
        def ok(line: str) -> bool:
            return any(a in line for a in allow)

        assert not self.dialogs, f"a dialog was opened: {self.dialogs}"
        assert not [e for e in self.errors if not ok(e)], f"page errors: {self.errors}"
        bad = [c for c in self.console if not ok(c)]
        assert not bad, f"console errors: {bad}"


# Console errors that a test provokes on purpose (a dropped network, a 404 probe).
EXPECTED_NOISE = (
    "ERR_INTERNET_DISCONNECTED",
    "ERR_NETWORK_CHANGED",
    "WebSocket connection to",
    "Failed to load resource",
    "net::ERR_",
)


async def launch(playwright):
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)


async def new_page(browser, **context_options):
    """A page in a fresh context, with its problems recorded (dialogs are dismissed). The
    browser speaks Chinese unless `locale` says otherwise (the console follows it until the
    agent picks a language)."""
    context_options.setdefault("locale", "zh-CN")
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    problems = PageProblems()
    page.on("pageerror", lambda exc: problems.errors.append(str(exc)))

    def on_console(msg) -> None:
        if msg.type == "error":
            problems.console.append(msg.text)

    page.on("console", on_console)

    async def on_dialog(dialog) -> None:
        problems.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return context, page, problems


async def eventually(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.1):
    """Poll an (async or sync) check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def screenshots_dir() -> Path:
    global _screenshots
    if _screenshots is None:
        if _SCREENSHOTS_KEPT:
            _screenshots = Path(_SCREENSHOTS_KEPT)
            _screenshots.mkdir(parents=True, exist_ok=True)
        else:
            _screenshots = Path(tempfile.mkdtemp(prefix="supporthub-test-shots-"))
            atexit.register(shutil.rmtree, _screenshots, ignore_errors=True)
    return _screenshots


async def screenshot(page, name: str) -> Path:
    """A picture of the page as the test left it, for a person to look at on failure."""
    path = screenshots_dir() / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def texts(page, selector: str) -> list[str]:
    return await page.locator(selector).all_inner_texts()


@pytest.fixture(scope="session")
async def browser():
    """One headless system Chromium for the session's browser tests."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await launch(pw)
        try:
            yield chromium
        finally:
            await chromium.close()


async def login_agent(page, base_url: str, username: str, password: str) -> None:
    """Sign in on the console and wait until it is connected."""
    await page.goto(f"{base_url}/console/")
    await page.fill("#login-user", username)
    await page.fill("#login-pass", password)
    await page.click("#login-submit")
    await page.wait_for_selector("#app-view:not([hidden])")
    await page.wait_for_selector("#conn-state.st-open")


async def count_is(locator, n: int) -> bool:
    """For `eventually(lambda: count_is(loc, 0))`: a locator's match count equals n."""
    return await locator.count() == n
