"""Every sign-in attempt that names an account is logged for its owner."""

from __future__ import annotations

import pytest
from allauth.core import context
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.test import RequestFactory

from pipetower.accounts.models import SignInEvent
from tests.accounts.security.conftest import (
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    IP_DE,
    IP_GB,
    browser,
    password_sign_in,
)
from tests.factories import UserFactory


def test_a_password_sign_in_is_logged_with_address_place_and_device(user):
    response = password_sign_in(browser(IP_GB, FIREFOX_LINUX), user.email)
    assert response.status_code == 302

    event = SignInEvent.objects.get(user=user)
    assert (event.method, event.outcome) == ("password", "success")
    assert event.ip == IP_GB
    assert (event.country_code, event.country_name) == ("GB", "United Kingdom")
    assert (event.browser, event.os) == ("Firefox", "Linux")
    assert event.device == "Firefox on Linux"
    assert event.user_agent == FIREFOX_LINUX


def test_a_wrong_password_is_logged_as_a_failure_for_that_account(user):
    response = password_sign_in(browser(IP_DE, CHROME_WINDOWS), user.email, "wrong password")
    assert response.status_code == 200

    event = SignInEvent.objects.get(user=user)
    assert (event.method, event.outcome, event.reason) == ("password", "failed", "Wrong password")
    assert (event.ip, event.country_code, event.browser, event.os) == (
        IP_DE,
        "DE",
        "Chrome",
        "Windows",
    )


def test_attempts_for_unknown_addresses_are_not_logged_anywhere(user):
    password_sign_in(browser(), "nobody@example.com", "whatever it is")
    assert not SignInEvent.objects.exists()


def test_a_forged_x_forwarded_for_does_not_change_the_logged_address(user, settings):
    settings.TRUSTED_PROXIES = []
    password_sign_in(browser(IP_GB), user.email, HTTP_X_FORWARDED_FOR="8.8.8.8")
    assert SignInEvent.objects.get(user=user).ip == IP_GB


def test_behind_a_trusted_proxy_the_forwarded_client_is_logged(user, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    password_sign_in(browser("10.0.0.2"), user.email, HTTP_X_FORWARDED_FOR=IP_DE)
    event = SignInEvent.objects.get(user=user)
    assert (event.ip, event.country_code) == (IP_DE, "DE")


@pytest.mark.parametrize("ip", ["10.9.8.7", "::1", "2001:db8::5", "fe80::1"])
def test_sign_ins_from_private_and_unlocatable_addresses_are_logged_with_unknown_place(user, ip):
    response = password_sign_in(browser(ip), user.email)
    assert response.status_code == 302
    event = SignInEvent.objects.get(user=user)
    assert event.ip == ip
    assert event.country_code == ""
    assert event.location.label == "Unknown location"


def test_a_missing_or_strange_user_agent_is_an_unknown_device(user):
    password_sign_in(browser(user_agent=""), user.email)
    password_sign_in(browser(user_agent="\x00" * 2000), user.email)
    devices = {e.device for e in SignInEvent.objects.filter(user=user)}
    assert devices == {"Unknown device"}
    assert all(len(e.user_agent) <= 500 for e in SignInEvent.objects.all())


def test_the_log_is_erased_with_the_account(user):
    password_sign_in(browser(), user.email)
    assert SignInEvent.objects.filter(user=user).exists()
    user.delete()
    assert not SignInEvent.objects.exists()


def test_signing_in_with_force_login_or_the_session_records_nothing(client, user):
    client.force_login(user)
    client.get("/account/profile/")
    assert not SignInEvent.objects.exists()


# --- two-factor ------------------------------------------------------------------


def _current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


@pytest.fixture
def totp_user(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="mfa@example.com")
    secret = generate_totp_secret()
    # Secrets are stored encrypted for the person acting: play their signed-in request.
    request = RequestFactory().get("/")
    request.user = user
    with context.request_context(request):
        TOTP.activate(user, secret)
    user.totp_secret = secret  # the test keeps it to compute codes
    return user


def test_with_two_factor_each_step_is_logged(totp_user):
    client = browser(IP_GB, FIREFOX_LINUX)
    step_one = password_sign_in(client, totp_user.email)
    assert step_one.status_code == 302
    assert step_one["Location"] == "/accounts/2fa/authenticate/"

    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200
    right = client.post(
        "/accounts/2fa/authenticate/", {"code": _current_code(totp_user.totp_secret)}
    )
    assert right.status_code == 302

    events = list(SignInEvent.objects.filter(user=totp_user).order_by("created_at", "id"))
    assert [(e.method, e.outcome, e.second_factor) for e in events] == [
        ("password", "pending", ""),
        ("mfa", "failed", Authenticator.Type.TOTP),
        ("password", "success", Authenticator.Type.TOTP),
    ]
    assert events[0].reason == "Correct; a two-factor code was asked for"
    assert events[1].reason == "Wrong code"
    assert all(e.ip == IP_GB and e.country_code == "GB" for e in events)


def test_a_password_without_the_second_step_is_not_a_sign_in(totp_user):
    client = browser()
    password_sign_in(client, totp_user.email)
    assert client.get("/account/profile/").status_code == 302
    assert not SignInEvent.objects.filter(outcome="success").exists()
    assert SignInEvent.objects.get().outcome == "pending"


def test_confirming_a_new_address_by_email_link_is_logged_as_an_email_link_sign_in(
    db, mailoutbox, committed
):
    from tests.accounts.conftest import STRONG_PASSWORD, link_in

    client = browser(IP_DE)
    with committed():
        client.post(
            "/accounts/signup/",
            {
                "name": "Ada",
                "email": "new@example.com",
                "password1": STRONG_PASSWORD,
                "password2": STRONG_PASSWORD,
            },
        )
    assert client.post(link_in(mailoutbox[0])).status_code == 302

    event = SignInEvent.objects.get(user__email="new@example.com")
    assert (event.method, event.outcome, event.country_code) == ("email_link", "success", "DE")
