"""Interviews: recorded only with the person's yes for that interview, withdrawn at will."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.privacy import deletion, export
from pipetower.privacy.consent import consent_state
from pipetower.privacy.models import ConsentEvent, Purpose
from pipetower.privacy.services import restriction_start
from pipetower.support import interviews
from pipetower.support.models import Interview, Survey, SurveyResponse
from tests.factories import UserFactory
from tests.privacy.conftest import grant
from tests.privacy.residue import scan_database
from tests.smtp import SmtpSink

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+(/support/interviews/[\w-]+/)")


@pytest.fixture
def staff() -> User:
    return UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def person() -> User:
    return UserFactory(email="ada@example.com", name="Ada")


def _invite(staff: User, person: User, captured: Any, topic: str = "Schedules") -> str:
    """Invite through the service; answers the path of the emailed link."""
    with captured(execute=True):
        interviews.interview_invite(
            staff=staff,
            user=person,
            topic=topic,
            scheduled_for=timezone.now() + timedelta(days=3),
        )
    match = LINK.search(mail.outbox[-1].body)
    assert match
    return match[1]


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _answer(client: Client, path: str, attend: str, recording: str) -> Any:
    return client.post(path, {"attend": attend, "recording": recording})


def _keep(staff_client: Client, interview: Interview, reference: str) -> Any:
    return staff_client.post(
        f"/admin/support/interview/{interview.pk}/change/",
        {"recording_reference": reference},
    )


def test_invite_answer_keep_and_withdraw_from_the_back_office_to_the_person(
    staff: User,
    person: User,
    settings: Any,
    smtp_sink: SmtpSink,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.ADMIN_REQUIRE_2FA = False
    settings.MAILERS = {"default": smtp_sink.mailer}
    boss = _signed_in(staff)
    when = timezone.now() + timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = boss.post(
            "/admin/support/interview/add/",
            {
                "user": person.pk,
                "topic": "How you use schedules",
                "scheduled_for_0": when.strftime("%Y-%m-%d"),
                "scheduled_for_1": "10:00:00",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    [delivery] = smtp_sink.wait_for(1)
    assert delivery.rcpt_tos == ["ada@example.com"]
    body = delivery.message.get_content()
    assert "How you use schedules" in body and "record" in body
    match = LINK.search(body)
    assert match
    path = match[1]
    interview = Interview.objects.get()
    assert interview.invited_by == staff and interview.recording_allowed is None

    ada = _signed_in(person)
    page = ada.get(path)
    assert page.status_code == 200 and "May we record this interview?" in page.content.decode()
    assert _answer(ada, path, "yes", "no").status_code == 302

    # Staff see the answer before the interview, and cannot keep a recording.
    listing = boss.get("/admin/support/interview/").content.decode()
    assert "no: do not record" in listing
    refused = _keep(boss, interview, "https://files.example/rec-1.mp3")
    assert refused.status_code == 200
    assert "did not allow this interview to be recorded" in refused.content.decode()
    interview.refresh_from_db()
    assert interview.recording_reference == ""

    assert _answer(ada, path, "yes", "yes").status_code == 302
    assert "yes" in boss.get("/admin/support/interview/").content.decode()
    assert _keep(boss, interview, "https://files.example/rec-1.mp3").status_code == 302
    interview.refresh_from_db()
    assert interview.recording_reference == "https://files.example/rec-1.mp3"
    assert interview.recording_kept_at is not None

    # The person withdraws from the invitation page: the reference goes, audited.
    assert ada.post(path, {"withdraw": "1"}).status_code == 302
    interview.refresh_from_db()
    assert interview.recording_allowed is False and interview.recording_reference == ""
    event = AuditEvent.objects.get(verb="support.interview_recording_withdrawn")
    assert event.data["recording_deleted"] is True
    history = list(
        ConsentEvent.objects.filter(user=person, purpose=Purpose.INTERVIEW_RECORDING)
        .order_by("id")
        .values_list("granted", "channel")
    )
    assert history == [(False, "interview"), (True, "interview"), (False, "interview")]
    center = ada.get("/privacy/center/").content.decode()
    assert "Interview invitation" in center  # the channel, in the consent history


def test_turning_the_purpose_off_in_the_privacy_center_withdraws_every_recording(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    ada = _signed_in(person)
    first = _invite(staff, person, django_capture_on_commit_callbacks, topic="First")
    second = _invite(staff, person, django_capture_on_commit_callbacks, topic="Second")
    _answer(ada, first, "yes", "yes")
    _answer(ada, second, "yes", "yes")
    for one in Interview.objects.all():
        interviews.interview_recording_keep(staff=staff, interview=one, reference=f"rec-{one.pk}")
    assert consent_state(user=person, purpose=Purpose.INTERVIEW_RECORDING) is True
    ada.post("/privacy/center/consent/", {"purpose": "interview_recording", "granted": "no"})
    assert list(Interview.objects.values_list("recording_allowed", "recording_reference")) == [
        (False, ""),
        (False, ""),
    ]
    assert AuditEvent.objects.filter(verb="support.interview_recording_withdrawn").count() == 2


def test_one_interview_is_withdrawn_from_the_privacy_center(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    ada = _signed_in(person)
    path = _invite(staff, person, django_capture_on_commit_callbacks)
    _answer(ada, path, "yes", "yes")
    interview = Interview.objects.get()
    interviews.interview_recording_keep(staff=staff, interview=interview, reference="rec-9")
    center = ada.get("/privacy/center/").content.decode()
    assert "Schedules" in center and "recording kept" in center
    response = ada.post("/support/interviews/recording/withdraw/", {"interview": interview.pk})
    assert response.status_code == 302
    interview.refresh_from_db()
    assert interview.recording_reference == "" and interview.recording_allowed is False
    # Someone else's interview, or none, is not found; nothing changes.
    other = UserFactory()
    mallory = _signed_in(other)
    mallory.post("/support/interviews/recording/withdraw/", {"interview": "x"})
    response = mallory.post(
        "/support/interviews/recording/withdraw/", {"interview": interview.pk}, follow=True
    )
    assert "That interview was not found among yours." in response.content.decode()


def test_a_restriction_or_no_answer_also_refuses_keeping_a_recording(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    path = _invite(staff, person, django_capture_on_commit_callbacks)
    interview = Interview.objects.get()
    with pytest.raises(Conflict, match="has not answered"):
        interviews.interview_recording_keep(staff=staff, interview=interview, reference="r")
    _answer(_signed_in(person), path, "yes", "yes")
    restriction_start(user=person)
    with pytest.raises(Conflict, match="limited the processing"):
        interviews.interview_recording_keep(staff=staff, interview=interview, reference="r")
    with pytest.raises(NotAllowed):
        interviews.interview_recording_keep(staff=person, interview=interview, reference="r")


def test_another_persons_link_and_an_unknown_link_are_refused(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    path = _invite(staff, person, django_capture_on_commit_callbacks)
    mallory = _signed_in(UserFactory(email="mallory@example.com"))
    for url in (path, "/support/interviews/not-a-real-token/"):
        page = mallory.get(url)
        assert page.status_code == 404
        assert "sent to another account" in page.content.decode()
        assert _answer(mallory, url, "yes", "yes").status_code == 404
    assert Interview.objects.get().recording_allowed is None
    # Signed out, the link asks to sign in first.
    assert Client().get(path).status_code == 302


def test_an_expired_invitation_cannot_be_answered_but_can_be_withdrawn(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    path = _invite(staff, person, django_capture_on_commit_callbacks)
    ada = _signed_in(person)
    _answer(ada, path, "yes", "yes")
    Interview.objects.update(scheduled_for=timezone.now() - timedelta(hours=1))
    page = ada.get(path)
    assert page.status_code == 410
    assert "already taken place" in page.content.decode()
    assert _answer(ada, path, "no", "no").status_code == 410
    assert Interview.objects.get().status == Interview.Status.ACCEPTED
    ada.post(path, {"withdraw": "1"})
    assert Interview.objects.get().recording_allowed is False


def test_bad_input_gets_a_clear_error(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    path = _invite(staff, person, django_capture_on_commit_callbacks)
    ada = _signed_in(person)
    page = ada.post(path, {"attend": "yes"})
    assert page.status_code == 400
    assert "Say whether we may record the interview." in page.content.decode()
    assert Interview.objects.get().recording_allowed is None
    withdraw = ada.post(path, {"withdraw": "1"}, follow=True)
    assert "You have not allowed this interview to be recorded." in withdraw.content.decode()
    soon = timezone.now() + timedelta(days=1)
    for kwargs, message in (
        ({"topic": " ", "scheduled_for": soon}, "Say what the interview is about."),
        ({"topic": "x" * 201, "scheduled_for": soon}, "under 200 characters"),
        ({"topic": "t", "scheduled_for": timezone.now()}, "must be in the future"),
        ({"topic": "t", "scheduled_for": None}, "date and time"),
    ):
        with pytest.raises(ServiceError, match=message):
            interviews.interview_invite(staff=staff, user=person, **kwargs)
    with pytest.raises(NotAllowed):
        interviews.interview_invite(staff=person, user=person, topic="t", scheduled_for=soon)
    _answer(ada, path, "yes", "yes")
    with pytest.raises(ServiceError, match="Say where the recording is kept"):
        interviews.interview_recording_keep(
            staff=staff, interview=Interview.objects.get(), reference="  "
        )
    assert Interview.objects.count() == 1


def test_the_back_office_shows_the_services_error_for_a_bad_invitation(
    staff: User, person: User, settings: Any
) -> None:
    settings.ADMIN_REQUIRE_2FA = False
    past = timezone.now() - timedelta(days=1)
    response = _signed_in(staff).post(
        "/admin/support/interview/add/",
        {
            "user": person.pk,
            "topic": "Schedules",
            "scheduled_for_0": past.strftime("%Y-%m-%d"),
            "scheduled_for_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    assert "The interview must be in the future." in response.content.decode()
    assert not Interview.objects.exists()


def test_interviews_and_survey_answers_are_exported_then_erased(
    staff: User, person: User, django_capture_on_commit_callbacks: Any
) -> None:
    path = _invite(staff, person, django_capture_on_commit_callbacks, topic="Topic-mk-4471")
    _answer(_signed_in(person), path, "yes", "yes")
    interview = Interview.objects.get()
    interviews.interview_recording_keep(
        staff=staff, interview=interview, reference="rec-mk-4472.mp3"
    )
    grant(person, Purpose.PRODUCT_SURVEYS)
    survey = Survey.objects.create(title="Q", questions="Why?", sent_at=timezone.now())
    SurveyResponse.objects.create(
        survey=survey, user=person, answers=[{"question": "Why?", "answer": "ans-mk-4473"}]
    )

    archive = zipfile.ZipFile(io.BytesIO(export.export_archive(user=person)))
    text = "".join(archive.read(name).decode(errors="replace") for name in archive.namelist())
    for marker in ("Topic-mk-4471", "rec-mk-4472.mp3", "ans-mk-4473"):
        assert marker in text

    scheduled = deletion.account_deletion_request(user=person)
    deletion.account_deletions_purge(now=scheduled.scheduled_for)
    assert not Interview.objects.exists() and not SurveyResponse.objects.exists()
    assert scan_database(["Topic-mk-4471", "rec-mk-4472.mp3", "ans-mk-4473"]) == []
