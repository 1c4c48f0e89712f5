"""Two-factor authentication in a real browser.

Ada turns on an authenticator app (the test computes the codes with RFC 6238),
saves her recovery codes, signs out and back in with a code, and sees that
sign-in on her security page. A second browser signs in with a recovery code;
Ada ends that session from her security page, and the second browser is out.
No page breaks the Content-Security-Policy on the way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect

from tests.accounts.mfa.helpers import fresh_period, totp_code
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch_csp(page: Page, violations: list[str]) -> None:
    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", seen)


def sign_in_with_password(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_ada_turns_on_totp_signs_in_with_a_code_and_ends_another_session(
    page: Page, new_context: Callable[[], BrowserContext], screenshot_dir: Path
) -> None:
    UserFactory(email="ada@example.com", name="Ada Lovelace")
    violations: list[str] = []
    watch_csp(page, violations)

    # Ada signs in and sets up an authenticator app, confirming her password first.
    sign_in_with_password(page, "ada@example.com")
    expect(page.get_by_role("navigation", name="Account")).to_contain_text("Ada Lovelace")
    page.goto("/accounts/2fa/")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_role("link", name="Set up an authenticator app").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#authenticator_secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.screenshot(path=str(screenshot_dir / "totp-setup.png"), full_page=True)
    fresh_period(margin=10)
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on two-factor authentication").click()

    # Her recovery codes are shown once, with a download.
    expect(page.get_by_role("heading", name="Save these codes now")).to_be_visible()
    codes = page.locator("#recovery_codes").inner_text().split()
    assert len(codes) == 10
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as a text file").click()
    assert Path(download.value.path()).read_text().split() == codes
    page.get_by_label("I have saved my recovery codes").check()
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_have_text("On")

    # She signs out, and back in: the password alone is not enough.
    page.get_by_role("button", name="Sign out").click()
    sign_in_with_password(page, "ada@example.com")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).not_to_contain_text("Ada Lovelace")
    page.get_by_label("Code").fill("000000" if totp_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    fresh_period(margin=10)
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text("Ada Lovelace")

    # A second browser signs in as Ada with a recovery code.
    other = new_context().new_page()
    watch_csp(other, violations)
    sign_in_with_password(other, "ada@example.com")
    other.get_by_label("Code").fill(codes[0])
    other.get_by_role("button", name="Verify and sign in").click()
    expect(other.get_by_role("navigation", name="Account")).to_contain_text("Ada Lovelace")

    # Ada's security page lists the two-factor sign-ins and both sessions.
    page.goto("/account/security/")
    signins = page.get_by_role("table").first
    expect(signins).to_contain_text("authenticator app")
    expect(signins).to_contain_text("recovery code")
    sessions = page.locator(
        "section", has=page.get_by_role("heading", name="Where you are signed in")
    )
    expect(sessions.get_by_role("row")).to_have_count(3)  # the header and two sessions
    page.screenshot(path=str(screenshot_dir / "security-page.png"), full_page=True)

    # She ends the other session; it is gone from the list and from the other browser.
    sessions.get_by_role("button", name=re.compile("Sign out this session")).click()
    expect(sessions.get_by_role("row")).to_have_count(2)
    expect(sessions).to_contain_text("This browser")
    other.goto("/account/security/")
    expect(other).to_have_url(re.compile(r"/accounts/login/"))

    assert violations == [], "\n".join(violations)
    print(f"screenshots: {screenshot_dir}")


def add_virtual_authenticator(context: BrowserContext, page: Page) -> None:
    """Chromium's virtual WebAuthn authenticator (DevTools protocol): a real WebAuthn
    ceremony in the browser, with a software key that always consents."""
    session = context.new_cdp_session(page)
    session.send("WebAuthn.enable")
    session.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_ada_adds_a_passkey_and_signs_in_with_it(
    new_context: Callable[[], BrowserContext], screenshot_dir: Path
) -> None:
    UserFactory(email="ada@example.com", name="Ada Lovelace")
    context = new_context()
    page = context.new_page()
    violations: list[str] = []
    watch_csp(page, violations)
    add_virtual_authenticator(context, page)

    sign_in_with_password(page, "ada@example.com")
    expect(page.get_by_role("navigation", name="Account")).to_contain_text("Ada Lovelace")
    page.goto("/accounts/2fa/")
    page.get_by_role("link", name="Add a security key").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    expect(page.get_by_role("heading", name="Add a security key or passkey")).to_be_visible()
    page.get_by_label("Name").fill("Laptop passkey")
    page.get_by_label(re.compile("sign in without a password")).check()
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("heading", name="Save these codes now")).to_be_visible()
    page.goto("/accounts/2fa/webauthn/")
    expect(page.get_by_text("Laptop passkey")).to_be_visible()
    expect(page.get_by_text("Passkey", exact=True)).to_be_visible()

    # Signing in with the password now asks for the key as the second step.
    page.get_by_role("button", name="Sign out").click()
    sign_in_with_password(page, "ada@example.com")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text("Ada Lovelace")

    # And the passkey alone signs her in from the sign-in page.
    page.get_by_role("button", name="Sign out").click()
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text("Ada Lovelace")
    page.goto("/account/security/")
    expect(page.get_by_role("table").first).to_contain_text("security key")
    page.screenshot(path=str(screenshot_dir / "passkey-security.png"), full_page=True)

    assert violations == [], "\n".join(violations)
