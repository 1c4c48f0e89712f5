"""`/teams/...` through the API: the same services and rules as the pages."""

from __future__ import annotations

import pytest

from pipetower.audit.models import AuditEvent
from pipetower.teams.models import Invitation, Membership, Role, Team
from tests.api.helpers import Api, error_of
from tests.factories import TeamFactory, UserFactory, member


@pytest.fixture
def viewer_api(client, team, make_member, make_token):
    viewer = make_member(Role.VIEWER, email="viewer@example.com")
    return Api(client, make_token(viewer)[1])


@pytest.fixture
def other_team(db):
    other = TeamFactory(name="Difference Engines", slug="difference")
    member(other, Role.OWNER)
    return other


# --- teams -------------------------------------------------------------------
def test_list_shows_my_teams_with_my_role(api, team, other_team, user):
    second = TeamFactory(name="Babbage Fans", slug="fans")
    Membership.objects.create(team=second, user=user, role=Role.VIEWER)

    body = api.get("/teams").json()

    assert body["count"] == 2
    assert [(t["slug"], t["role"]) for t in body["items"]] == [
        ("engines", "owner"),
        ("fans", "viewer"),
    ]


def test_create_team_makes_me_its_owner(api, user):
    response = api.post("/teams", {"name": "Night Shift"})

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Night Shift" and body["role"] == "owner"
    team = Team.objects.get(slug=body["slug"])
    assert team.memberships.get().user == user
    assert AuditEvent.objects.filter(team=team, verb="team.created").exists()


def test_create_team_with_a_number_as_name_is_422(api):
    response = api.post("/teams", {"name": 12})

    assert response.status_code == 422
    assert error_of(response)["details"][0]["field"] == "name"


def test_get_team(api):
    response = api.get("/teams/engines")

    assert response.status_code == 200
    assert response.json()["name"] == "Analytical Engines"


@pytest.mark.parametrize("path", ["/teams/difference", "/teams/no-such-team"])
def test_another_teams_slug_is_404_like_a_missing_one(api, other_team, path):
    for response in (
        api.get(path),
        api.patch(path, {"name": "Mine now"}),
        api.get(f"{path}/members"),
        api.get(f"{path}/invitations"),
        api.post(f"{path}/invitations", {"email": "x@example.com"}),
        api.get(f"{path}/audit-events"),
        api.get(f"{path}/retention"),
        api.patch(f"{path}/retention", {"run_retention_days": 7}),
    ):
        assert response.status_code == 404
        assert error_of(response) == {
            "code": "not_found",
            "message": "No such team.",
            "details": [],
        }
    other_team.refresh_from_db()
    assert other_team.name == "Difference Engines"


def test_rename_team(api, team):
    response = api.patch("/teams/engines", {"name": "Engines Ltd"})

    assert response.status_code == 200
    assert response.json()["name"] == "Engines Ltd"
    team.refresh_from_db()
    assert team.name == "Engines Ltd"
    assert AuditEvent.objects.filter(team=team, verb="team.renamed").exists()


