"""Government and legal requests: recorded by staff through an audited service,
published only as yearly counts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from pipetower.audit.models import AuditEvent
from pipetower.core.errors import NotAllowed, ServiceError
from pipetower.privacy import legal_requests
from pipetower.privacy.models import LegalRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/privacy/transparency/"
ADD = "/admin/privacy/legalrequest/add/"


@pytest.fixture
def staff() -> Any:
    return UserFactory(email="staff@pipetower.example", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: Any, settings: Any) -> Client:
    settings.ADMIN_REQUIRE_2FA = False
    client = Client()
    client.force_login(staff)
    return client


def record(staff: Any, **fields: Any) -> LegalRequest:
    values: dict[str, Any] = {
        "authority": "District court of Example",
        "received_on": date(2025, 3, 14),
        "scope": "Sign-in records of one account, January 2025",
        "disclosed": True,
        "reason": "A binding court order",
        "customer_notified": True,
    }
    return legal_requests.legal_request_record(actor=staff, **{**values, **fields})


def test_staff_record_a_request_and_the_activity_log_keeps_only_its_outcome(staff: Any) -> None:
    row = record(staff, scope="Everything about ada@example.com")
    assert (row.authority, row.recorded_by) == ("District court of Example", staff)
    event = AuditEvent.objects.get(verb="privacy.legal_request_recorded")
    assert (event.actor_id, event.target_id) == (staff.pk, str(row.pk))
    assert event.data == {"received_on": "2025-03-14", "disclosed": True, "customer_notified": True}
    assert "ada@example.com" not in str(AuditEvent.objects.values())


def test_nothing_disclosed_needs_a_reason_and_a_disclosure_may_have_none(staff: Any) -> None:
    with pytest.raises(ServiceError) as exc:
        record(staff, disclosed=False, reason="  ")
    assert exc.value.field == "reason"
    assert "Give the reason nothing was disclosed" in exc.value.message
    assert record(staff, disclosed=True, reason="").reason == ""


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"authority": " "}, "authority", "Name the authority"),
        ({"authority": "x" * 201}, "authority", "under 200 characters"),
        ({"received_on": None}, "received_on", "Give the date the request was received."),
        ({"received_on": "tomorrow"}, "received_on", "cannot be in the future"),
        ({"received_on": date(1999, 12, 31)}, "received_on", "it is before 2000"),
        ({"scope": ""}, "scope", "Describe what was asked for"),
        ({"scope": "x" * 5001}, "scope", "under 5,000 characters"),
        ({"disclosed": None}, "disclosed", "Say whether any data was disclosed."),
        ({"disclosed": False, "reason": ""}, "reason", "Give the reason nothing was disclosed"),
        ({"reason": "x" * 5001}, "reason", "under 5,000 characters"),
        ({"customer_notified": None}, "customer_notified", "Say whether the customer was told."),
    ],
)
def test_bad_input_gets_a_clear_error_and_records_nothing(
    staff: Any, fields: dict[str, Any], field: str, message: str
) -> None:
    if fields.get("received_on") == "tomorrow":
        fields = {"received_on": timezone.localdate() + timedelta(days=1)}
    with pytest.raises(ServiceError) as exc:
        record(staff, **fields)
    assert exc.value.field == field
    assert message in exc.value.message
    assert not LegalRequest.objects.exists()


def test_a_request_received_today_is_accepted(staff: Any) -> None:
    assert record(staff, received_on=timezone.localdate()).pk


def test_yearly_counts_of_received_disclosed_and_customer_told(staff: Any) -> None:
    record(staff, received_on=date(2024, 2, 1), disclosed=True, customer_notified=True)
    record(staff, received_on=date(2024, 12, 31), disclosed=False, reason="Not binding",
           customer_notified=True)  # fmt: skip
    record(staff, received_on=date(2024, 6, 1), disclosed=True, customer_notified=False)
    record(staff, received_on=date(2025, 1, 1), disclosed=False, reason="Too broad",
           customer_notified=False)  # fmt: skip
    counts = [
        (y.year, y.received, y.disclosed, y.customer_notified)
        for y in legal_requests.legal_requests_yearly()
    ]
    assert counts == [(2025, 1, 0, 0), (2024, 3, 2, 2)]


def test_the_transparency_page_shows_counts_never_the_requests(client: Client, staff: Any) -> None:
    record(staff, authority="Secret Police Unit 7", scope="Account of customer zq-unique-42",
           reason="Order 99-ZZ")  # fmt: skip
    record(staff, received_on=date(2025, 5, 5), disclosed=False, reason="Refused: not binding",
           customer_notified=False)  # fmt: skip
    response = client.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert '<th scope="row">2025</th><td>2</td><td>1</td><td>1</td>' in body
    for secret in ("Secret Police", "zq-unique-42", "Order 99-ZZ", "Refused: not binding"):
        assert secret not in body


def test_the_transparency_page_says_so_when_there_were_none(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 200
    assert "We have received no government or legal requests for data." in response.content.decode()


def test_a_correction_is_audited_and_an_unchanged_save_is_not(staff: Any) -> None:
    row = record(staff, customer_notified=False)
    fields = {
        "authority": row.authority,
        "received_on": row.received_on,
        "scope": row.scope,
        "disclosed": row.disclosed,
        "reason": row.reason,
    }
    legal_requests.legal_request_update(
        actor=staff, legal_request_id=row.pk, customer_notified=False, **fields
    )
    assert not AuditEvent.objects.filter(verb="privacy.legal_request_changed").exists()
    legal_requests.legal_request_update(
        actor=staff, legal_request_id=row.pk, customer_notified=True, **fields
    )
    row.refresh_from_db()
    assert row.customer_notified is True
    event = AuditEvent.objects.get(verb="privacy.legal_request_changed")
    assert event.data == {"fields": ["customer_notified"]}


def test_a_person_who_is_not_staff_cannot_record_or_change_a_request(staff: Any) -> None:
    row = record(staff)
    person = UserFactory()
    with pytest.raises(NotAllowed):
        record(person)
    with pytest.raises(NotAllowed):
        legal_requests.legal_request_update(
            actor=person,
            legal_request_id=row.pk,
            authority="Changed",
            received_on=row.received_on,
            scope=row.scope,
            disclosed=False,
            reason="x",
            customer_notified=False,
        )
    client = Client()
    client.force_login(person)
    response = client.post(
        ADD, {"authority": "X", "received_on": "2025-01-01", "scope": "s", "reason": "r"}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert LegalRequest.objects.count() == 1
    row.refresh_from_db()
    assert row.authority == "District court of Example"


def test_the_back_office_records_through_the_service(staff_client: Client, staff: Any) -> None:
    response = staff_client.post(
        ADD,
        {
            "authority": "Tax office",
            "received_on": "2025-04-01",
            "scope": "Invoices of one customer",
            "reason": "Not a legal obligation for this data",
            "customer_notified": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = LegalRequest.objects.get()
    assert (row.disclosed, row.customer_notified, row.recorded_by) == (False, True, staff)
    assert AuditEvent.objects.filter(verb="privacy.legal_request_recorded", actor=staff).exists()
    change = f"/admin/privacy/legalrequest/{row.pk}/change/"
    assert staff_client.get(change).status_code == 200
    assert staff_client.post(f"/admin/privacy/legalrequest/{row.pk}/delete/").status_code == 403


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"received_on": "2999-01-01"}, "The date received cannot be in the future."),
        ({"reason": ""}, "Give the reason nothing was disclosed"),
        ({"authority": ""}, "Name the authority that made the request"),
        ({"received_on": ""}, "Give the date the request was received."),
        ({"received_on": "14/03/2025x"}, "Enter a valid date."),
        ({"scope": ""}, "Describe what was asked for"),
    ],
)
def test_the_back_office_shows_the_services_error_for_bad_input(
    staff_client: Client, form: dict[str, str], error: str
) -> None:
    base = {
        "authority": "Tax office",
        "received_on": "2025-04-01",
        "scope": "Invoices",
        "reason": "Not binding",
    }
    response = staff_client.post(ADD, {**base, **form})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not LegalRequest.objects.exists()
