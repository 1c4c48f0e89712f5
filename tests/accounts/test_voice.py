"""Pipetower's voice: every allauth page, email and message a person can reach is in
Pipetower's words. Each is rendered and checked against the library's stock phrases.

A new allauth template a person can reach shows up here as a failure until it is
overridden in pipetower/accounts/templates/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import allauth
import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.template.loader import get_template
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.accounts.mfa.helpers import give_totp, reauthenticate, sign_in_with_password
from tests.factories import UserFactory

# The library's own phrases (case-sensitive). None may reach a person.
STOCK_PHRASES = [
    "Please reauthenticate to safeguard your account",
    "Confirm Access",
    "Remember Me",
    "Authenticator App Activated",
    "Authenticator App Deactivated",
    "Authenticator App",
    "Please confirm that",
    "is an email address for user",
    "Sign Out",
    "Sign In",
    "Sign Up",
    "Thank you for using",
    "You're receiving this email because",
    "You are receiving this mail because",
    "You are receiving this email because",
    "This mail can be safely ignored",
    "Successfully signed in as",
    "You have signed out.",
    "Confirmation email sent to",
    "Password successfully",
    "Forgotten your password?",
    "We have sent an email to you",
    "Please contact us",
    "Two-Factor Authentication",
    "Recovery Codes",
    "Security Key",
    "Email Addresses",
    "Change Password",
    "Alternative options",
    "Authenticator secret",
    "Download codes",
    "Generate new codes",
    "No recovery codes set up",
    "Third-Party",
    "third-party",
    "Email Confirmation",
    "Unable to confirm",
    "This email confirmation link expired or is invalid",
    "The password reset link was invalid",
    "Enter an authenticator code",
    "Enter your password:",
    "Login Cancelled",
    "Account Inactive",
    "Trust this Browser",
    "We are sorry, but the sign up is currently closed",
    "Primary email address set",
    "Removed email address",
    "You have confirmed",
    "Signed out of all other sessions",
    "Mark as Primary",
    "Re-send Verification",
    "Add Email",
    "Your email address is still pending verification",
]

ALLAUTH_TEMPLATES = Path(allauth.__file__).parent / "templates"


def stock_phrases_in(text: str) -> list[str]:
    return [phrase for phrase in STOCK_PHRASES if phrase in text]


def test_the_phrase_check_catches_the_librarys_own_templates():
    """Planted: allauth's own reauthentication page and TOTP email fail the check."""
    page = (ALLAUTH_TEMPLATES / "account" / "reauthenticate.html").read_text()
    mail = (ALLAUTH_TEMPLATES / "mfa" / "email" / "totp_activated_subject.txt").read_text()
    assert stock_phrases_in(page) and stock_phrases_in(mail)


# --- pages ----------------------------------------------------------------------------------


@pytest.fixture
def person(db):  # type: ignore[no-untyped-def]
    return UserFactory(email="ada@example.com", name="Ada Lovelace")


@pytest.fixture
def signed_in(person) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    sign_in_with_password(client, person.email)
    return client


def assert_in_our_words(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.get("Location"))
    html = response.content.decode()
    assert not stock_phrases_in(html), (url, stock_phrases_in(html))
    assert "Pipetower" in html, url
    return html


ANONYMOUS_PAGES = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/password/reset/key/1-not-a-key/",
    "/accounts/confirm-email/",
    "/accounts/confirm-email/not-a-key/",
    "/accounts/inactive/",
    "/accounts/3rdparty/login/cancelled/",
]


def test_the_google_sign_in_error_page_speaks_pipetower(db):
    assert_in_our_words(Client(), "/accounts/3rdparty/login/error/", status=401)


@pytest.mark.parametrize("url", ANONYMOUS_PAGES)
def test_signed_out_pages_speak_pipetower(db, url):
    assert_in_our_words(Client(), url)


def test_the_email_confirmation_page_speaks_pipetower(person):
    address = EmailAddress.objects.create(user=person, email="second@example.com", verified=False)
    key = EmailConfirmationHMAC(address).key
    html = assert_in_our_words(Client(), f"/accounts/confirm-email/{key}/")
    assert "second@example.com" in html


SIGNED_IN_PAGES = [
    "/accounts/logout/",
    "/accounts/reauthenticate/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/3rdparty/",
    "/account/security/",
]


