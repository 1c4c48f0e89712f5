"""The security page: recent sign-ins, sessions, API tokens."""

from __future__ import annotations

from allauth.usersessions.models import UserSession

from pipetower.accounts.models import SignInEvent
from pipetower.accounts.security_views import SIGNINS_PER_PAGE
from pipetower.api.services import api_token_create
from tests.accounts.security.conftest import (
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    IP_DE,
    IP_GB,
    SAFARI_IPHONE,
    browser,
    password_sign_in,
)


def _signed_in(user, ip: str = IP_GB, ua: str = FIREFOX_LINUX):  # type: ignore[no-untyped-def]
    client = browser(ip, ua)
    assert password_sign_in(client, user.email).status_code == 302
    return client


def test_the_page_needs_an_account(client, db):
    response = client.get("/account/security/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_account_menu_links_to_the_security_page(user):
    html = _signed_in(user).get("/account/profile/").content.decode()
    assert 'href="/account/security/"' in html


def test_recent_sign_ins_show_place_with_flag_address_and_device(user):
    password_sign_in(browser(IP_DE, CHROME_WINDOWS), user.email, "wrong password")
    client = _signed_in(user, IP_GB, FIREFOX_LINUX)

    response = client.get("/account/security/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Recent sign-ins" in html
    assert "🇬🇧" in html and "United Kingdom" in html
    assert "🇩🇪" in html and "Germany" in html
    assert IP_GB in html and IP_DE in html
    assert "Firefox on Linux" in html and "Chrome on Windows" in html
    assert "Wrong password" in html
    events = list(response.context["events"])
    assert [e.outcome for e in events] == ["success", "failed"]  # newest first


def test_a_city_database_shows_the_city_and_its_attribution(user, city_db):
    client = _signed_in(user, IP_DE)
    html = client.get("/account/security/").content.decode()
    assert "Hanover, Germany" in html
    assert '<a href="https://db-ip.com">IP geolocation by DB-IP</a>' in html


def test_no_attribution_without_a_database(user, settings):
    settings.GEOIP_PATH = ""
    html = _signed_in(user).get("/account/security/").content.decode()
    assert "DB-IP" not in html


def test_other_peoples_sign_ins_are_not_shown(user, make_member):
    other = make_member()
    password_sign_in(browser(IP_DE), other.email, "wrong password")
    client = _signed_in(user)
    events = list(client.get("/account/security/").context["events"])
    assert {e.user_id for e in events} == {user.pk}


def test_the_sign_in_list_is_paginated(user):
    client = _signed_in(user)
    SignInEvent.objects.bulk_create(
        SignInEvent(user=user, method="password", outcome="failed", ip=IP_DE)
        for _ in range(SIGNINS_PER_PAGE + 3)
    )
    first = client.get("/account/security/")
    assert len(first.context["events"]) == SIGNINS_PER_PAGE
    assert "Page 1 of 2" in first.content.decode()
    second = client.get("/account/security/?page=2")
    assert len(second.context["events"]) == 4
    assert client.get("/account/security/?page=banana").status_code == 200


def test_sessions_are_listed_with_place_and_device_and_this_browser_marked(user):
    _signed_in(user, IP_DE, SAFARI_IPHONE)
    client = _signed_in(user, IP_GB, FIREFOX_LINUX)
    html = client.get("/account/security/").content.decode()
    assert "Where you are signed in" in html
    assert "Mobile Safari on iOS" in html
    assert "This browser" in html
    assert html.count("Sign out this session") == 1  # not offered for this browser


def test_signing_out_another_session(user):
    phone = _signed_in(user, IP_DE, SAFARI_IPHONE)
    laptop = _signed_in(user, IP_GB, FIREFOX_LINUX)
    phone_session = UserSession.objects.get(user=user, ip=IP_DE)

    response = laptop.post(f"/account/security/sessions/{phone_session.pk}/end/", follow=True)

    assert "That session is signed out." in response.content.decode()
    assert phone.get("/account/profile/").status_code == 302
    assert laptop.get("/account/profile/").status_code == 200


def test_a_session_that_is_gone_or_someone_elses_gets_a_clear_message(user, make_member):
    other = make_member()
    _signed_in(other, IP_DE)
    others_session = UserSession.objects.get(user=other)
    laptop = _signed_in(user)

    response = laptop.post(f"/account/security/sessions/{others_session.pk}/end/", follow=True)
    assert "That session has already ended." in response.content.decode()
    assert UserSession.objects.filter(pk=others_session.pk).exists()
    response = laptop.post("/account/security/sessions/999999/end/", follow=True)
    assert "That session has already ended." in response.content.decode()


def test_this_browsers_session_is_not_ended_from_the_list(user):
    laptop = _signed_in(user)
    own = UserSession.objects.get(user=user)
    response = laptop.post(f"/account/security/sessions/{own.pk}/end/", follow=True)
    assert "use “Sign out” instead" in response.content.decode()
    assert laptop.get("/account/profile/").status_code == 200


def test_sign_out_everywhere_else(user):
    phone = _signed_in(user, IP_DE, SAFARI_IPHONE)
    tablet = _signed_in(user, IP_DE, CHROME_WINDOWS)
    laptop = _signed_in(user, IP_GB, FIREFOX_LINUX)

    response = laptop.post("/account/security/sessions/end-others/", follow=True)

    assert "2 other sessions are signed out. This one stays signed in." in response.content.decode()
    assert phone.get("/account/profile/").status_code == 302
    assert tablet.get("/account/profile/").status_code == 302
    assert laptop.get("/account/profile/").status_code == 200
    assert UserSession.objects.filter(user=user).count() == 1


def test_sign_out_everywhere_else_when_there_is_nowhere_else(user):
    laptop = _signed_in(user)
    response = laptop.post("/account/security/sessions/end-others/", follow=True)
    assert "You were not signed in anywhere else." in response.content.decode()


def test_ending_sessions_needs_a_post(user):
    laptop = _signed_in(user)
    assert laptop.get("/account/security/sessions/end-others/").status_code == 405


def test_api_tokens_are_listed_with_a_link_to_manage_them(user):
    api_token_create(user=user, name="deploy script", scope="read")
    html = _signed_in(user).get("/account/security/").content.decode()
    assert "deploy script" in html
    assert 'href="/tokens/"' in html


def test_no_tokens_says_so(user):
    html = _signed_in(user).get("/account/security/").content.decode()
    assert "You have no API tokens." in html
