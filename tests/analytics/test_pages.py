"""The cookie page, the page about blocked cookies, the CSRF failure page, the
staff statistics and the operator's analytics script."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from django.test import Client

from pipetower.accounts.models import User
from pipetower.analytics.cookies import CONSENT_COOKIE
from pipetower.analytics.services import experiment_exposure_record, page_view_record
from tests.analytics.conftest import consent_cookie
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SNIPPET = "https://stats.example.com/script.js"


def staff(**fields: Any) -> User:
    return cast(User, UserFactory(is_staff=True, **fields))


def test_the_cookie_page_lists_every_cookie_with_purpose_and_lifetime(client: Client) -> None:
    html = client.get("/cookies/").content.decode()

    names = re.findall(r"<tr><td><code>([^<]+)</code></td>", html)
    assert {"sessionid", "csrftoken", "messages", "pt_consent", "pt_ab"} <= set(names)
    assert "sign-in flow state (in the session)" in names  # allauth keeps its state there
    assert "180 days" in html and "90 days" in html and "14 days" in html
    assert "own visit counts need no cookie" in html


def test_the_cookie_page_has_no_banner_on_top_of_its_own_form(client: Client) -> None:
    html = client.get("/cookies/").content.decode()

    assert 'id="cookie-banner"' not in html
    assert '<label><input type="checkbox" name="analytics"' in html
    assert "You have not chosen yet: optional cookies are off." in html


def test_the_blocked_cookies_page_explains_what_fails(client: Client) -> None:
    html = client.get("/cookies/blocked/").content.decode()

    assert "When cookies are blocked" in html
    assert "Signing in" in html and "Sending any form" in html


def test_a_refused_form_explains_cookies_and_links_to_the_help_page() -> None:
    browser = Client(enforce_csrf_checks=True)

    response = browser.post("/cookies/consent/", {"choice": "accept_all"})

    assert response.status_code == 403
    html = response.content.decode()
    assert "This form could not be sent" in html
    assert "cookies are blocked" in html
    assert 'href="/cookies/blocked/"' in html
    assert CONSENT_COOKIE not in response.cookies


def test_a_wrong_token_with_cookies_on_says_to_reload(client: Client) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.get("/cookies/")  # receives the CSRF cookie

    response = browser.post("/cookies/consent/", {"choice": "accept_all"})

    assert response.status_code == 403
    assert b"did not match" in response.content


def test_staff_see_the_counts(client: Client) -> None:
    page_view_record(path="/")
    page_view_record(path="/")
    experiment_exposure_record(experiment="onboarding", variant="first_run")
    client.force_login(staff())

    html = client.get("/cookies/stats/").content.decode()

    assert "<tr><td><code>/</code></td><td>2</td></tr>" in html
    assert "<td>onboarding</td><td>first_run</td><td>1</td>" in html


def test_the_statistics_page_is_refused_to_people_who_are_not_staff(
    client: Client, user: User
) -> None:
    assert client.get("/cookies/stats/")["Location"].startswith("/accounts/login/")
    client.force_login(user)
    assert client.get("/cookies/stats/").status_code == 403


def test_the_statistics_page_says_when_nothing_was_counted(client: Client) -> None:
    client.force_login(staff())

    assert b"No page views counted yet." in client.get("/cookies/stats/").content


def test_the_counts_are_in_the_admin_read_only(client: Client) -> None:
    page_view_record(path="/teams/")
    client.force_login(staff(is_superuser=True))

    listing = client.get("/admin/analytics/pageview/")
    assert listing.status_code == 200
    assert b"/teams/" in listing.content
    assert client.get("/admin/analytics/pageview/add/").status_code == 403


def test_the_operators_script_loads_only_after_analytics_consent(
    client: Client, settings: Any
) -> None:
    settings.ANALYTICS_SNIPPET_URL = SNIPPET

    before = client.get("/")
    assert SNIPPET.encode() not in before.content
    assert "stats.example.com" not in before["Content-Security-Policy"]

    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=False)
    after = client.get("/")
    assert f'<script src="{SNIPPET}" async data-analytics-snippet></script>' in (
        after.content.decode()
    )
    policy = after["Content-Security-Policy"]
    assert "script-src 'self' https://stats.example.com" in policy
    assert "connect-src 'self' https://stats.example.com" in policy


def test_the_operators_script_is_never_loaded_for_a_restricted_person(
    client: Client, restricted_user: User, settings: Any
) -> None:
    settings.ANALYTICS_SNIPPET_URL = SNIPPET
    client.force_login(restricted_user)
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)

    response = client.get("/teams/")

    assert SNIPPET.encode() not in response.content
    assert "stats.example.com" not in response["Content-Security-Policy"]


def test_accepting_in_the_banner_asks_the_script_to_reload_for_the_operators_script(
    client: Client, settings: Any
) -> None:
    settings.ANALYTICS_SNIPPET_URL = SNIPPET

    response = client.post(
        "/cookies/consent/", {"choice": "accept_all"}, headers={"Accept": "application/json"}
    )

    assert response.json()["reload"] is True


def test_the_cookie_page_names_the_operators_analytics_service_when_set(
    client: Client, settings: Any
) -> None:
    settings.ANALYTICS_SNIPPET_URL = SNIPPET

    assert b"set by the analytics service" in client.get("/cookies/").content
