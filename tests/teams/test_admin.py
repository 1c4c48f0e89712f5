"""The back office: teams, members and invitations listed without their content;
staff cannot make themselves members; the audit log is untouchable."""

from __future__ import annotations

import pytest

from pipetower.audit.models import AuditEvent
from pipetower.audit.services import audit_record
from pipetower.teams.models import Invitation, Membership
from tests.factories import UserFactory


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_teams_members_and_invitations_are_listed_without_addresses(staff_client, team, invite):
    invite("grace@example.com")

    for url in ("/admin/teams/team/", "/admin/teams/membership/", "/admin/teams/invitation/"):
        response = staff_client.get(url)
        assert response.status_code == 200, url
    assert team.name in staff_client.get("/admin/teams/team/").content.decode()
    assert "grace@example.com" not in staff_client.get("/admin/teams/invitation/").content.decode()


def test_the_invitation_page_shows_neither_the_address_nor_the_token_hash(staff_client, invite):
    invitation, _ = invite("grace@example.com")

    html = staff_client.get(f"/admin/teams/invitation/{invitation.pk}/change/").content.decode()

    assert "grace@example.com" not in html
    assert invitation.token_hash not in html
    assert "token_hash" not in html


def test_staff_cannot_make_themselves_members_of_a_customer_team(staff_client, staff, team):
    """The broken promise: staff added themselves as a viewer and read run output."""
    add = staff_client.post(
        "/admin/teams/membership/add/", {"team": team.pk, "user": staff.pk, "role": "viewer"}
    )
    assert add.status_code == 403
    inline = staff_client.post(
        f"/admin/teams/team/{team.pk}/change/",
        {
            "name": team.name,
            "slug": team.slug,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": staff.pk,
            "memberships-0-role": "viewer",
        },
    )
    assert inline.status_code == 403
    assert not Membership.objects.filter(team=team, user=staff).exists()
    # And their own attempt at the team's pages is a plain 404.
    assert staff_client.get(f"/teams/{team.slug}/").status_code == 404


def test_memberships_and_invitations_are_not_changed_in_the_back_office(
    staff_client, team, user, invite
):
    invitation, _ = invite("grace@example.com")
    membership = Membership.objects.get(team=team, user=user)
    assert staff_client.get("/admin/teams/invitation/add/").status_code == 403
    assert (
        staff_client.post(
            f"/admin/teams/membership/{membership.pk}/change/", {"role": "viewer"}
        ).status_code
        == 403
    )
    assert staff_client.post(f"/admin/teams/membership/{membership.pk}/delete/").status_code == 403
    assert staff_client.post(f"/admin/teams/invitation/{invitation.pk}/delete/").status_code == 403
    assert staff_client.post(f"/admin/teams/team/{team.pk}/delete/").status_code == 403
    membership.refresh_from_db()
    assert membership.role == "owner"
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_the_audit_log_is_read_only_and_shows_no_details(staff_client, team, user):
    event = audit_record(
        actor=user, team=team, verb="team.renamed", data={"from": "Secret Project Falcon"}
    )

    assert staff_client.get("/admin/audit/auditevent/").status_code == 200
    detail = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert 'name="_save"' not in html
    assert "team.renamed" in html
    assert "Secret Project Falcon" not in html
    assert user.email not in html
    assert staff_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert staff_client.post(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
