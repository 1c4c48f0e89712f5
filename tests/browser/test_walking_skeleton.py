"""The walking skeleton, in a real browser: two people end up in one team.

Ada signs up, confirms her address from the email, creates a team and invites
Grace by email; Grace, in her own browser, opens the invitation, signs up
through it and sees the team with herself among its members.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRONG_PASSWORD = "quartz lantern meadow rivet 93"
TEAM = "Analytical Engines"


def sign_up(page: Page, *, name: str, email: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile(r"^Password:?$")).fill(STRONG_PASSWORD)
    page.get_by_label(re.compile(r"Password \(again\)|Confirm password", re.I)).fill(
        STRONG_PASSWORD
    )
    page.get_by_role("button", name="Create account").click()


def test_a_new_user_creates_a_team_and_an_invited_person_joins_it(
    page: Page,
    new_context: Callable[[], BrowserContext],
    email_link: Callable[..., str],
    screenshot_dir: Path,
) -> None:
    # Ada signs up and confirms her address with the link from the email.
    page.goto("/accounts/signup/")
    expect(page).to_have_title(re.compile("Create your account"))
    sign_up(page, name="Ada Lovelace", email="ada@example.com")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    page.goto(email_link("ada@example.com", "/accounts/confirm-email/"))
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    expect(page.get_by_text("ada@example.com is confirmed.")).to_be_visible()
    account = page.get_by_role("navigation", name="Account")
    expect(account.get_by_role("link", name="Ada Lovelace")).to_be_visible()

    # She creates a team and becomes its owner.
    page.goto("/teams/new/")
    page.get_by_label("Team name").fill(TEAM)
    page.get_by_role("button", name="Create team").click()
    expect(page).to_have_url(re.compile(r"/teams/[-\w]+/$"))
    slug = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", name=TEAM)).to_be_visible()

    # She invites Grace by email.
    page.goto(f"/teams/{slug}/members/")
    page.get_by_label("Email address").fill("grace@example.com")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to grace@example.com")).to_be_visible()
    invitation = email_link("grace@example.com", "/teams/join/")
    assert invitation.startswith("/teams/join/")

    # Grace, in her own browser, opens the invitation and signs up through it.
    grace = new_context().new_page()
    grace.goto(invitation)
    expect(grace.get_by_role("heading", name=f"Join {TEAM}")).to_be_visible()
    expect(grace.get_by_text("Ada Lovelace")).to_be_visible()
    grace.get_by_role("link", name="Create an account").click()
    sign_up(grace, name="Grace Hopper", email="grace@example.com")

    # She lands in the team and sees it, with herself among its members.
    expect(grace).to_have_url(re.compile(rf"/teams/{slug}/$"))
    expect(grace.get_by_role("navigation", name="Account")).to_contain_text("Grace Hopper")
    expect(grace.get_by_role("heading", name=TEAM)).to_be_visible()
    grace.goto(f"/teams/{slug}/members/")
    expect(grace.get_by_role("heading", name=f"Members of {TEAM}")).to_be_visible()
    members = grace.get_by_role("table").first
    expect(members.get_by_role("row", name=re.compile("Grace Hopper"))).to_be_visible()
    expect(members.get_by_role("row", name=re.compile("Ada Lovelace"))).to_be_visible()

    # And Ada sees Grace in her members list too.
    page.reload()
    expect(page.get_by_role("row", name=re.compile("Grace Hopper"))).to_be_visible()

    page.screenshot(path=str(screenshot_dir / "ada-members.png"), full_page=True)
    grace.screenshot(path=str(screenshot_dir / "grace-members.png"), full_page=True)
    print(f"screenshots: {screenshot_dir}")
