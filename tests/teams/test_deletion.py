"""An owner deletes a team: typed name, re-authentication, a grace period in which
the team is frozen and can be cancelled, then the scheduled purge erases it all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.actions.models import OutputChunk, Run, RunStatus, RunTarget
from pipetower.actions.services import run_start
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.models import DataKey
from pipetower.privacy import deletion
from pipetower.privacy.retention import privacy_purge
from pipetower.servers.models import Server, TeamSshKey
from pipetower.servers.services import team_ssh_key_ensure
from pipetower.teams import services
from pipetower.teams.models import Invitation, Membership, Role, Team
from tests.accounts.mfa.helpers import reauthenticate
from tests.actions.conftest import pinned_server
from tests.privacy.helpers import populate

pytestmark = pytest.mark.django_db

NAME = "Analytical Engines"


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Any]], Any]:
    def run(call: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


def _schedule(team: Team, actor: User, name: str = NAME) -> Team:
    return services.team_deletion_schedule(team=team, actor=actor, confirm_name=name)


# --- the page -------------------------------------------------------------------


def test_the_delete_page_asks_to_reauthenticate_first(owner_client: Client, team: Team) -> None:
    answer = owner_client.post(reverse("teams:delete", args=[team.slug]), {"confirm_name": NAME})
    assert answer.status_code == 302
    assert "reauthenticate" in answer["Location"]
    team.refresh_from_db()
    assert team.deletion_scheduled_for is None


def test_an_owner_schedules_the_deletion_and_every_member_is_mailed(
    client: Client,
    user: User,
    team: Team,
    make_member: Callable[..., User],
    settings: Any,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DELETION_GRACE_DAYS = 14
    viewer = make_member(Role.VIEWER, email="grace@example.com")
    client.force_login(user)
    reauthenticate(client)
    page = client.get(reverse("teams:delete", args=[team.slug]))
    assert page.status_code == 200
    assert 'name="confirm_name"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("teams:delete", args=[team.slug]), {"confirm_name": NAME})
    assert answer.status_code == 302
    team.refresh_from_db()
    assert team.deletion_scheduled_for is not None
    assert team.deletion_requested_at is not None
    assert team.deletion_scheduled_for - team.deletion_requested_at == timedelta(days=14)
    assert team.deletion_requested_by == user
    mailed = sorted(address for m in mailoutbox for address in m.to)
    assert mailed == sorted([user.email, viewer.email])
    assert all(len(m.to) == 1 for m in mailoutbox), "members do not see each other's addresses"
    assert all("will be deleted" in m.subject for m in mailoutbox)
    assert AuditEvent.objects.filter(team=team, verb="team.deletion_scheduled").exists()
    # The page now offers to cancel instead of the form.
    again = client.get(reverse("teams:delete", args=[team.slug]))
    assert b"Cancel the deletion" in again.content
    assert b'name="confirm_name"' not in again.content


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Type the team's name to confirm."),
        ("   ", "Type the team's name to confirm."),
        ("analytical engines", "That is not the team's name"),
        ("Analytical", "That is not the team's name"),
    ],
)
def test_a_wrong_name_is_shown_next_to_the_field_and_nothing_is_scheduled(
    owner_client: Client, team: Team, typed: str, message: str
) -> None:
    reauthenticate(owner_client)
    answer = owner_client.post(reverse("teams:delete", args=[team.slug]), {"confirm_name": typed})
    assert answer.status_code == 400
    body = answer.content.decode().replace("&#x27;", "'")
    assert message in body
    assert 'aria-invalid="true"' in body
    team.refresh_from_db()
    assert team.deletion_scheduled_for is None


def test_the_name_is_compared_after_trimming_spaces(owner_client: Client, team: Team) -> None:
    reauthenticate(owner_client)
    owner_client.post(reverse("teams:delete", args=[team.slug]), {"confirm_name": f"  {NAME} "})
    team.refresh_from_db()
    assert team.deletion_scheduled_for is not None


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.VIEWER])
def test_only_an_owner_may_delete_the_team(
    client: Client, team: Team, make_member: Callable[..., User], role: Role
) -> None:
    someone = make_member(role, email=f"{role.value}@example.com")
    with pytest.raises(NotAllowed, match="Only team owners can delete the team"):
        _schedule(team, someone)
    client.force_login(someone)
    reauthenticate(client)
    assert client.get(reverse("teams:delete", args=[team.slug])).status_code == 403
    answer = client.post(reverse("teams:delete", args=[team.slug]), {"confirm_name": NAME})
    assert answer.status_code == 403
    team.refresh_from_db()
    assert team.deletion_scheduled_for is None


def test_someone_outside_the_team_gets_not_found(client: Client, team: Team) -> None:
    stranger = User.objects.create_user(email="eve@example.com", password="x-long-password-1")
    with pytest.raises(NotAllowed, match="not a member"):
        _schedule(team, stranger)
    client.force_login(stranger)
    assert client.get(reverse("teams:delete", args=[team.slug])).status_code == 404


def test_the_settings_page_offers_deletion_to_owners_only(
    owner_client: Client, client: Client, team: Team, make_member: Callable[..., User]
) -> None:
    delete_url = reverse("teams:delete", args=[team.slug]).encode()
    assert delete_url in owner_client.get(reverse("teams:settings", args=[team.slug])).content
    admin = make_member(Role.ADMIN, email="admin@example.com")
    other = Client()
    other.force_login(admin)
    assert delete_url not in other.get(reverse("teams:settings", args=[team.slug])).content


def test_a_team_already_scheduled_cannot_be_scheduled_again(
    team: Team, user: User, make_member: Callable[..., User]
) -> None:
    _schedule(team, user)
    second_owner = make_member(Role.OWNER, email="second@example.com")
    with pytest.raises(Conflict, match="already scheduled for deletion"):
        _schedule(team, second_owner)
    assert AuditEvent.objects.filter(verb="team.deletion_scheduled").count() == 1


# --- the grace period -----------------------------------------------------------


def test_members_see_a_banner_with_the_date_and_owners_a_way_to_cancel(
    owner_client: Client, team: Team, user: User, make_member: Callable[..., User]
) -> None:
    team = _schedule(team, user)
    day = timezone.localtime(team.deletion_scheduled_for).strftime("%-d %B %Y")
    page = owner_client.get(reverse("teams:detail", args=[team.slug])).content.decode()
    assert f"will be deleted on {day}" in page
    assert reverse("teams:delete", args=[team.slug]) in page
    viewer = make_member(Role.VIEWER, email="grace@example.com")
    other = Client()
    other.force_login(viewer)
    seen = other.get(reverse("servers:list", args=[team.slug])).content.decode()
    assert f"will be deleted on {day}" in seen
    assert "An owner can cancel the deletion." in seen


def test_no_banner_while_nothing_is_scheduled(owner_client: Client, team: Team) -> None:
    page = owner_client.get(reverse("teams:detail", args=[team.slug])).content
    assert b"team-deletion-banner" not in page


def test_a_frozen_team_starts_no_runs_until_the_deletion_is_cancelled(
    team: Team, user: User
) -> None:
    from pipetower.actions.models import Action

    team_ssh_key_ensure(team=team)
    server = pinned_server(team, "web-1", 1)
    action = Action.objects.create(team=team, name="Uptime", script="uptime", created_by=user)
    _schedule(team, user)
    with pytest.raises(Conflict, match=r"scheduled for deletion .* no runs start") as refused:
        run_start(action=action, actor=user, server_ids=[server.pk])
    assert refused.value.code == "team_frozen"
    assert not Run.objects.exists()
    services.team_deletion_cancel(team=team, actor=user)
    assert run_start(action=action, actor=user, server_ids=[server.pk]).pk


def test_the_run_form_says_why_nothing_starts(owner_client: Client, team: Team, user: User) -> None:
    from pipetower.actions.models import Action

    team_ssh_key_ensure(team=team)
    server = pinned_server(team, "web-1", 1)
    action = Action.objects.create(team=team, name="Uptime", script="uptime", created_by=user)
    _schedule(team, user)
    answer = owner_client.post(
        reverse("actions:run", args=[team.slug, action.pk]), {"servers": [server.pk]}
    )
    assert "no runs start" in answer.content.decode()
    assert not Run.objects.exists()


def test_an_owner_cancels_and_members_are_told(
    owner_client: Client,
    team: Team,
    user: User,
    make_member: Callable[..., User],
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_member(Role.OPERATOR, email="op@example.com")
    _schedule(team, user)
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_client.post(reverse("teams:delete_cancel", args=[team.slug]))
    assert answer.status_code == 302
    team.refresh_from_db()
    assert team.deletion_scheduled_for is None
    assert team.deletion_requested_by is None
    assert sorted(m.to[0] for m in mailoutbox) == ["ada@example.com", "op@example.com"]
    assert all("will not be deleted" in m.subject for m in mailoutbox)
    assert AuditEvent.objects.filter(team=team, verb="team.deletion_cancelled").exists()
    assert deletion.team_deletions_purge(now=timezone.now() + timedelta(days=365)) == 0
    assert Team.objects.filter(pk=team.pk).exists()


def test_cancelling_twice_is_refused(owner_client: Client, team: Team, user: User) -> None:
    _schedule(team, user)
    services.team_deletion_cancel(team=team, actor=user)
    with pytest.raises(Conflict, match="not scheduled for deletion"):
        services.team_deletion_cancel(team=team, actor=user)
    answer = owner_client.post(reverse("teams:delete_cancel", args=[team.slug]), follow=True)
    assert "not scheduled for deletion, so there is nothing to cancel" in answer.content.decode()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.VIEWER])
def test_only_an_owner_may_cancel(
    client: Client, team: Team, user: User, make_member: Callable[..., User], role: Role
) -> None:
    someone = make_member(role, email=f"{role.value}@example.com")
    _schedule(team, user)
    with pytest.raises(NotAllowed, match="Only team owners can cancel"):
        services.team_deletion_cancel(team=team, actor=someone)
    client.force_login(someone)
    assert client.post(reverse("teams:delete_cancel", args=[team.slug])).status_code == 403
    team.refresh_from_db()
    assert team.deletion_scheduled_for is not None


def test_the_api_shows_when_the_team_will_be_deleted(
    client: Client, team: Team, user: User
) -> None:
    from pipetower.api.services import api_token_create

    _, secret = api_token_create(user=user, name="read", scope="read")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    before = client.get(f"/api/v1/teams/{team.slug}", **headers).json()
    assert before["deletion_scheduled_for"] is None
    team = _schedule(team, user)
    after = client.get(f"/api/v1/teams/{team.slug}", **headers).json()
    assert after["deletion_scheduled_for"].startswith(
        team.deletion_scheduled_for.date().isoformat()
    )


# --- the purge ------------------------------------------------------------------


def test_the_purge_erases_the_team_with_everything_the_data_map_gives_it(
    team: Team,
    user: User,
    make_member: Callable[..., User],
    mailoutbox: list[Any],
    commit: Callable[[Callable[[], Any]], Any],
) -> None:
    viewer = make_member(Role.VIEWER, email="grace@example.com")
    made = populate(user, team)
    team_ssh_key_ensure(team=team)
    target = RunTarget.objects.create(run=made["run"], server=made["server"], server_name="web-1")
    OutputChunk.objects.create(run_target=target, seq=1, stream="stdout", data="ok")
    commit(
        lambda: services.invitation_create(
            team=team, actor=user, email="new@example.com", role=Role.VIEWER
        )
    )
    key_id = team.encryption_key().pk
    other = Team.objects.create(name="Other", slug="other")
    Membership.objects.create(team=other, user=viewer, role=Role.OWNER)
    team = commit(lambda: _schedule(team, user))
    mailoutbox.clear()

    assert (
        deletion.team_deletions_purge(now=team.deletion_scheduled_for - timedelta(minutes=1)) == 0
    )
    assert Team.objects.filter(pk=team.pk).exists()
    assert commit(lambda: deletion.team_deletions_purge(now=team.deletion_scheduled_for)) == 1

    assert not Team.objects.filter(pk=team.pk).exists()
    for model in (Server, TeamSshKey, Run, RunTarget, OutputChunk, Invitation):
        assert (
            not model.objects.filter(pk__isnull=False)
            .exclude(**({"team": other} if hasattr(model, "team") else {}))
            .exists()
        ), model.__name__
    assert not Membership.objects.filter(team_id=team.pk).exists()
    assert not AuditEvent.objects.filter(team_id=team.pk).exists()
    # Everything the data map declares as this team's content is gone.
    assert _team_content_left(team.pk) == {}
    assert not DataKey.objects.filter(pk=key_id, destroyed_at__isnull=True).exists()
    # People keep their accounts and other teams.
    assert User.objects.filter(pk__in=[user.pk, viewer.pk]).count() == 2
    assert Membership.objects.filter(team=other, user=viewer).exists()
    # What is left of it names no team: only that a team was erased, and counts.
    erased = AuditEvent.objects.get(verb="team.erased")
    assert erased.team_id is None
    assert NAME not in str(erased.data) + erased.target_label
    assert sorted(m.to[0] for m in mailoutbox) == ["ada@example.com", "grace@example.com"]
    assert all("has been deleted" in m.subject for m in mailoutbox)


def _team_content_left(team_id: int) -> dict[str, int]:
    """Rows of every model the data map gives a team (its `team` path), for one team."""
    from django.apps import apps

    from pipetower.privacy.datamap import DATA_MAP

    left = {}
    for decl in DATA_MAP:
        if decl.team is None:
            continue
        model = apps.get_model(decl.model)
        path = f"{decl.team}__pk" if decl.team else "pk"
        if count := model._default_manager.filter(**{path: team_id}).count():
            left[decl.model] = count
    return left


def test_the_data_map_check_finds_team_content_left_behind(team: Team, user: User) -> None:
    """The twin of the purge test's data map check: it sees content that is still there."""
    populate(user, team)
    left = _team_content_left(team.pk)
    assert {"teams.Team", "servers.Server", "actions.Action", "actions.Run"} <= set(left)