def test_viewer_cannot_rename_the_team(viewer_api, team):
    response = viewer_api.patch("/teams/engines", {"name": "Viewers Rule"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    team.refresh_from_db()
    assert team.name == "Analytical Engines"


# --- members -----------------------------------------------------------------
def test_members_are_listed_owners_first(viewer_api, user):
    body = viewer_api.get("/teams/engines/members").json()

    assert [(m["user"]["email"], m["role"]) for m in body["items"]] == [
        ("ada@example.com", "owner"),
        ("viewer@example.com", "viewer"),
    ]
    assert set(body["items"][0]) == {"id", "user", "role", "joined_at"}


def test_owner_changes_a_members_role(api, team, make_member):
    operator = make_member(Role.VIEWER)
    membership = Membership.objects.get(team=team, user=operator)

    response = api.patch(f"/teams/engines/members/{membership.pk}", {"role": "operator"})

    assert response.status_code == 200
    assert response.json()["role"] == "operator"
    membership.refresh_from_db()
    assert membership.role == Role.OPERATOR
    assert AuditEvent.objects.filter(team=team, verb="member.role_changed").exists()


def test_role_emperor_is_422_listing_the_roles(api, team, make_member):
    membership = Membership.objects.get(team=team, user=make_member(Role.VIEWER))

    response = api.patch(f"/teams/engines/members/{membership.pk}", {"role": "emperor"})

    assert response.status_code == 422
    [detail] = error_of(response)["details"]
    assert detail["field"] == "role"
    assert "'owner', 'admin', 'operator' or 'viewer'" in detail["message"]


def test_viewer_cannot_change_roles(viewer_api, team, user):
    owner = Membership.objects.get(team=team, user=user)

    response = viewer_api.patch(f"/teams/engines/members/{owner.pk}", {"role": "viewer"})

    assert response.status_code == 403
    assert "owners and admins" in error_of(response)["message"]
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_last_owner_cannot_step_down_is_409(api, team, user):
    owner = Membership.objects.get(team=team, user=user)

    response = api.patch(f"/teams/engines/members/{owner.pk}", {"role": "viewer"})

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"


def test_member_of_another_team_is_404(api, other_team):
    theirs = other_team.memberships.get()

    response = api.patch(f"/teams/engines/members/{theirs.pk}", {"role": "viewer"})

    assert response.status_code == 404
    assert error_of(response)["message"] == "No such member."


def test_owner_removes_a_member(api, team, make_member):
    membership = Membership.objects.get(team=team, user=make_member(Role.OPERATOR))

    response = api.delete(f"/teams/engines/members/{membership.pk}")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(team=team, verb="member.removed").exists()


def test_viewer_cannot_remove_others_but_can_leave(viewer_api, team, user):
    owner = Membership.objects.get(team=team, user=user)
    own = Membership.objects.get(team=team, user__email="viewer@example.com")

    refused = viewer_api.delete(f"/teams/engines/members/{owner.pk}")
    assert refused.status_code == 403
    assert Membership.objects.filter(pk=owner.pk).exists()

    left = viewer_api.delete(f"/teams/engines/members/{own.pk}")
    assert left.status_code == 204
    assert not Membership.objects.filter(pk=own.pk).exists()
    assert AuditEvent.objects.filter(team=team, verb="member.left").exists()


# --- invitations -------------------------------------------------------------
def test_invite_resend_and_revoke(api, team, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/teams/engines/invitations", {"email": "Grace@Example.com", "role": "operator"}
        )
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "grace@example.com"
    assert body["role"] == "operator" and body["state"] == "pending"
    assert body["invited_by"] == "ada@example.com"
    assert "token" not in body and "token_hash" not in body
    assert len(mailoutbox) == 1

    listed = api.get("/teams/engines/invitations").json()
    assert [i["id"] for i in listed["items"]] == [body["id"]]

    with django_capture_on_commit_callbacks(execute=True):
        resent = api.post(f"/teams/engines/invitations/{body['id']}/resend")
    assert resent.status_code == 200
    assert len(mailoutbox) == 2

    revoked = api.delete(f"/teams/engines/invitations/{body['id']}")
    assert revoked.status_code == 204
    assert Invitation.objects.get(pk=body["id"]).state == "revoked"

    again = api.delete(f"/teams/engines/invitations/{body['id']}")
    assert again.status_code == 409
    assert "revoked" in error_of(again)["message"]


def test_invitation_with_a_bad_email_is_refused(api):
    response = api.post("/teams/engines/invitations", {"email": "not an address"})

    assert response.status_code == 400
    error = error_of(response)
    assert error["details"] == [{"field": "email", "message": "Enter a valid email address."}]


def test_invitation_with_role_emperor_is_422(api):
    response = api.post("/teams/engines/invitations", {"email": "a@example.com", "role": "emperor"})

    assert response.status_code == 422
    assert Invitation.objects.count() == 0


def test_viewer_cannot_see_or_send_invitations(viewer_api):
    assert viewer_api.get("/teams/engines/invitations").status_code == 403
    response = viewer_api.post("/teams/engines/invitations", {"email": "x@example.com"})
    assert response.status_code == 403
    assert Invitation.objects.count() == 0


def test_invitation_of_another_team_is_404(api, other_team):
    theirs = Invitation.objects.create(
        team=other_team, email="z@example.com", token_hash="x" * 64, expires_at="2999-01-01T00:00Z"
    )

    assert api.post(f"/teams/engines/invitations/{theirs.pk}/resend").status_code == 404
    assert api.delete(f"/teams/engines/invitations/{theirs.pk}").status_code == 404
    assert Invitation.objects.get(pk=theirs.pk).revoked_at is None


# --- audit -------------------------------------------------------------------
def test_audit_events_are_filtered(api, team, user, make_member):
    other = make_member(Role.ADMIN)
    api.patch("/teams/engines", {"name": "Renamed"})
    api.post("/teams/engines/invitations", {"email": "b@example.com"})
    AuditEvent.objects.create(team=team, actor=other, actor_label=other.email, verb="team.renamed")
    AuditEvent.objects.create(team=None, actor=user, actor_label=user.email, verb="team.renamed")

    everything = api.get("/teams/engines/audit-events").json()
    assert everything["count"] == 3
    renamed = api.get("/teams/engines/audit-events?verb=team.renamed").json()
    assert renamed["count"] == 2
    mine = api.get(f"/teams/engines/audit-events?verb=team.renamed&actor_id={user.pk}").json()
    assert [e["actor_label"] for e in mine["items"]] == ["ada@example.com"]
    assert mine["items"][0]["data"] == {"from": "Analytical Engines", "to": "Renamed"}


def test_audit_events_by_time(api, team):
    api.patch("/teams/engines", {"name": "Renamed"})
    from django.utils import timezone

    today = timezone.now().date().isoformat()
    assert api.get(f"/teams/engines/audit-events?since={today}&until={today}").json()["count"] == 1
    assert api.get("/teams/engines/audit-events?until=2000-01-01").json()["count"] == 0
    assert api.get("/teams/engines/audit-events?since=2999-01-01T00:00:00Z").json()["count"] == 0


def test_audit_event_filters_with_bad_values_are_422(api):
    response = api.get("/teams/engines/audit-events?since=yesterday&actor_id=me")

    assert response.status_code == 422
    details = {d["field"]: d["message"] for d in error_of(response)["details"]}
    assert set(details) == {"since", "actor_id"}
    assert details["since"].startswith("Use a date (2026-01-31)")


def test_viewer_reads_the_audit_trail(viewer_api):
    assert viewer_api.get("/teams/engines/audit-events").status_code == 200


def test_user_without_teams_sees_an_empty_list(client, db, make_token):
    loner = UserFactory()
    body = Api(client, make_token(loner)[1]).get("/teams").json()

    assert body == {
        "items": [],
        "count": 0,
        "page": 1,
        "page_size": 50,
        "next": None,
        "previous": None,
    }


# --- retention ---------------------------------------------------------------
def test_retention_shows_the_settings_and_what_is_kept_as_the_settings_page_does(viewer_api, team):
    team.run_retention_days = 30
    team.save(update_fields=["run_retention_days"])

    body = viewer_api.get("/teams/engines/retention").json()

    assert body["run_retention_days"] == 30
    assert body["output_limit_mb"] >= 1
    runs = [row for row in body["kept"] if row["setting"]]
    assert runs and all(row["period"].startswith("30 days after the run ended") for row in runs)
    assert any(not row["setting"] for row in body["kept"])  # also what no setting decides


def test_an_admin_changes_retention_and_it_is_audited(api, team):
    response = api.patch("/teams/engines/retention", {"run_retention_days": 14})

    assert response.status_code == 200
    assert response.json()["run_retention_days"] == 14
    team.refresh_from_db()
    assert team.run_retention_days == 14
    event = AuditEvent.objects.get(team=team, verb="team.retention_changed")
    assert event.data["to"]["run_retention_days"] == 14


def test_retention_out_of_range_is_refused_with_the_allowed_range_and_nothing_changes(api, team):
    before = team.run_retention_days

    response = api.patch("/teams/engines/retention", {"run_retention_days": 99999})

    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == "Keep runs for 1 to 3650 days."
    assert error["details"] == [{"field": "run_retention_days", "message": error["message"]}]
    team.refresh_from_db()
    assert team.run_retention_days == before


def test_retention_of_the_wrong_type_is_422(api):
    response = api.patch("/teams/engines/retention", {"output_limit_mb": "lots"})

    assert response.status_code == 422
    assert error_of(response)["details"][0]["field"] == "output_limit_mb"


def test_a_viewer_cannot_change_retention(viewer_api, team):
    before = team.run_retention_days

    response = viewer_api.patch("/teams/engines/retention", {"run_retention_days": 7})

    assert response.status_code == 403
    team.refresh_from_db()
    assert team.run_retention_days == before
