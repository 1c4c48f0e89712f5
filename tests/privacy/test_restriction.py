"""Restriction of processing: one switch stops every optional job for a person,
and it is lifted only after the person was told by email and confirmed."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client, RequestFactory

from pipetower.accounts.models import User
from pipetower.core.errors import Conflict, NotAllowed
from pipetower.privacy.consent import processing_allowed
from pipetower.privacy.models import ProcessingRestriction, Purpose
from pipetower.privacy.services import (
    restriction_lift_confirm,
    restriction_lift_request,
    restriction_lift_token,
    restriction_start,
)
from pipetower.support.models import Newsletter, Survey
from pipetower.support.services import newsletter_send, survey_send
from tests.factories import UserFactory
from tests.privacy.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def restricted(user: User) -> User:
    """Ada agreed to everything, then limited processing."""
    for purpose in Purpose.values:
        grant(user, purpose)
    restriction_start(user=user)
    return user


@pytest.fixture
def willing() -> User:
    """Someone who agreed to everything and has no restriction."""
    person = UserFactory(email="willing@example.com")
    for purpose in Purpose.values:
        grant(person, purpose)
    return person


@pytest.mark.parametrize("purpose", Purpose.values)
def test_a_restriction_overrides_every_consent(
    restricted: User, willing: User, purpose: str
) -> None:
    assert processing_allowed(user=restricted, purpose=purpose) is False
    assert processing_allowed(user=willing, purpose=purpose) is True


def test_the_newsletter_reaches_no_restricted_person(restricted: User, willing: User) -> None:
    issue = Newsletter.objects.create(subject="November news", body="New things.")
    mail.outbox.clear()
    assert newsletter_send(newsletter=issue) == 1
    assert [m.to for m in mail.outbox] == [["willing@example.com"]]


def test_the_survey_reaches_no_restricted_person(restricted: User, willing: User) -> None:
    survey = Survey.objects.create(title="How do you deploy?", questions="What do you run?")
    mail.outbox.clear()
    assert survey_send(survey=survey) == 1
    assert [m.to for m in mail.outbox] == [["willing@example.com"]]


@pytest.mark.parametrize("purpose", ["analytics_cookies", "ab_testing_cookies"])
def test_analytics_and_ab_cookies_are_refused_for_a_restricted_person(
    restricted: User, willing: User, purpose: str
) -> None:
    # The cookie code asks `cookie_allowed`, which asks `processing_allowed`.
    from pipetower.analytics.cookies import cookie_allowed

    def request_of(person: User):  # type: ignore[no-untyped-def]
        request = RequestFactory().get("/", HTTP_COOKIE="pt_consent=v1.a1.b1")
        request.user = person
        return request

    assert cookie_allowed(request_of(restricted), purpose) is False
    assert cookie_allowed(request_of(willing), purpose) is True


def test_starting_a_restriction_twice_keeps_one(user: User) -> None:
    first = restriction_start(user=user)
    assert restriction_start(user=user) == first
    assert ProcessingRestriction.objects.filter(user=user).count() == 1


def test_lifting_emails_the_person_first_and_waits_for_their_confirmation(
    restricted: User, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        restriction_lift_request(user=restricted)
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["ada@example.com"]
    assert "about to be lifted" in notice.subject
    # Nothing changed yet: the restriction holds until the link is used.
    assert processing_allowed(user=restricted, purpose="newsletter") is False
    token = re.search(r"/privacy/restriction/lift/([^/\s]+)/", notice.body)[1]  # type: ignore[index]
    restriction_lift_confirm(user=restricted, token=token)
    assert processing_allowed(user=restricted, purpose="newsletter") is True


def test_a_lift_link_cannot_be_used_without_asking_first(restricted: User) -> None:
    restriction = ProcessingRestriction.objects.get(user=restricted)
    token = restriction_lift_token(restriction=restriction)
    with pytest.raises(NotAllowed):
        restriction_lift_confirm(user=restricted, token=token)
    assert processing_allowed(user=restricted, purpose="newsletter") is False


def test_a_lift_link_of_another_person_is_refused(restricted: User) -> None:
    other = UserFactory()
    restriction = restriction_lift_request(user=restricted)
    token = restriction_lift_token(restriction=restriction)
    with pytest.raises(NotAllowed, match="another account"):
        restriction_lift_confirm(user=other, token=token)


def test_asking_to_lift_without_a_restriction_says_so(user: User) -> None:
    with pytest.raises(Conflict, match="not limited"):
        restriction_lift_request(user=user)


def test_the_privacy_center_limits_and_lifts_with_an_email_in_between(
    client: Client, user: User, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(user)
    grant(user, Purpose.NEWSLETTER)
    page = client.post("/privacy/center/restrict/", follow=True)
    assert b"Processing of your data is now limited" in page.content
    assert b"Lift the restriction" in page.content
    assert processing_allowed(user=user, purpose="newsletter") is False

    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/privacy/center/restrict/lift/", follow=True)
    assert b"We emailed you" in page.content
    link = re.search(r"http://\S+(/privacy/restriction/lift/\S+/)", mail.outbox[-1].body)[1]  # type: ignore[index]
    confirm = client.get(link)
    assert b"Lift the restriction of processing?" in confirm.content
    done = client.post(link, follow=True)
    assert b"The restriction is lifted" in done.content
    assert processing_allowed(user=user, purpose="newsletter") is True
    # The used link cannot lift anything again.
    again = client.get(link)
    assert again.status_code == 410 and b"already lifted" in again.content


def test_a_broken_lift_link_shows_a_message(client: Client, user: User) -> None:
    client.force_login(user)
    response = client.get("/privacy/restriction/lift/not-a-token/")
    assert response.status_code == 403
    assert b"This link is not valid" in response.content
