"""Alerts for sign-ins from a new country or device, and the "this wasn't me" link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from allauth.usersessions.models import UserSession

from pipetower.accounts.models import SignInEvent
from pipetower.audit.models import AuditEvent
from tests.accounts.security.conftest import (
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    IP_DE,
    IP_GB,
    browser,
    password_sign_in,
)


def _alerts(mailoutbox):  # type: ignore[no-untyped-def]
    return [m for m in mailoutbox if "New sign-in" in m.subject]


def _disown_path(message) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r"https?://[^/\s]+(/account/security/not-me/[^\s\"<]+/)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def usual_browser(user):  # type: ignore[no-untyped-def]
    """The person's usual browser, signed in once from the UK on Firefox/Linux."""
    client = browser(IP_GB, FIREFOX_LINUX)
    assert password_sign_in(client, user.email).status_code == 302
    return client


def test_the_first_sign_in_sends_no_alert(user, mailoutbox, committed):
    with committed():
        password_sign_in(browser(IP_GB), user.email)
    assert _alerts(mailoutbox) == []


def test_a_sign_in_from_the_usual_country_and_device_sends_no_alert(
    user, usual_browser, mailoutbox, committed
):
    with committed():
        password_sign_in(browser(IP_GB, FIREFOX_LINUX), user.email)
    assert _alerts(mailoutbox) == []


def test_a_sign_in_from_a_new_country_sends_an_alert(user, usual_browser, mailoutbox, committed):
    with committed():
        password_sign_in(browser(IP_DE, FIREFOX_LINUX), user.email)

    [alert] = _alerts(mailoutbox)
    assert alert.to == [user.email]
    assert alert.subject == "[Pipetower] New sign-in to your account from Germany"
    assert "from a country not seen before" in alert.body
    assert "🇩🇪 Germany" in alert.body
    assert IP_DE in alert.body
    assert "Firefox on Linux" in alert.body
    assert "/account/security/not-me/" in alert.body
    html = alert.alternatives[0][0]
    assert "this wasn&#x27;t me, secure my account" in html or "this wasn't me" in html
    assert SignInEvent.objects.filter(outcome="success").latest("created_at").alerted_at


def test_a_sign_in_from_a_new_browser_and_os_sends_an_alert(
    user, usual_browser, mailoutbox, committed
):
    with committed():
        password_sign_in(browser(IP_GB, CHROME_WINDOWS), user.email)
    [alert] = _alerts(mailoutbox)
    assert alert.subject == "[Pipetower] New sign-in to your account"
    assert "from a device not seen before" in alert.body
    assert "Chrome on Windows" in alert.body


def test_failed_attempts_send_no_alert(user, usual_browser, mailoutbox, committed):
    with committed():
        password_sign_in(browser(IP_DE, CHROME_WINDOWS), user.email, "wrong password")
    assert _alerts(mailoutbox) == []


def test_an_unknown_location_is_not_a_new_country(user, usual_browser, mailoutbox, committed):
    with committed():
        password_sign_in(browser("10.1.1.1", FIREFOX_LINUX), user.email)
    assert _alerts(mailoutbox) == []


@pytest.fixture
def alert(user, usual_browser, mailoutbox, committed):  # type: ignore[no-untyped-def]
    """An alert for a sign-in from Germany on Chrome/Windows; returns the link's path."""
    with committed():
        password_sign_in(browser(IP_DE, CHROME_WINDOWS), user.email)
    [message] = _alerts(mailoutbox)
    mailoutbox.clear()
    return _disown_path(message)


def test_opening_the_link_only_shows_what_will_happen(user, alert, usual_browser):
    page = browser().get(alert)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Secure your account" in html
    assert "Germany" in html
    assert "Chrome on Windows" in html
    user.refresh_from_db()
    assert user.has_usable_password()
    assert usual_browser.get("/account/profile/").status_code == 200


def test_this_wasnt_me_signs_out_everywhere_and_starts_a_password_reset(
    user, alert, usual_browser, mailoutbox, committed
):
    assert UserSession.objects.filter(user=user).count() == 2
    stranger = browser()
    with committed():
        response = stranger.post(alert)

    assert response.status_code == 200
    assert "Your account is secured" in response.content.decode()
    assert UserSession.objects.filter(user=user).count() == 0
    assert usual_browser.get("/account/profile/").status_code == 302
    user.refresh_from_db()
    assert not user.has_usable_password()
    [reset] = mailoutbox
    assert reset.to == [user.email]
    assert "/accounts/password/reset/key/" in reset.body
    assert SignInEvent.objects.exclude(disowned_at=None).count() == 1
    assert AuditEvent.objects.filter(verb="account.signin_disowned", actor=user).exists()


def test_the_reset_email_lets_the_person_choose_a_new_password(user, alert, mailoutbox, committed):
    with committed():
        browser().post(alert)
    [reset] = mailoutbox
    key_path = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", reset.body)
    assert key_path, reset.body
    client = browser()
    form_page = client.get(key_path.group(1), follow=True)
    assert form_page.status_code == 200
    new_password = "plum tractor violet harbour 93"
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"password1": new_password, "password2": new_password},
    )
    assert done.status_code == 302
    assert password_sign_in(browser(), user.email, new_password).status_code == 302


def test_the_link_works_once(alert):
    browser().post(alert)
    again = browser().get(alert)
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    assert browser().post(alert).status_code == 410


def test_an_expired_link_is_refused_with_a_clear_page(alert, settings):
    settings.SIGNIN_ALERT_LINK_TTL = timedelta(seconds=-1)
    response = browser().post(alert)
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()


def test_a_damaged_link_is_refused_with_a_clear_page(alert, user):
    damaged = alert[:-6] + "xxxxx/"
    response = browser().get(damaged)
    assert response.status_code == 410
    assert "This link is not valid" in response.content.decode()
    user.refresh_from_db()
    assert user.has_usable_password()
