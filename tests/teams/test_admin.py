"""The back office: teams, members and invitations visible; tokens and the audit log untouchable."""

from __future__ import annotations

import pytest

from pipetower.audit.models import AuditEvent
from pipetower.audit.services import audit_record
from tests.factories import UserFactory


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_teams_members_and_invitations_are_listed(staff_client, team, invite):
    invite("grace@example.com")

    for url in ("/admin/teams/team/", "/admin/teams/membership/", "/admin/teams/invitation/"):
        response = staff_client.get(url)
        assert response.status_code == 200, url
    assert "grace@example.com" in staff_client.get("/admin/teams/invitation/").content.decode()


def test_the_invitation_form_never_shows_the_token_hash(staff_client, invite):
    invitation, _ = invite("grace@example.com")

    html = staff_client.get(f"/admin/teams/invitation/{invitation.pk}/change/").content.decode()

    assert "grace@example.com" in html
    assert invitation.token_hash not in html
    assert "token_hash" not in html


def test_invitations_are_not_made_in_the_back_office(staff_client, db):
    assert staff_client.get("/admin/teams/invitation/add/").status_code == 403


def test_the_audit_log_is_read_only(staff_client, team, user):
    event = audit_record(actor=user, team=team, verb="team.renamed")

    assert staff_client.get("/admin/audit/auditevent/").status_code == 200
    detail = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert staff_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert staff_client.post(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
