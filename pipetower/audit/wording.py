"""Audit events in words: "pinned the host key of web-1", with a link to web-1.

One table for the activity page, its filter menu and the CSV download. A verb
without a phrase here is shown as itself, so a new event is never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from pipetower.audit.models import AuditEvent

PHRASES: dict[str, str] = {
    "team.created": "created the team",
    "team.renamed": "renamed the team to",
    "team.deletion_scheduled": "scheduled the deletion of the team",
    "team.deletion_cancelled": "cancelled the deletion of the team",
    "team.retention_changed": "changed how long the team keeps runs and output",
    "member.left": "left the team",
    "member.removed": "removed a member:",
    "member.role_changed": "changed the role of",
    "invitation.created": "invited",
    "invitation.resent": "sent the invitation again to",
    "invitation.revoked": "withdrew the invitation of",
    "invitation.accepted": "joined through the invitation of",
    "server.created": "added the server",
    "server.updated": "changed the server",
    "server.deleted": "deleted the server",
    "server.host_key_pinned": "pinned the host key of",
    "server.host_key_repinned": "re-pinned the changed host key of",
    "server.settings_changed": "changed the server settings",
    "server.team_key_created": "created the team's SSH key",
    "server.team_key_rotated": "finished rotating the team's SSH key",
    "server.team_key_rotation_started": "started rotating the team's SSH key",
    "server.team_key_rotation_cancelled": "cancelled the team's SSH key rotation",
    "action.created": "created the action",
    "action.updated": "changed the action",
    "action.deleted": "deleted the action",
    "action.version_restored": "restored an earlier version of",
    "run.started": "started",
    "run.cancelled": "cancelled",
    "run.targets_lost": "lost contact with servers in",
    "notification.created": "created the notification rule",
    "notification.updated": "changed the notification rule",
    "notification.deleted": "deleted the notification rule",
    "notification.secret_regenerated": "made a new signing secret for the notification rule",
    "notification.test_sent": "sent a test notification through",
}

# Verbs whose words already name what changed.
_NO_TARGET = {
    "team.created",
    "team.deletion_scheduled",
    "team.deletion_cancelled",
    "team.retention_changed",
    "server.settings_changed",
    "member.left",
}

# Where a target lives, by its model; deleted targets are not linked.
_TARGET_URLS = {
    "servers.server": ("servers:detail", "server_id"),
    "actions.action": ("actions:detail", "action_id"),
    "actions.run": ("runs:detail", "run_id"),
    "notifications.notificationrule": ("notifications:detail", "rule_id"),
    "teams.team": ("teams:detail", None),
    "teams.membership": ("teams:members", None),
    "teams.invitation": ("teams:members", None),
}


def phrase(verb: str) -> str:
    return PHRASES.get(verb, verb)


def verb_choices(verbs: list[str]) -> list[tuple[str, str]]:
    """The filter menu: each verb in words, sorted by the words."""
    return sorted(
        ((verb, phrase(verb).rstrip(" :").capitalize()) for verb in verbs),
        key=lambda choice: choice[1],
    )


@dataclass(frozen=True)
class Described:
    event: AuditEvent
    text: str
    target: str
    url: str


def describe(event: AuditEvent, *, team_slug: str) -> Described:
    url = ""
    where = _TARGET_URLS.get(event.target_type)
    if where and event.target_id and not event.verb.endswith(".deleted"):
        name, kwarg = where
        kwargs = {"team_slug": team_slug}
        if kwarg:
            kwargs[kwarg] = event.target_id
        try:
            url = reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            url = ""
    target = event.target_label
    if event.target_type == "teams.invitation" and target.startswith("invitation of "):
        target = target.removeprefix("invitation of ").rsplit(" to ", 1)[0]
    if event.verb in {"run.started", "run.cancelled"} and event.target_id:
        target = f"run #{event.target_id}"
    if event.verb in _NO_TARGET or event.verb.startswith("server.team_key"):
        target = ""
    return Described(event=event, text=phrase(event.verb), target=target, url=url)
