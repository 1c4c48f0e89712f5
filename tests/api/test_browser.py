"""The token page and the API docs page in a real browser (headless Chromium)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.sync_api import BrowserContext, Page, expect

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_authenticate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in(context: BrowserContext, user, live_server) -> Page:
    """A page whose browser carries `user`'s session (no need to drive the sign-in form)."""
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context.new_page()


def test_create_copy_and_revoke_a_token(
    new_context: Callable[[], BrowserContext], user, live_server, screenshot_dir: Path
):
    context = new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = signed_in(context, user, live_server)

    page.goto("/tokens/")
    expect(page.get_by_role("heading", name="No tokens yet")).to_be_visible()
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("deploy script")
    page.get_by_label("Read and write").check()
    page.get_by_label("Expires after (days)").fill("30")
    page.get_by_role("button", name="Create token").click()

    shown = page.locator("#new-token")
    expect(shown).to_have_text(re.compile(r"^ptk_[0-9a-f]{12}_[\w-]{43}$"))
    plaintext = shown.inner_text()
    copy = page.get_by_role("button", name="Copy token")
    expect(copy).to_be_focused()
    page.screenshot(path=str(screenshot_dir / "token-created.png"), full_page=True)
    copy.click()
    expect(page.locator("[data-copy=new-token]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == plaintext
    assert api_token_authenticate(raw_token=plaintext, ip=None).name == "deploy script"

    page.goto("/tokens/")
    expect(page.locator("body")).not_to_contain_text(plaintext)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke deploy script").click()
    expect(page.get_by_text("Token “deploy script” is revoked.")).to_be_visible()
    expect(page.locator(".badge-revoked")).to_have_text("Revoked")
    assert ApiToken.objects.get().state == "revoked"


def test_docs_page_works_offline_and_calls_the_api_with_the_session(
    new_context: Callable[[], BrowserContext], user, live_server
):
    context = new_context()
    outside: list[str] = []
    context.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if urlsplit(request.url).netloc != urlsplit(live_server.url).netloc
            and not request.url.startswith("data:")
            else None
        ),
    )
    page = signed_in(context, user, live_server)

    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile("Pipetower API"))).to_be_visible()
    operation = page.locator("#operations-me-me_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text("ada@example.com")

    assert outside == []
