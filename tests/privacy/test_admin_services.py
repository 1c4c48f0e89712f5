"""Staff actions in the back office go through the services, with their checks
and audit rows; the admin itself writes no business state."""

from __future__ import annotations

import pytest
from django.test import Client

from pipetower.audit.models import AuditEvent
from pipetower.privacy.models import DataSubjectRequest, ProcessingRestriction
from pipetower.privacy.services import restriction_start
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory(email="staff@pipetower.example", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def dsr() -> DataSubjectRequest:
    return DataSubjectRequest.objects.create(
        user=UserFactory(), kind="access", details="Please send me my data"
    )


def test_answering_a_request_in_the_admin_goes_through_the_service(staff_client, staff, dsr):
    response = staff_client.post(
        f"/admin/privacy/datasubjectrequest/{dsr.pk}/change/",
        {"step": "done", "text": "Your export is attached."},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    dsr.refresh_from_db()
    assert (dsr.status, dsr.answer) == ("done", "Your export is attached.")
    assert dsr.answered_at is not None
    event = AuditEvent.objects.get(verb="privacy.request_answered")
    assert (event.actor_id, event.target_id) == (staff.pk, str(dsr.pk))


def test_the_services_refusal_shows_on_the_admin_form_and_nothing_changes(staff_client, dsr):
    response = staff_client.post(
        f"/admin/privacy/datasubjectrequest/{dsr.pk}/change/",
        {"step": "done", "text": "   "},
    )
    assert response.status_code == 200
    assert "Write the answer the person will read." in response.content.decode()
    dsr.refresh_from_db()
    assert (dsr.status, dsr.answer, dsr.answered_at) == ("open", "", None)
    assert not AuditEvent.objects.filter(verb="privacy.request_answered").exists()


def test_an_answered_request_is_not_changed_again_or_deleted(staff_client, dsr):
    staff_client.post(
        f"/admin/privacy/datasubjectrequest/{dsr.pk}/change/",
        {"step": "done", "text": "Done."},
    )
    again = staff_client.post(
        f"/admin/privacy/datasubjectrequest/{dsr.pk}/change/",
        {"step": "rejected", "text": "Changed my mind."},
    )
    assert again.status_code == 403
    assert (
        staff_client.post(f"/admin/privacy/datasubjectrequest/{dsr.pk}/delete/").status_code == 403
    )
    dsr.refresh_from_db()
    assert (dsr.status, dsr.answer) == ("done", "Done.")


def test_restrictions_and_correspondence_are_read_only(staff_client):
    person = UserFactory()
    restriction = restriction_start(user=person)
    url = f"/admin/privacy/processingrestriction/{restriction.pk}/"
    assert staff_client.post(url + "change/", {"lifted_at_0": "2030-01-01"}).status_code == 403
    assert staff_client.post(url + "delete/").status_code == 403
    assert ProcessingRestriction.objects.get(pk=restriction.pk).lifted_at is None
    assert staff_client.get("/admin/support/correspondence/add/").status_code == 403
    assert staff_client.get("/admin/support/surveyresponse/add/").status_code == 403


def test_a_request_answered_meanwhile_is_not_answered_again(staff, dsr):
    from pipetower.core.errors import Conflict
    from pipetower.privacy.services import data_subject_request_answer

    stale = DataSubjectRequest.objects.get(pk=dsr.pk)
    data_subject_request_answer(staff=staff, dsr=dsr, status="done", answer="First answer.")
    with pytest.raises(Conflict, match="already answered"):
        data_subject_request_answer(staff=staff, dsr=stale, status="rejected", answer="Second.")
    dsr.refresh_from_db()
    assert (dsr.status, dsr.answer) == ("done", "First answer.")
    assert AuditEvent.objects.filter(verb="privacy.request_answered").count() == 1
