"""Browser test fixtures (shared by every test suite through tests/conftest.py):
Playwright's sync API driving the system's Chromium against `live_server`.

- Chromium is the distribution's package at /usr/bin/chromium; Playwright's own
  browser download is never used. Without it these tests are skipped, saying why.
- `live_server` runs Pipetower in a thread of this process against the file
  SQLite test database, so the tests are transactional and the server's email
  lands in `django.core.mail.outbox`, where `wait_for_email()` finds it.
- `page` is a fresh browser context (its own cookies) per test; `new_context()`
  opens more, for a second person in the same test.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import mail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (the chromium package)")
    if sync_playwright is None:
        pytest.skip("browser tests need the playwright package (pip install -e '.[test]')")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make (and the live server's thread) are still plain synchronous code.
    # Browser tests run last (see tests/conftest.py), so this reaches no other test.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def new_context(browser: Browser, live_server) -> Iterator[Callable[[], BrowserContext]]:
    """Open browser contexts (separate people) pointed at the live server; all close after."""
    opened: list[BrowserContext] = []

    def open_context() -> BrowserContext:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def page(new_context: Callable[[], BrowserContext]) -> Page:
    return new_context().new_page()


@pytest.fixture
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def wait_for_email(to: str, *, count: int = 1, timeout: float = 10.0) -> mail.EmailMessage:
    """The newest message to `to` in the outbox, once at least `count` have arrived for them."""
    deadline = time.monotonic() + timeout
    while True:
        received = [m for m in mail.outbox if any(to in r for r in m.recipients())]
        if len(received) >= count:
            return received[-1]
        if time.monotonic() > deadline:
            subjects = [(m.subject, m.recipients()) for m in mail.outbox]
            raise AssertionError(f"no email #{count} to {to} arrived; the outbox has {subjects}")
        time.sleep(0.1)


def link_in(message: mail.EmailMessage, contains: str) -> str:
    """The path (and query) of the first link in `message` whose URL contains `contains`.

    Only the path is returned: the page opens it on the live server, whatever
    host the message was written for.
    """
    bodies = [str(message.body)]
    bodies += [str(content) for content, _ in getattr(message, "alternatives", [])]
    for body in bodies:
        for url in re.findall(r"https?://[^\s<>\"']+", body):
            if contains in url:
                parts = urlsplit(url)
                return parts.path + (f"?{parts.query}" if parts.query else "")
    raise AssertionError(f"no link containing {contains!r} in the email {message.subject!r}")


@pytest.fixture
def email_link() -> Callable[..., str]:
    """`email_link(to, contains, count=1)`: a link's path from the newest email to `to`,
    waiting until `count` messages have reached them."""

    def find(to: str, contains: str, *, count: int = 1, timeout: float = 10.0) -> str:
        return link_in(wait_for_email(to, count=count, timeout=timeout), contains)

    return find
