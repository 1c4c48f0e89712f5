"""Adding a server and pinning its host key, in a real browser against a real sshd."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from pipetower.servers.models import Server, TeamSshKey
from tests.factories import PASSWORD
from tests.sshd import SshdServer

PRIVATE_KEY = re.compile(r"^Private key:?$")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile(r"^Password")).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("navigation", name="Account")).to_be_visible()


def test_an_owner_adds_a_server_tests_it_and_pins_its_host_key(
    page: Page, user, team, sshd: SshdServer, screenshot_dir: Path
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, user.email)

    # The empty list explains what to do; reading it creates nothing, a button
    # creates the team key, which is then offered to copy.
    page.goto(f"/teams/{team.slug}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers").click()
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    assert not TeamSshKey.objects.filter(team=team).exists()
    page.get_by_role("button", name="Create the team key").click()
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    key = TeamSshKey.objects.get(team=team)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key.public_key
    page.screenshot(path=str(screenshot_dir / "servers-empty.png"), full_page=True)
    sshd.authorize(key.public_key)

    # The add form shows only the credentials of the chosen method.
    page.get_by_role("link", name="Add your first server").click()
    expect(page.get_by_label("Name")).to_be_focused()
    expect(page.get_by_label(PRIVATE_KEY)).to_be_hidden()
    page.get_by_label("An uploaded private key").check()
    expect(page.get_by_label(PRIVATE_KEY)).to_be_visible()
    page.get_by_label("The team's SSH key").check()
    page.get_by_label("Name").fill("web-1")
    page.get_by_label("Host").fill(sshd.host)
    page.get_by_label("Port").fill(str(sshd.port))
    page.get_by_label("SSH user").fill(sshd.user)
    page.get_by_label("Tags").fill("web, eu")
    page.screenshot(path=str(screenshot_dir / "servers-add.png"), full_page=True)
    page.get_by_role("button", name="Add server").click()
    expect(page.get_by_role("heading", name="web-1")).to_be_visible()

    # Testing the connection shows the host key's fingerprint; the owner confirms it.
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".fingerprint")).to_contain_text(sshd.fingerprint)
    page.screenshot(path=str(screenshot_dir / "servers-confirm.png"), full_page=True)
    page.get_by_role("button", name="Confirm and pin this key").click()
    expect(page.get_by_text(f"Pinned host key {sshd.fingerprint}")).to_be_visible()

    # Now Pipetower logs in and shows what it found.
    page.get_by_role("button", name="Test connection").click()
    server = Server.objects.get(team=team)
    expect(page.get_by_text("Logged in to").first).to_be_visible()
    expect(page.locator(".facts").last).to_contain_text(server.remote_hostname)
    page.screenshot(path=str(screenshot_dir / "servers-detail.png"), full_page=True)
    assert server.host_key_fingerprints == [sshd.fingerprint]
