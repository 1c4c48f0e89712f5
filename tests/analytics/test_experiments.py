"""A/B assignment: the pt_ab cookie, only with consent and never for a restricted
person; `{% experiment %}` shows the control to everyone else."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory

from pipetower.accounts.models import User
from pipetower.analytics.cookies import AB_COOKIE, CONSENT_COOKIE
from pipetower.analytics.experiments import (
    EXPERIMENTS,
    encode_assignments,
    parse_assignments,
    variant_for,
)
from pipetower.analytics.models import ExperimentExposure
from pipetower.privacy.consent import consent_set
from tests.analytics.conftest import consent_cookie

pytestmark = pytest.mark.django_db

ONBOARDING = EXPERIMENTS["onboarding"]


def test_a_consenting_visitor_is_assigned_a_variant_kept_in_pt_ab(
    accepted_client: Client,
) -> None:
    first = accepted_client.get("/")
    cookie = first.cookies[AB_COOKIE]
    variant = parse_assignments(cookie.value)["onboarding"]

    assert variant in ONBOARDING.variants
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert ONBOARDING.variants[variant] in first.content.decode()
    again = accepted_client.get("/")
    assert AB_COOKIE not in again.cookies  # unchanged: not set again
    assert ONBOARDING.variants[variant] in again.content.decode()


def test_each_variant_shows_its_own_onboarding_text(accepted_client: Client) -> None:
    for variant, text in ONBOARDING.variants.items():
        accepted_client.cookies[AB_COOKIE] = encode_assignments({"onboarding": variant})
        assert text in accepted_client.get("/").content.decode()


def test_exposures_are_counted_per_variant_without_the_visitor(accepted_client: Client) -> None:
    accepted_client.cookies[AB_COOKIE] = "onboarding:first_run"

    accepted_client.get("/")
    accepted_client.get("/")

    assert list(ExperimentExposure.objects.values_list("experiment", "variant", "count")) == [
        ("onboarding", "first_run", 2)
    ]


def test_without_consent_there_is_no_cookie_and_the_control_is_shown(client: Client) -> None:
    response = client.get("/")

    assert AB_COOKIE not in response.cookies
    assert ONBOARDING.variants["control"] in response.content.decode()
    assert ExperimentExposure.objects.count() == 0


def test_an_ab_cookie_without_consent_is_removed_and_ignored(client: Client) -> None:
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=False)
    client.cookies[AB_COOKIE] = "onboarding:first_run"

    response = client.get("/")

    assert response.cookies[AB_COOKIE]["max-age"] == 0
    assert ONBOARDING.variants["control"] in response.content.decode()
    assert ExperimentExposure.objects.count() == 0


def test_a_restricted_person_is_never_assigned(client: Client, restricted_user: User) -> None:
    consent_set(
        user=restricted_user,
        purpose="ab_testing_cookies",
        granted=True,
        channel="cookie_banner",
        wording_version="t",
    )
    client.force_login(restricted_user)
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)
    client.cookies[AB_COOKIE] = "onboarding:first_run"

    response = client.get("/teams/")
    request = RequestFactory().get("/")
    request.user = restricted_user
    request.COOKIES[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)

    assert response.cookies[AB_COOKIE]["max-age"] == 0
    assert variant_for(request, "onboarding") == "control"
    assert ExperimentExposure.objects.count() == 0


def test_the_template_tag_writes_the_control_text_without_a_request() -> None:
    rendered = Template('{% load analytics %}{% experiment "onboarding" %}').render(Context())

    assert rendered == ONBOARDING.variants["control"]


def test_an_unknown_experiment_name_fails_loudly() -> None:
    with pytest.raises(KeyError, match="Unknown experiment 'nope'"):
        variant_for(None, "nope")


def test_unknown_experiments_and_variants_in_the_cookie_are_ignored() -> None:
    assert parse_assignments("onboarding:zzz|other:a|onboarding") == {}
    assert parse_assignments("onboarding:first_run") == {"onboarding": "first_run"}