@pytest.mark.parametrize("url", SIGNED_IN_PAGES)
def test_signed_in_pages_speak_pipetower(signed_in, url):
    assert_in_our_words(signed_in, url)


@pytest.mark.parametrize(
    "url",
    ["/accounts/2fa/totp/activate/", "/accounts/2fa/webauthn/add/", "/accounts/2fa/webauthn/"],
)
def test_two_factor_set_up_pages_speak_pipetower(signed_in, url):
    reauthenticate(signed_in)
    assert_in_our_words(signed_in, url)


def test_the_sessions_page_is_the_security_page(signed_in):
    response = signed_in.get("/accounts/sessions/")
    assert response.status_code in {301, 302}
    assert response["Location"].endswith("/account/security/#sessions")
    html = assert_in_our_words(signed_in, "/account/security/")
    assert "Where you are signed in" in html


def test_without_any_second_factor_there_is_no_talk_of_recovery_codes_or_keys(signed_in):
    html = assert_in_our_words(signed_in, "/accounts/2fa/")
    assert "recovery code" not in html.lower()
    assert "Use a security key" not in html


@pytest.fixture
def with_totp(person):  # type: ignore[no-untyped-def]
    return give_totp(person)


def test_the_two_factor_step_offers_a_security_key_only_when_one_is_registered(person, with_totp):
    client = Client()
    sign_in_with_password(client, person.email)
    html = assert_in_our_words(client, reverse("mfa_authenticate"))
    assert "Use a security key" not in html
    assert "recovery code" not in html.lower()  # none were generated


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/2fa/",
        "/accounts/2fa/totp/deactivate/",
        "/accounts/2fa/recovery-codes/generate/",
        "/accounts/2fa/reauthenticate/",
    ],
)
def test_two_factor_pages_with_an_app_speak_pipetower(signed_in, with_totp, url):
    reauthenticate(signed_in)
    assert_in_our_words(signed_in, url)


# --- emails and messages ---------------------------------------------------------------------


def _mail_templates() -> list[str]:
    names = []
    for folder in ("account/email", "mfa/email"):
        for path in sorted((ALLAUTH_TEMPLATES / folder).glob("*_message.txt")):
            if path.name.startswith(("password_reset_code", "login_code", "base_")):
                continue  # sign-in and reset by code are turned off (docs/security.md)
            names.append(f"{folder}/{path.name.removesuffix('_message.txt')}")
    return names


def _mail_context(person: Any) -> dict[str, Any]:
    request = RequestFactory().get("/")
    request.user = person
    return {
        "request": request,
        "user": person,
        "email": person.email,
        "activate_url": "http://localhost:8000/accounts/confirm-email/KEY/",
        "password_reset_url": "http://localhost:8000/accounts/password/reset/key/1-KEY/",
        "signup_url": "http://localhost:8000/accounts/signup/",
        "from_email": "old@example.com",
        "to_email": "new@example.com",
        "deleted_email": "old@example.com",
        "ip": "203.0.113.5",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        "timestamp": 1_700_000_000,
        "base_url": "http://localhost:8000",
        "current_site": None,
    }


@pytest.mark.parametrize("prefix", _mail_templates())
def test_every_allauth_email_speaks_pipetower(person, prefix):
    context = _mail_context(person)
    subject = get_template(f"{prefix}_subject.txt").render(context)
    body = get_template(f"{prefix}_message.txt").render(context)
    assert not stock_phrases_in(subject + body), (prefix, stock_phrases_in(subject + body))
    assert "Pipetower" in body, prefix


def _message_templates() -> list[str]:
    return [
        str(path.relative_to(ALLAUTH_TEMPLATES))
        for folder in ("account/messages", "mfa/messages", "usersessions/messages")
        for path in sorted((ALLAUTH_TEMPLATES / folder).glob("*.txt"))
        if not path.name.startswith(("phone_", "login_code"))
    ]


@pytest.mark.parametrize("name", _message_templates())
def test_every_allauth_message_speaks_pipetower(person, name):
    context = {
        "user": person,
        "email": person.email,
        "from_email": "old@example.com",
        "to_email": "new@example.com",
        "deleted_email": "old@example.com",
        "provider": "Google",
    }
    text = get_template(name).render(context)
    assert not stock_phrases_in(text), (name, stock_phrases_in(text))
