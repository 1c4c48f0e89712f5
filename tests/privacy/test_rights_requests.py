"""Rights requests are answered within 30 days of receipt: filed with or without
an account (an emailed code confirms the address), one extension at most, staff
reminders at day 20 and 25, an overdue flag, and an email when answered."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.privacy.consent import consent_state
from pipetower.privacy.models import DataSubjectRequest, Purpose
from pipetower.privacy.rights_requests import (
    CODE_MAX_ATTEMPTS,
    data_subject_request_answer,
    data_subject_request_confirm,
    data_subject_request_extend,
    data_subject_request_file,
    data_subject_request_objection_fulfil,
    data_subject_request_start,
    data_subject_requests_remind,
    data_subject_requests_unconfirmed_purge,
)
from pipetower.privacy.tasks import data_subject_requests_housekeeping_task
from tests.factories import UserFactory
from tests.privacy.conftest import grant

pytestmark = pytest.mark.django_db

VISITOR = "visitor@example.org"
DETAILS = "Please tell me what you hold about me."


@pytest.fixture
def staff() -> User:
    return UserFactory(email="staff@pipetower.example", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def _code(message: mail.EmailMessage) -> str:
    found = re.search(r"^\s+(\d{6})$", str(message.body), re.M)
    assert found, message.body
    return found.group(1)


def _file(capture, email: str = VISITOR, kind: str = "access") -> tuple[DataSubjectRequest, str]:
    with capture(execute=True):
        dsr = data_subject_request_file(email=email, kind=kind, details=DETAILS)
    return dsr, _code(mail.outbox[-1])


def _received(user: User | None = None, *, days_ago: int = 0, **kw) -> DataSubjectRequest:
    when = timezone.now() - timedelta(days=days_ago)
    return DataSubjectRequest.objects.create(
        user=user or UserFactory(),
        kind=kw.pop("kind", "access"),
        details=DETAILS,
        created_at=when,
        received_at=when,
        due_at=when + timedelta(days=30),
        **kw,
    )


# ------------------------------------------------------------- filing, with a code


def test_a_visitor_request_waits_for_the_emailed_code_which_is_stored_hashed(
    django_capture_on_commit_callbacks,
) -> None:
    dsr, code = _file(django_capture_on_commit_callbacks)
    dsr.refresh_from_db()
    assert dsr.status == "unconfirmed"
    assert (dsr.received_at, dsr.due_at, dsr.user) == (None, None, None)
    assert mail.outbox[-1].to == [VISITOR]
    assert code not in dsr.code_hash and len(dsr.code_hash) == 64


def test_the_right_code_makes_the_request_received_with_30_days_to_answer(
    django_capture_on_commit_callbacks,
) -> None:
    dsr, code = _file(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = data_subject_request_confirm(dsr=dsr, code=f" {code} ")
    assert confirmed.status == "open"
    assert confirmed.received_at is not None
    assert confirmed.due_at == confirmed.received_at + timedelta(days=30)
    assert confirmed.code_hash == ""
    assert mail.outbox[-1].to == [VISITOR]
    assert "We received your request" in mail.outbox[-1].subject
    assert AuditEvent.objects.filter(verb="privacy.request_confirmed").count() == 1


def test_a_wrong_code_is_refused_and_counts_an_attempt(django_capture_on_commit_callbacks):
    dsr, code = _file(django_capture_on_commit_callbacks)
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(ServiceError, match="That code is not right") as refused:
        data_subject_request_confirm(dsr=dsr, code=wrong)
    assert refused.value.field == "code"
    dsr.refresh_from_db()
    assert (dsr.status, dsr.code_attempts) == ("unconfirmed", 1)


def test_an_expired_code_is_refused(django_capture_on_commit_callbacks):
    dsr, code = _file(django_capture_on_commit_callbacks)
    DataSubjectRequest.objects.filter(pk=dsr.pk).update(
        code_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(Gone, match="This code has expired"):
        data_subject_request_confirm(dsr=dsr, code=code)
    dsr.refresh_from_db()
    assert dsr.status == "unconfirmed"


def test_after_too_many_wrong_codes_even_the_right_one_is_refused(
    django_capture_on_commit_callbacks,
):
    dsr, code = _file(django_capture_on_commit_callbacks)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(CODE_MAX_ATTEMPTS - 1):
        with pytest.raises(ServiceError, match="not right"):
            data_subject_request_confirm(dsr=dsr, code=wrong)
    with pytest.raises(Gone, match="Too many wrong codes"):
        data_subject_request_confirm(dsr=dsr, code=wrong)
    with pytest.raises(Gone, match="Too many wrong codes"):
        data_subject_request_confirm(dsr=dsr, code=code)
    dsr.refresh_from_db()
    assert dsr.status == "unconfirmed"


@pytest.mark.parametrize(
    ("email", "kind", "details", "field", "message"),
    [
        ("not-an-address", "access", DETAILS, "email", "Enter the email address we should"),
        (VISITOR, "gossip", DETAILS, "kind", "Choose what your request is about."),
        (VISITOR, "access", "short", "details", "Tell us a little more"),
        (VISITOR, "access", "x" * 5001, "details", "under 5,000 characters"),
    ],
)
def test_bad_input_when_filing_is_refused_with_a_clear_message(
    email: str, kind: str, details: str, field: str, message: str
) -> None:
    with pytest.raises(ServiceError, match=message) as refused:
        data_subject_request_file(email=email, kind=kind, details=details)
    assert refused.value.field == field
    assert DataSubjectRequest.objects.count() == 0


def test_the_public_pages_file_and_confirm_a_request(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    page = client.get("/privacy/requests/new/?kind=objection")
    assert page.status_code == 200 and b"Your email address" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/privacy/requests/new/", {"email": VISITOR, "kind": "objection", "details": DETAILS}
        )
    assert response.status_code == 302
    confirm_url = response["Location"]
    code = _code(mail.outbox[-1])
    wrong = client.post(confirm_url, {"code": "abc"})
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.content.decode()
    done = client.post(confirm_url, {"code": code})
    assert done.status_code == 200
    assert "We received your request" in done.content.decode()
    assert DataSubjectRequest.objects.get().status == "open"


def test_the_public_form_shows_each_bad_field(client: Client) -> None:
    response = client.post("/privacy/requests/new/", {"email": "nope", "kind": "", "details": ""})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Enter a valid email address" in text
    assert "Choose what your request is about." in text
    assert DataSubjectRequest.objects.count() == 0
    empty = Client().post(
        "/privacy/requests/new/", {"email": VISITOR, "kind": "access", "details": DETAILS}
    )
    assert Client().post(empty["Location"], {"code": ""}).status_code == 400


def test_a_tampered_confirmation_address_is_refused(client: Client) -> None:
    response = client.get("/privacy/requests/confirm/forged/")
    assert response.status_code == 410
    assert "send your request again" in response.content.decode()


def test_unconfirmed_requests_are_deleted_after_two_days(django_capture_on_commit_callbacks):
    old, _ = _file(django_capture_on_commit_callbacks)
    DataSubjectRequest.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    fresh, _ = _file(django_capture_on_commit_callbacks, email="other@example.org")
    assert data_subject_requests_unconfirmed_purge() == 1
    assert list(DataSubjectRequest.objects.values_list("pk", flat=True)) == [fresh.pk]


# ------------------------------------------------------------- staff handling


def test_staff_start_then_answer_and_the_person_is_emailed(
    staff: User, django_capture_on_commit_callbacks
) -> None:
    dsr = _received()
    data_subject_request_start(staff=staff, dsr=dsr)
    assert dsr.status == "in_progress"
    with django_capture_on_commit_callbacks(execute=True):
        data_subject_request_answer(staff=staff, dsr=dsr, status="done", answer="Attached.")
    assert dsr.status == "done"
    assert mail.outbox[-1].to == [dsr.user.email]
    assert "Attached." in mail.outbox[-1].body


def test_only_staff_handle_requests() -> None:
    dsr = _received()
    with pytest.raises(NotAllowed):
        data_subject_request_start(staff=UserFactory(), dsr=dsr)


def test_answering_twice_is_refused(staff: User) -> None:
    dsr = _received()
    data_subject_request_answer(staff=staff, dsr=dsr, status="done", answer="First.")
    with pytest.raises(Conflict, match="already answered"):
        data_subject_request_answer(staff=staff, dsr=dsr, status="done", answer="Second.")
    dsr.refresh_from_db()
    assert dsr.answer == "First."


def test_a_denial_without_a_reason_is_refused(staff: User) -> None:
    dsr = _received()
    with pytest.raises(ServiceError, match="A denial needs the reason") as refused:
        data_subject_request_answer(staff=staff, dsr=dsr, status="rejected", answer="  ")
    assert refused.value.field == "answer"
    dsr.refresh_from_db()
    assert dsr.status == "open"


@override_settings(PRIVACY_COMPLAINT_ROUTE="Write to the Example Data Authority.")
def test_a_denial_tells_the_person_why_and_where_to_complain(
    staff: User, django_capture_on_commit_callbacks
) -> None:
    dsr = _received()
    with django_capture_on_commit_callbacks(execute=True):
        data_subject_request_answer(
            staff=staff, dsr=dsr, status="rejected", answer="We hold no data on this address."
        )
    body = mail.outbox[-1].body
    assert "We hold no data on this address." in body
    assert "supervisory authority" in body
    assert "Write to the Example Data Authority." in body


def test_one_extension_before_the_deadline_moves_it_and_tells_the_person(
    staff: User, django_capture_on_commit_callbacks
) -> None:
    dsr = _received(days_ago=10)
    due = dsr.due_at
    with django_capture_on_commit_callbacks(execute=True):
        data_subject_request_extend(staff=staff, dsr=dsr, reason="Many records to gather.")
    dsr.refresh_from_db()
    assert dsr.due_at == due + timedelta(days=60)
    assert dsr.extension_reason == "Many records to gather."
    notice = mail.outbox[-1]
    assert notice.to == [dsr.user.email]
    assert "Many records to gather." in notice.body
    assert f"{dsr.due_at:%d %B %Y}" in notice.body


def test_a_second_extension_is_refused(staff: User) -> None:
    dsr = _received()
    data_subject_request_extend(staff=staff, dsr=dsr, reason="Many records to gather.")
    with pytest.raises(Conflict, match="already extended once"):
        data_subject_request_extend(staff=staff, dsr=dsr, reason="Still more records.")


def test_an_extension_after_the_deadline_is_refused(staff: User) -> None:
    dsr = _received(days_ago=31)
    with pytest.raises(Conflict, match="deadline has passed"):
        data_subject_request_extend(staff=staff, dsr=dsr, reason="Many records to gather.")
    dsr.refresh_from_db()
    assert dsr.extended_at is None


def test_an_extension_needs_a_reason(staff: User) -> None:
    with pytest.raises(ServiceError, match="reason for the extension") as refused:
        data_subject_request_extend(staff=staff, dsr=_received(), reason=" ")
    assert refused.value.field == "reason"


def test_an_objection_switches_off_the_purposes_concerned_in_one_step(
    staff: User, django_capture_on_commit_callbacks
) -> None:
    person = UserFactory()
    grant(person, Purpose.NEWSLETTER)
    grant(person, Purpose.PRODUCT_SURVEYS)
    dsr = _received(person, kind="objection")
    with django_capture_on_commit_callbacks(execute=True):
        data_subject_request_objection_fulfil(
            staff=staff, dsr=dsr, purposes=[Purpose.NEWSLETTER, Purpose.PRODUCT_SURVEYS]
        )
    assert not consent_state(user=person, purpose=Purpose.NEWSLETTER)
    assert not consent_state(user=person, purpose=Purpose.PRODUCT_SURVEYS)
    assert dsr.status == "done"
    assert "Newsletter and product news" in dsr.answer
    assert "Newsletter and product news" in mail.outbox[-1].body


def test_an_objection_needs_the_purposes_chosen(staff: User) -> None:
    dsr = _received(kind="objection")
    with pytest.raises(ServiceError, match="Choose the uses of data"):
        data_subject_request_objection_fulfil(staff=staff, dsr=dsr, purposes=[])


# ------------------------------------------------------------- reminders and queue


def test_staff_are_reminded_at_day_20_and_day_25_once_each(
    staff: User, django_capture_on_commit_callbacks
) -> None:
    dsr = _received(days_ago=21)
    _received(days_ago=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert data_subject_requests_remind() == 1
        assert data_subject_requests_remind() == 0
    assert [m.to for m in mail.outbox] == [[staff.email]]
    assert "day 20" in mail.outbox[0].subject
    later = timezone.now() + timedelta(days=4, hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert data_subject_requests_remind(now=later) == 1
        assert data_subject_requests_remind(now=later) == 0
    assert "day 25" in mail.outbox[-1].subject
    dsr.refresh_from_db()
    assert dsr.reminded_day20_at and dsr.reminded_day25_at


def test_answered_requests_are_not_reminded(staff: User) -> None:
    _received(days_ago=26, status="done", answer="Done.")
    assert data_subject_requests_remind() == 0


def test_the_scheduler_runs_the_housekeeping(staff: User, settings) -> None:
    _received(days_ago=21)
    schedule = settings.CELERY_BEAT_SCHEDULE["privacy-requests-housekeeping"]
    assert schedule["task"] == data_subject_requests_housekeeping_task.name
    assert data_subject_requests_housekeeping_task() == 1


def test_the_staff_queue_shows_days_left_and_overdue(staff_client: Client) -> None:
    _received(days_ago=10)
    _received(days_ago=31)
    page = staff_client.get("/admin/privacy/datasubjectrequest/")
    text = page.content.decode()
    assert page.status_code == 200
    assert '<td class="field-days_left">19</td>' in text
    assert '<td class="field-days_left">-2</td>' in text
    assert 'alt="True"' in text  # the overdue one


def test_the_staff_queue_leaves_out_unconfirmed_requests(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    _file(django_capture_on_commit_callbacks)
    assert VISITOR not in staff_client.get("/admin/privacy/datasubjectrequest/").content.decode()


def test_staff_extend_from_the_queue_and_refusals_show_there(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    dsr = _received()
    url = f"/admin/privacy/datasubjectrequest/{dsr.pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        ok = staff_client.post(url, {"step": "extend", "text": "Many records to gather."})
    assert ok.status_code == 302
    again = staff_client.post(url, {"step": "extend", "text": "Many records to gather."})
    assert again.status_code == 200
    assert "already extended once" in again.content.decode()
    deny = staff_client.post(url, {"step": "rejected", "text": ""})
    assert "A denial needs the reason" in deny.content.decode()
    dsr.refresh_from_db()
    assert dsr.status == "open"


def test_the_start_action_in_the_queue_calls_the_service(staff_client: Client) -> None:
    dsr = _received()
    staff_client.post(
        "/admin/privacy/datasubjectrequest/",
        {"action": "start_selected", "_selected_action": [dsr.pk]},
    )
    dsr.refresh_from_db()
    assert dsr.status == "in_progress"
    assert AuditEvent.objects.filter(verb="privacy.request_started").count() == 1


# ------------------------------------------------------------- self-service


def test_self_service_consent_changes_are_recorded_as_fulfilled_requests() -> None:
    person = UserFactory()
    grant(person, Purpose.NEWSLETTER, granted=False)
    row = DataSubjectRequest.objects.get(user=person)
    assert (row.kind, row.status, row.source) == ("consent", "done", "self_service")
    assert row.answered_at is not None


def test_a_self_service_export_is_recorded_as_a_fulfilled_request(client: Client) -> None:
    person = UserFactory()
    client.force_login(person)
    client.post("/privacy/export/")
    row = DataSubjectRequest.objects.get(user=person)
    assert (row.kind, row.status, row.source) == ("access", "done", "self_service")


def test_a_self_service_deletion_is_recorded_as_a_fulfilled_request() -> None:
    from pipetower.privacy.deletion import account_deletion_request

    person = UserFactory()
    account_deletion_request(user=person)
    row = DataSubjectRequest.objects.get(user=person)
    assert (row.kind, row.status, row.source) == ("deletion", "done", "self_service")


def test_the_public_privacy_page_links_the_request_form_for_people_without_an_account(
    client: Client,
) -> None:
    assert 'href="/privacy/requests/new/"' in client.get("/privacy/").content.decode()


def test_a_signed_in_person_is_sent_to_their_own_requests_page(client: Client) -> None:
    client.force_login(UserFactory())
    response = client.get("/privacy/requests/new/")
    assert (response.status_code, response["Location"]) == (302, "/privacy/requests/")


def test_filing_without_an_account_is_limited_per_network(client: Client, settings) -> None:
    settings.PRIVACY_REQUEST_RATE_LIMIT = "2/h"
    form = {"email": VISITOR, "kind": "access", "details": DETAILS}
    for _ in range(2):
        assert client.post("/privacy/requests/new/", form).status_code == 302
    response = client.post("/privacy/requests/new/", form)
    assert response.status_code == 429
    assert "Too many requests from your network. Try again in 60 minutes" in (
        response.content.decode()
    )
    assert 3500 < int(response["Retry-After"]) <= 3600
    assert DataSubjectRequest.objects.count() == 2
