"""The contact form keeps correspondence; surveys collect voluntary answers."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.support.models import Correspondence, Survey, SurveyResponse

pytestmark = pytest.mark.django_db


def test_anyone_can_write_to_us_and_the_message_is_kept(client: Client) -> None:
    response = client.post(
        "/support/contact/",
        {"email": "Visitor@Example.com", "subject": "Pricing", "body": "Is there a free plan?"},
        follow=True,
    )
    assert b"We received your message" in response.content
    kept = Correspondence.objects.get()
    assert (kept.user, kept.email, kept.subject) == (None, "visitor@example.com", "Pricing")


def test_a_signed_in_person_writes_with_their_address_filled_in(client: Client, user: User) -> None:
    client.force_login(user)
    assert b'value="ada@example.com"' in client.get("/support/contact/").content
    client.post(
        "/support/contact/", {"email": user.email, "subject": "Help", "body": "My run hangs."}
    )
    assert Correspondence.objects.get().user == user


def test_a_contact_message_with_missing_parts_shows_errors_next_to_the_fields(
    client: Client,
) -> None:
    response = client.post(
        "/support/contact/", {"email": "not-an-email", "subject": "", "body": ""}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Enter a valid email address." in text
    assert text.count('aria-invalid="true"') == 3
    assert Correspondence.objects.count() == 0


@pytest.fixture
def sent_survey() -> Survey:
    return Survey.objects.create(
        title="Deploys", questions="How often do you deploy?\nWhat hurts?", sent_at=timezone.now()
    )


def test_a_person_answers_a_survey_once(client: Client, user: User, sent_survey: Survey) -> None:
    client.force_login(user)
    page = client.get(f"/support/surveys/{sent_survey.pk}/")
    assert b"How often do you deploy?" in page.content
    client.post(f"/support/surveys/{sent_survey.pk}/", {"q0": "Daily", "q1": ""})
    kept = SurveyResponse.objects.get(user=user)
    assert kept.answers == [
        {"question": "How often do you deploy?", "answer": "Daily"},
        {"question": "What hurts?", "answer": ""},
    ]
    again = client.get(f"/support/surveys/{sent_survey.pk}/")
    assert b"You answered this survey" in again.content


def test_an_empty_survey_answer_is_refused_with_a_message(
    client: Client, user: User, sent_survey: Survey
) -> None:
    client.force_login(user)
    response = client.post(f"/support/surveys/{sent_survey.pk}/", {"q0": " ", "q1": ""})
    assert response.status_code == 400
    assert b"Answer at least one question." in response.content
    assert SurveyResponse.objects.count() == 0


def test_a_survey_not_yet_sent_is_not_found(client: Client, user: User) -> None:
    draft = Survey.objects.create(title="Draft", questions="Q?")
    client.force_login(user)
    assert client.get(f"/support/surveys/{draft.pk}/").status_code == 404
