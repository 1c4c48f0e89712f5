"""First-party page counts: per URL pattern and day, only with consent, never for a
restricted person, and nothing about the visitor stored."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.analytics.cookies import CONSENT_COOKIE
from pipetower.analytics.models import PageView
from pipetower.privacy.consent import consent_set
from tests.analytics.conftest import consent_cookie

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return dict(PageView.objects.values_list("path", "count"))


def grant_in_ledger(user: User, purpose: str = "analytics_cookies") -> None:
    consent_set(
        user=user, purpose=purpose, granted=True, channel="cookie_banner", wording_version="t"
    )


def test_a_consenting_visitors_page_views_are_counted_per_page_and_day(
    accepted_client: Client,
) -> None:
    accepted_client.get("/")
    accepted_client.get("/")
    accepted_client.get("/accounts/login/")

    assert counts() == {"/": 2, "/accounts/login/": 1}
    assert set(PageView.objects.values_list("day", flat=True)) == {timezone.localdate()}


def test_without_a_choice_nothing_is_counted(client: Client) -> None:
    client.get("/")

    assert PageView.objects.count() == 0


def test_after_reject_all_nothing_is_counted(client: Client) -> None:
    client.post("/cookies/consent/", {"choice": "reject_all"})
    client.get("/")

    assert PageView.objects.count() == 0


def test_consent_to_ab_testing_alone_counts_nothing(client: Client) -> None:
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=False, ab_testing=True)

    client.get("/")

    assert PageView.objects.count() == 0


def test_the_url_pattern_is_stored_not_the_team_in_the_address(
    client: Client, user: User, team: object
) -> None:
    client.force_login(user)
    client.post("/cookies/consent/", {"choice": "accept_all"})

    client.get("/teams/engines/members/")

    assert "/teams/<slug:team_slug>/members/" in counts()
    assert not any("engines" in path for path in counts())


def test_errors_posts_and_back_office_pages_are_not_counted(accepted_client: Client) -> None:
    accepted_client.get("/no-such-page/")
    accepted_client.get("/healthz")
    accepted_client.get("/cookies/")
    accepted_client.post("/accounts/login/", {"login": "x@example.com", "password": "nope"})

    assert PageView.objects.count() == 0


def test_a_signed_in_person_is_counted_with_consent_in_browser_and_ledger(
    client: Client, user: User
) -> None:
    client.force_login(user)
    client.post("/cookies/consent/", {"choice": "accept_all"})

    client.get("/teams/")

    assert counts() == {"/teams/": 1}


def test_a_signed_in_person_who_withdrew_in_the_privacy_center_is_not_counted(
    client: Client, user: User
) -> None:
    client.force_login(user)
    client.post("/cookies/consent/", {"choice": "accept_all"})
    consent_set(
        user=user,
        purpose="analytics_cookies",
        granted=False,
        channel="web",
        wording_version="t",
    )

    client.get("/teams/")

    assert PageView.objects.count() == 0


def test_a_restricted_person_is_never_counted(client: Client, restricted_user: User) -> None:
    grant_in_ledger(restricted_user)
    client.force_login(restricted_user)
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)

    client.get("/teams/")
    client.get("/account/")

    assert PageView.objects.count() == 0


def test_a_page_view_row_holds_no_address_and_no_person() -> None:
    fields = {field.name for field in PageView._meta.get_fields()}

    assert fields == {"id", "path", "day", "count"}