def test_the_purge_waits_for_runs_in_progress(team: Team, user: User) -> None:
    made = populate(user, team)
    Run.objects.filter(pk=made["run"].pk).update(status=RunStatus.RUNNING)
    team = _schedule(team, user)
    assert deletion.team_deletions_purge(now=team.deletion_scheduled_for) == 0
    Run.objects.filter(pk=made["run"].pk).update(status=RunStatus.SUCCEEDED)
    assert deletion.team_deletions_purge(now=team.deletion_scheduled_for) == 1


def test_the_scheduled_job_and_the_privacy_purge_command_erase_due_teams(
    team: Team, user: User
) -> None:
    from pipetower.privacy.tasks import account_deletions_purge_task

    past = timezone.now() - timedelta(days=30)
    services.team_deletion_schedule(team=team, actor=user, confirm_name=NAME, now=past)
    assert account_deletions_purge_task() == 1
    assert not Team.objects.filter(pk=team.pk).exists()
    second = services.team_create(user=user, name="Second")
    services.team_deletion_schedule(team=second, actor=user, confirm_name="Second", now=past)
    assert privacy_purge()["teams erased"] == 1
    assert not Team.objects.filter(pk=second.pk).exists()


def test_an_account_deleted_with_a_team_it_owns_alone_takes_the_team_the_same_way(
    team: Team, user: User
) -> None:
    """Account deletion and team deletion erase a team through one function."""
    populate(user, team)
    key_id = team.encryption_key().pk
    deletion.account_erase(user=user)
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Server.objects.exists()
    assert not DataKey.objects.filter(pk=key_id, destroyed_at__isnull=True).exists()


