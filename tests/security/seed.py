"""Team A with one of everything, team B beside it, and one user per role.

Every name team A's objects carry contains a marker string, so a test can tell
whether any of team A leaked into a response meant for someone else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from pipetower.actions import schedules as action_schedules
from pipetower.actions import services as action_services
from pipetower.actions import webhooks as action_webhooks
from pipetower.actions.models import Action, OutputChunk, Run, RunTarget, Schedule, Webhook
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.notifications import services as notification_services
from pipetower.notifications.models import NotificationRule
from pipetower.privacy.models import ExportJob, SupportGrant
from pipetower.privacy.support_access import support_grant_create, support_grant_revoke
from pipetower.servers.models import Server
from pipetower.servers.services import team_ssh_key_ensure
from pipetower.teams import services as team_services
from pipetower.teams.models import Invitation, Role, Team
from tests.factories import TeamFactory, UserFactory, member

ANY_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKo2Ovs1Tc2Jh9bNqXuO2rqXgA2ReFdWR2mH0TJ2bqPM"

MARKERS = (
    "Zanzibar Alpha Team",
    "zanzibar-server-host",
    "zanzibar-action",
    "zanzibar-script-body",
    "zanzibar-output-line",
    "zanzibar-invitee",
    "zanzibar-owner",
    "zanzibar-token",
    "zanzibar-schedule",
    "zanzibar-webhook",
    "zanzibar-notification",
)
SERVER_PASSWORD = "Zq-server-password-5b1c9e"
SECRET_DEFAULT = "Zq-secret-default-77aa01"


@dataclass
class Seed:
    team: Team
    other_team: Team
    users: dict[str, Any]
    server: Server
    action: Action
    run: Run
    target: RunTarget
    invitation: Invitation
    token: ApiToken
    grant: SupportGrant
    schedule: Schedule
    webhook: Webhook
    notification: NotificationRule
    tokens: dict[str, str] = field(default_factory=dict)
    export: ExportJob | None = None  # team A's owner's data export
    clients: dict[str, Any] = field(default_factory=dict)  # signed-in test clients by caller

    @property
    def url_values(self) -> dict[str, Any]:
        """Values for every URL parameter name a route about team A can take."""
        subject = self.team.memberships.get(user=self.users["subject"])
        return {
            "team_slug": self.team.slug,
            "slug": self.team.slug,
            "server_id": self.server.pk,
            "action_id": self.action.pk,
            "run_id": self.run.pk,
            "target_id": self.target.pk,
            "membership_id": subject.pk,
            "member_id": subject.pk,
            "invitation_id": self.invitation.pk,
            "token_id": self.token.pk,
            "grant_id": self.grant.pk,
            "schedule_id": self.schedule.pk,
            "webhook_id": self.webhook.pk,
            "export_id": self.export.pk if self.export else 0,
            "rule_id": self.notification.pk,
            "n": 1,  # the action's first version
        }


def seed() -> Seed:
    owner = UserFactory(email="zanzibar-owner@example.com", name="zanzibar-owner Person")
    team = TeamFactory(name=MARKERS[0], slug="alpha")
    team.memberships.create(user=owner, role=Role.OWNER)
    users: dict[str, Any] = {"owner": owner}
    for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER):
        users[str(role)] = member(team, role)
    other_team = TeamFactory(name="Beta Team", slug="beta")
    # The member whom member routes act on: never a caller, so removing or
    # demoting them is a write about someone else, not leaving the team.
    users["subject"] = member(team, Role.VIEWER)
    users["team_b"] = member(other_team, Role.OWNER)
    users["staff"] = UserFactory(is_staff=True)

    team_ssh_key_ensure(team=team)
    server = Server(
        team=team,
        name="zanzibar-server-host",
        host="127.0.0.1",
        port=1,
        username="zanzibar-server-host",
        host_keys=ANY_HOST_KEY,
        host_key_pinned_at=timezone.now(),
    )
    server.password = SERVER_PASSWORD
    server.save()
    action = action_services.action_create(
        team=team, actor=owner, name="zanzibar-action", script="echo zanzibar-script-body"
    )
    run = Run.objects.create(
        team=team,
        action=action,
        action_name=action.name,
        script=action.script,
        timeout_seconds=60,
        concurrency=1,
        status="failed",
        started_by=owner,
        finished_at=timezone.now(),
    )
    target = RunTarget.objects.create(
        run=run, server=server, server_name=server.name, status="failed", exit_code=1, last_seq=1
    )
    OutputChunk.objects.create(
        run_target=target, seq=1, stream="stdout", data="zanzibar-output-line\n"
    )
    invitation = team_services.invitation_create(
        team=team, actor=owner, email="zanzibar-invitee@example.com", role=Role.OPERATOR
    )
    token, _ = api_token_create(user=owner, name="zanzibar-token", scope=ApiToken.Scope.WRITE)
    # A grant that was given and revoked: staff stay outside (403 from then on), and
    # the revoke route has a grant to name.
    grant = support_grant_create(
        team=team,
        actor=owner,
        scope=SupportGrant.Scope.READ,
        duration=timedelta(days=1),
        reason="Ticket 7",
    )
    support_grant_revoke(grant=grant, actor=owner)
    schedule = action_schedules.schedule_create(
        action=action,
        actor=owner,
        name="zanzibar-schedule",
        cron_expression="30 2 * * *",
        server_ids=[server.pk],
    )
    webhook, _ = action_webhooks.webhook_create(
        action=action, actor=owner, name="zanzibar-webhook", server_ids=[server.pk]
    )
    notification, _ = notification_services.notification_rule_create(
        team=team,
        actor=owner,
        name="zanzibar-notification",
        channel="webhook",
        url="https://hooks.example.com/zanzibar-notification",
        action=action,
    )
    result = Seed(
        team,
        other_team,
        users,
        server,
        action,
        run,
        target,
        invitation,
        token,
        grant,
        schedule,
        webhook,
        notification,
        export=ExportJob.objects.create(user=owner, status=ExportJob.Status.FAILED),
    )
    for name, user in users.items():
        result.tokens[name] = api_token_create(
            user=user, name=f"matrix-{name}", scope=ApiToken.Scope.WRITE
        )[1]
    return result
