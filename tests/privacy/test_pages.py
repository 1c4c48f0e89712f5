"""The public "what we collect" page, the privacy center and rights requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.privacy.datamap import DATA_MAP
from pipetower.privacy.models import DataSubjectRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_public_page_is_built_from_the_data_map(client: Client) -> None:
    response = client.get("/privacy/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "What we collect and why" in text
    for decl in DATA_MAP:
        if decl.fields:
            assert decl.title in text, decl.title
    ip_purpose = DATA_MAP[0].fields["signup_ip"].purpose
    assert ip_purpose in text
    assert "Our legitimate interest in keeping Pipetower secure" in text
    assert "Only with your permission" in text
    assert "IP address" in text and "user.device.ip_address" not in text


def test_the_public_page_links_every_right(client: Client) -> None:
    text = client.get("/privacy/").content.decode()
    for href in (
        "/privacy/export/",
        "/privacy/delete/",
        "/privacy/center/",
        "/privacy/requests/?kind=correction",
        "/privacy/requests/?kind=complaint",
    ):
        assert f'href="{href}"' in text, href
    assert "supervisory authority" in text
    assert "within 30 days" in text


def test_every_page_links_the_public_privacy_page(client: Client) -> None:
    assert b'href="/privacy/"' in client.get("/support/contact/").content


def test_the_privacy_center_needs_a_signed_in_person(client: Client) -> None:
    response = client.get("/privacy/center/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_account_navigation_links_the_privacy_center(client: Client, user: User) -> None:
    client.force_login(user)
    page = client.get("/privacy/center/")
    assert b'href="/privacy/center/" aria-current="page">Privacy' in page.content
    assert b'href="/privacy/center/"' in client.get("/account/security/").content


def test_a_correction_request_is_recorded_with_a_30_day_answer_date(
    client: Client, user: User
) -> None:
    client.force_login(user)
    before = timezone.now()
    response = client.post(
        "/privacy/requests/",
        {"kind": "correction", "details": "My sign-in log shows a city I have never been to."},
        follow=True,
    )
    assert b"will answer within 30 days" in response.content
    request = DataSubjectRequest.objects.get(user=user)
    assert (request.kind, request.status) == ("correction", "open")
    assert before + timedelta(days=30) <= request.due_at <= timezone.now() + timedelta(days=30)
    assert b"Correction of something I cannot edit myself" in response.content
    assert request.due_at.strftime("%-d %b %Y").encode() in response.content


def test_a_request_without_a_kind_or_details_shows_errors_next_to_the_fields(
    client: Client, user: User
) -> None:
    client.force_login(user)
    response = client.post("/privacy/requests/", {"kind": "", "details": "short"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "Choose what your request is about." in text
    assert "at least 10 characters" in text
    assert 'aria-invalid="true"' in text
    assert DataSubjectRequest.objects.count() == 0


def test_the_complaint_form_mentions_the_supervisory_authority(client: Client, user: User) -> None:
    client.force_login(user)
    page = client.get("/privacy/requests/?kind=complaint").content.decode()
    assert "supervisory authority" in page
    assert '<option value="complaint" selected>' in page


def test_a_person_sees_only_their_own_requests(client: Client, user: User) -> None:
    other = UserFactory()
    DataSubjectRequest.objects.create(user=other, kind="objection", details="Someone else's")
    client.force_login(user)
    page = client.get("/privacy/requests/").content.decode()
    assert "Someone else&#x27;s" not in page and "No requests yet." in page


def test_staff_see_requests_with_their_due_date_in_the_admin(client: Client) -> None:
    staff = User.objects.create_superuser("staff@example.com", "pw-staff-123456", name="Staff")
    person = UserFactory()
    overdue = DataSubjectRequest.objects.create(
        user=person,
        kind="access",
        details="Please send my data",
        created_at=timezone.now() - timedelta(days=31),
    )
    assert overdue.due_at < timezone.now()
    client.force_login(staff)
    page = client.get("/admin/privacy/datasubjectrequest/").content.decode()
    assert "Due at" in page and "Overdue" in page
    assert 'alt="True"' in page  # the overdue flag is on
