"""The browser harness itself: Chromium reaches the live server, with its styles and email."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.mail import send_mail
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

GRACE = "grace@example.com"


def test_the_browser_loads_pages_and_stylesheets_from_the_live_server(page: Page) -> None:
    stylesheets: list[int] = []
    page.on(
        "response",
        lambda response: stylesheets.append(response.status) if ".css" in response.url else None,
    )

    response = page.goto("/accounts/login/")

    assert response is not None and response.status == 200
    assert stylesheets and all(status == 200 for status in stylesheets)
    expect(page.get_by_role("link", name="Pipetower").first).to_be_visible()


def test_email_link_finds_the_newest_message_to_a_person(
    email_link: Callable[..., str], live_server
) -> None:
    send_mail("Old", f"{live_server.url}/teams/join/old/", None, ["grace@example.com"])
    send_mail("Other", f"{live_server.url}/teams/join/other/", None, ["alan@example.com"])
    send_mail("New", "Open https://example.org/teams/join/new/?x=1 now", None, [GRACE])

    assert email_link("grace@example.com", "/teams/join/") == "/teams/join/new/?x=1"
    assert email_link("alan@example.com", "/join/") == "/teams/join/other/"
    with pytest.raises(AssertionError, match=r"no email #3 to grace@example\.com"):
        email_link("grace@example.com", "/teams/join/", count=3, timeout=0.5)