def test_the_confirmation_check_is_the_services(team: Team) -> None:
    assert services.team_confirmation_refusal(team=team, typed=NAME) is None
    refusal = services.team_confirmation_refusal(team=team, typed="nope")
    assert isinstance(refusal, ServiceError) and refusal.field == "confirm_name"


def test_with_two_factor_on_deleting_the_team_also_needs_a_current_code(
    client: Client, user: User, team: Team
) -> None:
    from tests.accounts.mfa.helpers import fresh_period, give_totp, totp_code

    secret = give_totp(user)
    client.force_login(user)
    reauthenticate(client)
    url = reverse("teams:delete", args=[team.slug])
    assert b'name="code"' in client.get(url).content

    wrong = client.post(url, {"confirm_name": NAME, "code": "000000"})
    assert wrong.status_code == 400
    assert b"That code is not correct" in wrong.content
    assert b'aria-invalid="true"' in wrong.content
    missing = client.post(url, {"confirm_name": NAME})
    assert missing.status_code == 400
    team.refresh_from_db()
    assert team.deletion_scheduled_for is None

    fresh_period()
    right = client.post(url, {"confirm_name": NAME, "code": totp_code(secret)})
    assert right.status_code == 302
    team.refresh_from_db()
    assert team.deletion_scheduled_for is not None
