"""Saving cookie choices: the banner's buttons, the cookie page's form, the ledger."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from pipetower.accounts.models import User
from pipetower.analytics.cookies import AB_COOKIE, CONSENT_COOKIE, CookieChoices
from pipetower.privacy.consent import processing_allowed
from pipetower.privacy.models import Channel, ConsentEvent

pytestmark = pytest.mark.django_db


def test_a_first_visit_shows_the_banner_with_three_equal_buttons(client: Client) -> None:
    response = client.get("/")

    html = response.content.decode()
    buttons = re.findall(
        r'<button type="submit" class="([^"]+)" name="choice" value="\w+">([^<]+)</button>', html
    )
    assert [label for _, label in buttons] == ["Accept all", "Reject all", "Choose"]
    assert len({css for css, _ in buttons}) == 1  # one style, one size for all three


def test_a_first_visit_sets_no_optional_cookie(client: Client) -> None:
    response = client.get("/")

    assert set(response.cookies) <= {"csrftoken"}


def test_accept_all_without_script_stores_the_choice_and_returns_to_the_page(
    client: Client,
) -> None:
    response = client.post(
        "/cookies/consent/", {"choice": "accept_all", "next": "/accounts/login/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies[CONSENT_COOKIE].value == "v1.a1.b1"
    assert response.cookies[CONSENT_COOKIE]["max-age"] == 180 * 86400
    assert response.cookies[AB_COOKIE].value.startswith("onboarding:")
    page = client.get("/accounts/login/")
    assert b'id="cookie-banner"' not in page.content
    assert b"Your cookie choices are saved" in page.content


def test_the_banner_returns_to_the_page_it_was_on(client: Client) -> None:
    response = client.post(
        "/cookies/consent/",
        {"choice": "reject_all"},
        headers={"Referer": "http://testserver/accounts/login/?next=/teams/"},
    )

    assert response["Location"] == "/accounts/login/?next=/teams/"


def test_a_referer_from_another_site_leads_home(client: Client) -> None:
    response = client.post(
        "/cookies/consent/",
        {"choice": "reject_all"},
        headers={"Referer": "https://evil.example/accounts/login/"},
    )

    assert response["Location"] == "/"


def test_the_banner_does_not_repeat_the_pages_address(client: Client) -> None:
    html = client.get("/accounts/login/?next=/teams/secret-team/").content.decode()
    banner = html[html.index('id="cookie-banner"') : html.index("</section>")]

    assert "secret-team" not in banner


def test_reject_all_stores_the_choice_and_removes_an_existing_ab_cookie(client: Client) -> None:
    client.cookies[AB_COOKIE] = "onboarding:first_run"

    response = client.post("/cookies/consent/", {"choice": "reject_all", "next": "/"})

    assert response.cookies[CONSENT_COOKIE].value == "v1.a0.b0"
    assert response.cookies[AB_COOKIE].value == ""
    assert response.cookies[AB_COOKIE]["max-age"] == 0


def test_choose_opens_the_cookie_page_and_keeps_the_way_back(client: Client) -> None:
    response = client.post("/cookies/consent/", {"choice": "choose", "next": "/teams/"})

    assert response.status_code == 302
    assert response["Location"] == "/cookies/?next=/teams/#choices"
    assert CONSENT_COOKIE not in response.cookies


def test_saving_a_mix_of_choices_from_the_cookie_page(client: Client) -> None:
    response = client.post("/cookies/consent/", {"choice": "save", "analytics": "on"})

    assert response.cookies[CONSENT_COOKIE].value == "v1.a1.b0"
    assert AB_COOKIE not in response.cookies or response.cookies[AB_COOKIE].value == ""


def test_the_script_gets_json_and_no_redirect(client: Client) -> None:
    response = client.post(
        "/cookies/consent/",
        {"choice": "reject_all", "next": "/"},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "analytics": False,
        "ab_testing": False,
        "reload": False,
        "removed_cookies": [],
        "cookies_not_removable": [],
        "notice": "",
    }
    assert response.cookies[CONSENT_COOKIE].value == "v1.a0.b0"


def test_a_missing_choice_is_explained_on_the_cookie_page(client: Client) -> None:
    response = client.post("/cookies/consent/", {"next": "/"})

    assert response.status_code == 400
    assert b"Choose Accept all, Reject all or Save my choices." in response.content
    assert CONSENT_COOKIE not in response.cookies


def test_an_unknown_choice_is_refused_with_a_message_not_a_500(client: Client) -> None:
    response = client.post(
        "/cookies/consent/", {"choice": "everything"}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 400
    assert "everything" in response.json()["errors"]["choice"][0]["message"]


def test_a_next_address_on_another_site_is_ignored(client: Client) -> None:
    response = client.post(
        "/cookies/consent/", {"choice": "reject_all", "next": "https://evil.example/"}
    )

    assert response["Location"] == "/"


def test_a_tampered_consent_cookie_counts_as_no_choice(client: Client) -> None:
    client.cookies[CONSENT_COOKIE] = "v1.a1.b7"

    response = client.get("/")

    assert b'id="cookie-banner"' in response.content
    assert CookieChoices.parse("v1.a1.b7") == CookieChoices()


def test_a_signed_in_persons_choices_go_to_the_consent_ledger(client: Client, user: User) -> None:
    client.force_login(user)

    client.post("/cookies/consent/", {"choice": "accept_all"})
    client.post("/cookies/consent/", {"choice": "save", "analytics": "on"})

    history = list(
        ConsentEvent.objects.filter(user=user)
        .order_by("id")
        .values_list("purpose", "granted", "channel")
    )
    assert history == [
        ("analytics_cookies", True, Channel.COOKIE_BANNER),
        ("ab_testing_cookies", True, Channel.COOKIE_BANNER),
        ("analytics_cookies", True, Channel.COOKIE_BANNER),
        ("ab_testing_cookies", False, Channel.COOKIE_BANNER),
    ]
    assert processing_allowed(user=user, purpose="analytics_cookies")
    assert not processing_allowed(user=user, purpose="ab_testing_cookies")


def test_an_anonymous_visitors_choice_stays_in_their_browser_only(client: Client) -> None:
    client.post("/cookies/consent/", {"choice": "accept_all"})

    assert ConsentEvent.objects.count() == 0


def test_choices_can_be_changed_from_the_footer_link_on_every_page(client: Client) -> None:
    client.cookies[CONSENT_COOKIE] = "v1.a1.b1"

    home = client.get("/accounts/login/")
    assert b'href="/cookies/">Cookie settings</a>' in home.content

    page = client.get("/cookies/")
    html = page.content.decode()
    assert "analytics cookies <strong>on</strong>" in html
    assert 'name="analytics" id="id_analytics" checked' in html
