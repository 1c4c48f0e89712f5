"""Newsletters and surveys reach only people who agreed, and never the restricted."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from pipetower.accounts.models import User
from pipetower.core.errors import Conflict, ServiceError
from pipetower.privacy.consent import consent_state
from pipetower.privacy.models import Purpose
from pipetower.privacy.services import restriction_start
from pipetower.support.models import Newsletter, Survey
from pipetower.support.services import newsletter_send, survey_send
from tests.factories import UserFactory
from tests.privacy.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def audience() -> dict[str, User]:
    subscribed = UserFactory(email="yes@example.com")
    grant(subscribed, Purpose.NEWSLETTER)
    grant(subscribed, Purpose.PRODUCT_SURVEYS)
    changed_mind = UserFactory(email="changed@example.com")
    grant(changed_mind, Purpose.NEWSLETTER)
    grant(changed_mind, Purpose.NEWSLETTER, granted=False)
    never = UserFactory(email="never@example.com")
    restricted = UserFactory(email="restricted@example.com")
    grant(restricted, Purpose.NEWSLETTER)
    grant(restricted, Purpose.PRODUCT_SURVEYS)
    restriction_start(user=restricted)
    inactive = UserFactory(email="gone@example.com", is_active=False)
    grant(inactive, Purpose.NEWSLETTER)
    return {"subscribed": subscribed, "never": never}


def test_a_newsletter_reaches_only_consenting_unrestricted_people(audience) -> None:  # type: ignore[no-untyped-def]
    issue = Newsletter.objects.create(subject="What's new", body="Schedules are here.")
    assert newsletter_send(newsletter=issue) == 1
    assert [m.to for m in mail.outbox] == [["yes@example.com"]]
    issue.refresh_from_db()
    assert issue.sent_at is not None and issue.sent_count == 1


def test_every_newsletter_carries_a_signed_one_click_unsubscribe_link(
    audience, client: Client
) -> None:  # type: ignore[no-untyped-def]
    newsletter_send(newsletter=Newsletter.objects.create(subject="News", body="Body"))
    message = mail.outbox[0]
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe with one click: {link}" in message.body
    client.post(link[link.index("/privacy/") :])
    assert consent_state(user=audience["subscribed"], purpose="newsletter") is False
    mail.outbox.clear()
    assert newsletter_send(newsletter=Newsletter.objects.create(subject="Next", body="B")) == 0


def test_a_newsletter_is_sent_only_once(audience) -> None:  # type: ignore[no-untyped-def]
    issue = Newsletter.objects.create(subject="Once", body="Only once.")
    newsletter_send(newsletter=issue)
    with pytest.raises(Conflict, match="already sent"):
        newsletter_send(newsletter=issue)
    assert len(mail.outbox) == 1


def test_a_survey_reaches_only_people_who_agreed_to_surveys(audience) -> None:  # type: ignore[no-untyped-def]
    survey = Survey.objects.create(title="Deploys", questions="How often?\nWhat hurts?")
    assert survey_send(survey=survey) == 1
    assert [m.to for m in mail.outbox] == [["yes@example.com"]]
    assert f"/support/surveys/{survey.pk}/" in mail.outbox[0].body
    assert "Stop receiving surveys with one click" in mail.outbox[0].body


def test_a_survey_without_questions_is_not_sent(audience) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError, match="at least one question"):
        survey_send(survey=Survey.objects.create(title="Empty", questions="  \n"))
    assert mail.outbox == []


def test_staff_send_a_newsletter_from_the_admin(
    audience, client: Client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    staff = User.objects.create_superuser("staff@example.com", "pw-staff-123456", name="Staff")
    issue = Newsletter.objects.create(subject="From the back office", body="Hello")
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/support/newsletter/",
            {"action": "send", "_selected_action": [issue.pk]},
            follow=True,
        )
    assert b"sending now" in response.content
    assert [m.to for m in mail.outbox] == [["yes@example.com"]]
    response = client.post(
        "/admin/support/newsletter/",
        {"action": "send", "_selected_action": [issue.pk]},
        follow=True,
    )
    assert b"already sent" in response.content


def test_staff_send_a_survey_from_the_admin(
    audience, client: Client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    staff = User.objects.create_superuser("staff@example.com", "pw-staff-123456", name="Staff")
    survey = Survey.objects.create(title="Quick one", questions="Anything?")
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/support/survey/", {"action": "send", "_selected_action": [survey.pk]})
    assert [m.to for m in mail.outbox] == [["yes@example.com"]]
