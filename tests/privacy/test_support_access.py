"""Support access: staff see a team's content only with its permission, within the
grant's scope and time; everything they do is logged, shown to the team and
summarised by email to the owners."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pipetower.actions import services as action_services
from pipetower.actions.models import Action, Run
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.privacy import support_access
from pipetower.privacy.models import StaffAccess, SupportGrant
from pipetower.teams.models import Membership, Role, Team
from tests.actions.conftest import pinned_server
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

OUTPUT_MARKER = "output-7f3a-only-the-team-may-read"
SCRIPT_MARKER = "script-91bd-only-the-team-may-read"


@pytest.fixture
def staff():
    return UserFactory(email="support@pipetower.example", is_staff=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def run(team, user) -> Run:
    server = pinned_server(team, "db-1", port=9)
    action = action_services.action_create(
        team=team, actor=user, name="Backup", script=f"echo {SCRIPT_MARKER}"
    )
    run = action_services.run_start(action=action, actor=user, server_ids=[server.pk])
    target = run.targets.get()
    action_services.run_target_claim(target_id=target.pk, worker="w")
    action_services.output_chunks_store(
        target_id=target.pk, chunks=[("stdout", OUTPUT_MARKER + "\n")]
    )
    return run


def grant(team: Team, actor, scope: str = "read", days: int = 1) -> SupportGrant:
    return support_access.support_grant_create(
        team=team, actor=actor, scope=scope, reason="ticket #42", duration=timedelta(days=days)
    )


def run_url(team: Team, run: Run, name: str = "runs:detail") -> str:
    return reverse(name, args=[team.slug, run.pk])


# --- without a grant ---------------------------------------------------------------


def test_without_a_grant_staff_get_404_for_team_pages_and_output(staff_client, team, run):
    for path in (
        reverse("teams:detail", args=[team.slug]),
        run_url(team, run),
        run_url(team, run, "runs:download"),
        reverse("actions:detail", args=[team.slug, run.action_id]),
    ):
        response = staff_client.get(path)
        assert response.status_code == 404, path
        assert OUTPUT_MARKER not in response.content.decode()
        assert SCRIPT_MARKER not in response.content.decode()
    assert not StaffAccess.objects.exists()


def test_a_grant_of_another_team_opens_nothing_here(staff_client, team, run):
    other_owner = UserFactory()
    other = TeamFactory()
    Membership.objects.create(team=other, user=other_owner, role=Role.OWNER)
    grant(other, other_owner)
    assert staff_client.get(run_url(team, run)).status_code == 404


def test_the_api_never_honours_a_grant(staff_client, team, user, run):
    grant(team, user)
    response = staff_client.get(f"/api/v1/teams/{team.slug}/runs/{run.pk}")
    assert response.status_code in (401, 404)
    assert OUTPUT_MARKER not in response.content.decode()


# --- with a grant ----------------------------------------------------------------


def test_with_a_read_grant_staff_see_the_run_with_a_banner_and_it_is_logged(
    staff_client, staff, team, user, run
):
    active = grant(team, user)

    page = staff_client.get(run_url(team, run))
    output = staff_client.get(run_url(team, run, "runs:download"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "as Pipetower staff" in html and "logged and shown to the team" in html
    assert OUTPUT_MARKER in b"".join(output.streaming_content).decode()
    logged = list(StaffAccess.objects.order_by("id"))
    assert [(a.grant_id, a.staff_id, a.kind, a.path) for a in logged] == [
        (active.pk, staff.pk, "view", run_url(team, run)),
        (active.pk, staff.pk, "view", run_url(team, run, "runs:download")),
    ]
    assert logged[0].page == "runs:detail"
    events = AuditEvent.objects.filter(team=team, verb="support.staff_viewed", actor=staff)
    assert events.count() == 2
    # The team sees it in its activity log and on its support access page.
    owner = Client()
    owner.force_login(user)
    activity = owner.get(reverse("audit:activity", args=[team.slug])).content.decode()
    assert "support.staff_viewed" in activity and staff.email in activity
    support_page = owner.get(reverse("support_access:list", args=[team.slug])).content.decode()
    assert run_url(team, run) in support_page and staff.email in support_page


def test_a_page_polled_again_is_logged_once(staff_client, team, user, run):
    grant(team, user)
    for _ in range(3):
        assert staff_client.get(run_url(team, run)).status_code == 200
    assert StaffAccess.objects.count() == 1


def test_a_read_grant_allows_no_change(staff_client, staff, team, user, run):
    grant(team, user, "read")
    response = staff_client.post(run_url(team, run, "runs:cancel"))
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.cancel_requested_at is None
    with pytest.raises(NotAllowed):
        action_services.action_update(action=run.action, actor=staff, script="echo changed")
    assert not StaffAccess.objects.filter(kind="change").exists()


def test_a_fix_grant_lets_staff_change_an_action_through_the_page_logged_as_a_change(
    staff_client, staff, team, user, run
):
    grant(team, user, "fix")
    action = run.action
    edit = reverse("actions:edit", args=[team.slug, action.pk])
    assert staff_client.get(edit).status_code == 200
    response = staff_client.post(
        edit,
        {
            "name": "Backup",
            "description": "",
            "script": "echo fixed by support",
            "run_as": "",
            "timeout_seconds": "300",
            "concurrency": "10",
            "failure_limit": "",
            "default_tags": "",
            "params-TOTAL_FORMS": "0",
            "params-INITIAL_FORMS": "0",
            "params-MIN_NUM_FORMS": "0",
            "params-MAX_NUM_FORMS": "50",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Action.objects.get(pk=action.pk).script == "echo fixed by support"
    change = StaffAccess.objects.get(kind="change")
    assert (change.method, change.path, change.staff_id) == ("POST", edit, staff.pk)
    assert AuditEvent.objects.filter(team=team, verb="action.updated", actor=staff).exists()
    assert AuditEvent.objects.filter(team=team, verb="support.staff_changed").exists()


def test_a_fix_grant_reaches_automation_only(staff_client, staff, team, user):
    grant(team, user, "fix")
    members = reverse("teams:members", args=[team.slug])
    assert staff_client.get(members).status_code == 200
    response = staff_client.post(members, {"email": "spy@example.com", "role": "admin"})
    assert response.status_code == 403
    settings_page = reverse("teams:settings", args=[team.slug])
    assert staff_client.post(settings_page, {"name": "Renamed"}).status_code == 403
    team.refresh_from_db()
    assert team.name == "Analytical Engines"
    assert not Membership.objects.filter(team=team, user=staff).exists()
    # Staff cannot extend their own access either.
    page = reverse("support_access:list", args=[team.slug])
    response = staff_client.post(page, {"scope": "fix", "days": "7", "reason": "more time"})
    assert response.status_code == 403
    assert SupportGrant.objects.count() == 1


def test_a_real_member_who_is_staff_is_not_logged(team, make_member):
    colleague = make_member(Role.VIEWER, is_staff=True)
    client = Client()
    client.force_login(colleague)
    assert client.get(reverse("teams:detail", args=[team.slug])).status_code == 200
    assert not StaffAccess.objects.exists()


# --- revocation, expiry --------------------------------------------------------------


def test_after_revocation_staff_get_403_saying_so(staff_client, team, user, run):
    active = grant(team, user)
    assert staff_client.get(run_url(team, run)).status_code == 200

    support_access.support_grant_revoke(grant=active, actor=user)

    response = staff_client.get(run_url(team, run))
    assert response.status_code == 403
    html = response.content.decode()
    assert "revoked Pipetower" in html
    assert OUTPUT_MARKER not in html


def test_an_expired_grant_gives_403(staff_client, team, user, run):
    active = grant(team, user)
    SupportGrant.objects.filter(pk=active.pk).update(expires_at=timezone.now())
    response = staff_client.get(run_url(team, run))
    assert response.status_code == 403
    assert "expired" in response.content.decode()


def test_revoking_twice_or_after_expiry_is_refused(team, user):
    active = grant(team, user)
    support_access.support_grant_revoke(grant=active, actor=user)
    with pytest.raises(Conflict, match="already revoked"):
        support_access.support_grant_revoke(grant=active, actor=user)
    expired = grant(team, user)
    SupportGrant.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    with pytest.raises(Conflict, match="already expired"):
        support_access.support_grant_revoke(grant=expired, actor=user)


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_cannot_grant_or_revoke(team, user, make_member, role):
    member = make_member(role)
    with pytest.raises(NotAllowed, match="Only team owners and admins"):
        grant(team, member)
    active = grant(team, user)
    with pytest.raises(NotAllowed):
        support_access.support_grant_revoke(grant=active, actor=member)
    assert SupportGrant.objects.get().revoked_at is None


def test_an_admin_may_grant(team, make_member):
    admin = make_member(Role.ADMIN)
    assert grant(team, admin, "fix", days=7).is_active()


def test_staff_cannot_grant_themselves_access(team, staff):
    with pytest.raises(NotAllowed, match="not a member"):
        grant(team, staff)


@pytest.mark.parametrize(
    ("scope", "reason", "duration", "field"),
    [
        ("read", "ticket #42", timedelta(days=7, seconds=1), "duration"),
        ("read", "ticket #42", timedelta(0), "duration"),
        ("write", "ticket #42", timedelta(days=1), "scope"),
        ("read", "  ", timedelta(days=1), "reason"),
        ("read", "x" * 301, timedelta(days=1), "reason"),
    ],
)
def test_bad_grants_are_refused_with_a_reason(team, user, scope, reason, duration, field):
    with pytest.raises(ServiceError) as refused:
        support_access.support_grant_create(
            team=team, actor=user, scope=scope, reason=reason, duration=duration
        )
    assert refused.value.field == field
    assert not SupportGrant.objects.exists()


def test_the_page_shows_why_a_grant_longer_than_7_days_is_refused(owner_client, team):
    page = reverse("support_access:list", args=[team.slug])
    response = owner_client.post(page, {"scope": "read", "days": "8", "reason": "ticket #42"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Support access lasts at most 7 days." in html
    assert 'value="ticket #42"' in html  # nothing the person typed is lost
    assert not SupportGrant.objects.exists()


def test_a_viewer_sees_the_page_but_no_grant_form_and_cannot_post(client, team, make_member):
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)
    page = reverse("support_access:list", args=[team.slug])
    html = client.get(page).content.decode()
    assert "Pipetower staff have no access to this team." in html
    assert "Grant access" not in html
    response = client.post(page, {"scope": "read", "days": "1", "reason": "ticket #42"})
    assert response.status_code == 403
    assert not SupportGrant.objects.exists()


def test_the_owner_grants_and_revokes_from_the_page(owner_client, team, user):
    page = reverse("support_access:list", args=[team.slug])
    response = owner_client.post(page, {"scope": "fix", "days": "3", "reason": "ticket #42"})
    assert response.status_code == 302
    active = SupportGrant.objects.get()
    assert (active.scope, active.reason, active.granted_by_id) == ("fix", "ticket #42", user.pk)
    assert timedelta(days=3) - (active.expires_at - active.created_at) < timedelta(seconds=1)
    assert AuditEvent.objects.filter(team=team, verb="support.granted").exists()
    listing = owner_client.get(page).content.decode()
    assert "ticket #42" in listing and "Revoke" in listing

    revoke = reverse("support_access:revoke", args=[team.slug, active.pk])
    assert owner_client.post(revoke).status_code == 302
    active.refresh_from_db()
    assert active.revoked_at is not None and active.revoked_by_id == user.pk
    assert AuditEvent.objects.filter(team=team, verb="support.revoked").exists()


# --- the summary email -----------------------------------------------------------------


def test_revoking_mails_the_owners_what_staff_did(
    staff_client, staff, team, user, run, make_member, django_capture_on_commit_callbacks
):
    make_member(Role.ADMIN, email="admin@example.com")
    active = grant(team, user)
    staff_client.get(run_url(team, run))

    with django_capture_on_commit_callbacks(execute=True):
        support_access.support_grant_revoke(grant=active, actor=user)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]  # the owners only
    assert "What Pipetower staff did in Analytical Engines" in message.subject
    assert staff.email in message.body and run_url(team, run) in message.body
    assert "1 page view" in message.body
    active.refresh_from_db()
    assert active.summary_sent_at is not None
    assert not support_access.support_grant_summary_send(grant_id=active.pk)  # once only


def test_the_scheduler_summarises_expired_grants_once(
    team, user, django_capture_on_commit_callbacks
):
    expired = grant(team, user)
    still_active = grant(team, user)
    SupportGrant.objects.filter(pk=expired.pk).update(expires_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert support_access.support_grants_summarise() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert support_access.support_grants_summarise() == 0

    assert len(mail.outbox) == 1
    assert "did not open anything" in mail.outbox[0].body
    still_active.refresh_from_db()
    assert still_active.summary_sent_at is None


def test_erasing_a_staff_member_keeps_the_teams_log_but_not_who(
    staff_client, staff, team, user, run
):
    from pipetower.privacy.deletion import account_erase

    grant(team, user)
    staff_client.get(run_url(team, run))
    account_erase(user=staff)

    access = StaffAccess.objects.get()
    assert (access.staff_id, access.staff_label, access.path) == (None, "", run_url(team, run))
