"""Writes for notification rules, the reads pages and API share, and the run hook.

Who may: team owners and admins create, change, delete rules and send a test;
every member sees the rules and their delivery log (a webhook's URL only for
those who manage it: Slack-style URLs are credentials).

When a run reaches a final state, `run_finished_notify` (called from the run's
recount, inside its transaction) queues one task through the outbox if any
enabled rule could match; the task (`delivery.run_notify`) picks the rules and
delivers.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from pipetower.actions.models import Action, Run
from pipetower.actions.services import role_refusal
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue
from pipetower.notifications import guard
from pipetower.notifications.models import (
    Channel,
    Event,
    Format,
    NotificationDelivery,
    NotificationRule,
    Recipients,
    When,
)
from pipetower.teams.models import Role, Team

NAME_MAX = 100
DELIVERIES_PER_PAGE = 25


# --- reads ---------------------------------------------------------------------------


def rules_for_team(*, team: Team, action: Action | None = None) -> QuerySet[NotificationRule]:
    rules = NotificationRule.objects.filter(team=team).select_related("action")
    if action is not None:
        rules = rules.filter(Q(action=action) | Q(action__isnull=True))
    return rules.order_by("name", "id")


def rule_get(*, team: Team, rule_id: Any) -> NotificationRule:
    """The team's rule, or 404 for a missing one and another team's alike."""
    try:
        number = int(rule_id)
    except (TypeError, ValueError):
        raise Http404("No such notification rule.") from None
    rule = NotificationRule.objects.filter(team=team, pk=number).select_related("action").first()
    if rule is None:
        raise Http404("No such notification rule.")
    return rule


def deliveries_for_rule(*, rule: NotificationRule) -> QuerySet[NotificationDelivery]:
    return rule.deliveries.order_by("-created_at", "-id")


def rule_refusal(*, team: Team, user: Any) -> NotAllowed | None:
    """Why `user` may not create, change, delete or test the team's notification rules."""
    return role_refusal(team=team, actor=user, role=Role.ADMIN, doing="manage notifications")


def url_shown(url: str, *, can_manage: bool) -> str:
    """A webhook URL for display: whole for those who manage rules, else only its host."""
    if can_manage or not url:
        return url
    try:
        target = guard.parse(url)
    except ValueError:
        return "(hidden)"
    return f"{target.scheme}://{target.host}/…"


# --- writes --------------------------------------------------------------------------


def _clean_name(value: Any) -> str:
    name = " ".join(str(value or "").split())
    if not name:
        raise ServiceError("Give the rule a name.", field="name")
    if len(name) > NAME_MAX:
        raise ServiceError(f"The name is too long (at most {NAME_MAX} characters).", field="name")
    return name


def _clean_choice(value: Any, choices: type[Any], field: str, what: str) -> str:
    value = str(value or "")
    if value not in choices.values:
        raise ServiceError(
            f"Choose {what}: " + ", ".join(str(label) for label in choices.labels) + ".",
            field=field,
        )
    return value


def _clean_action(team: Team, action: Any) -> Action | None:
    if action in (None, ""):
        return None
    if isinstance(action, Action):
        if action.team_id != team.pk:
            raise ServiceError("Choose one of this team's actions.", field="action")
        return action
    try:
        number = int(action)
    except (TypeError, ValueError):
        raise ServiceError("Choose one of this team's actions.", field="action") from None
    found = Action.objects.filter(team=team, pk=number).first()
    if found is None:
        raise ServiceError("Choose one of this team's actions.", field="action")
    return found


def _apply_channel(rule: NotificationRule, fields: dict[str, Any]) -> None:
    """Check and set the channel's own fields; the other channel's are emptied."""
    if rule.channel == Channel.EMAIL:
        rule.recipients = _clean_choice(
            fields.get("recipients") or rule.recipients or Recipients.ADMIN,
            Recipients,
            "recipients",
            "who gets the email",
        )
        rule.url, rule.format = "", ""
        return
    url = str(fields.get("url", rule.url) or "").strip()
    if refusal := guard.url_refusal(url):
        raise ServiceError(refusal, field="url", code="url_refused")
    rule.url = url
    rule.format = _clean_choice(
        fields.get("format") or rule.format or Format.JSON, Format, "format", "a format"
    )
    rule.recipients = ""


def _audit_data(rule: NotificationRule) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": rule.name,
        "action": rule.action.name if rule.action_id and rule.action else "all actions",
        "channel": rule.channel,
        "when": rule.when,
        "enabled": rule.enabled,
    }
    if rule.channel == Channel.EMAIL:
        data["recipients"] = rule.recipients
    else:
        data["host"] = guard.parse(rule.url).host  # never the whole URL: it may be a credential
        data["format"] = rule.format
    return data


def _refuse(team: Team, actor: Any) -> None:
    if refusal := rule_refusal(team=team, user=actor):
        raise refusal


def notification_rule_create(
    *,
    team: Team,
    actor: Any,
    name: str,
    channel: str,
    when: str = When.FAILURE,
    action: Action | int | None = None,
    enabled: bool = True,
    recipients: str = "",
    url: str = "",
    format: str = "",
    request: HttpRequest | None = None,
) -> tuple[NotificationRule, str]:
    """A new rule. Returns it and, for a webhook rule, its signing secret (shown once;
    "" for an email rule)."""
    _refuse(team, actor)
    rule = NotificationRule(
        team=team,
        name=_clean_name(name),
        channel=_clean_choice(channel, Channel, "channel", "how to notify"),
        when=_clean_choice(when, When, "when", "when to notify"),
        action=_clean_action(team, action),
        enabled=bool(enabled),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _apply_channel(rule, {"recipients": recipients, "url": url, "format": format})
    secret = secrets.token_urlsafe(32) if rule.is_webhook else ""
    rule.secret = secret
    try:
        with transaction.atomic():
            rule.save()
            audit_record(
                actor=actor,
                team=team,
                verb="notification.created",
                target=rule,
                request=request,
                data=_audit_data(rule),
            )
    except IntegrityError:
        raise Conflict(
            f"This team already has a notification rule named {rule.name!r}.", field="name"
        ) from None
    return rule, secret


UPDATABLE = frozenset(
    {"name", "channel", "when", "action", "enabled", "recipients", "url", "format"}
)


def _lock(rule: NotificationRule) -> NotificationRule:
    locked = (
        NotificationRule.objects.select_for_update(of=("self",))
        .select_related("team", "action")
        .filter(pk=rule.pk)
        .first()
    )
    if locked is None:
        raise Conflict("This notification rule has been deleted.")
    return locked


def notification_rule_update(
    *, rule: NotificationRule, actor: Any, request: HttpRequest | None = None, **changes: Any
) -> tuple[NotificationRule, str]:
    """Change some of the rule's fields; the rest stay. Returns the rule and, when it
    has just become a webhook rule, its new secret (shown once; "" otherwise)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ServiceError(f"Unknown field {sorted(unknown)[0]}.")
    secret = ""
    with transaction.atomic():
        locked = _lock(rule)
        _refuse(locked.team, actor)
        before = _audit_data(locked)
        if "name" in changes:
            locked.name = _clean_name(changes["name"])
        if "channel" in changes:
            locked.channel = _clean_choice(changes["channel"], Channel, "channel", "how to notify")
        if "when" in changes:
            locked.when = _clean_choice(changes["when"], When, "when", "when to notify")
        if "action" in changes:
            locked.action = _clean_action(locked.team, changes["action"])
        if "enabled" in changes:
            locked.enabled = bool(changes["enabled"])
        _apply_channel(locked, changes)
        if locked.is_webhook and not locked.secret:
            secret = secrets.token_urlsafe(32)
            locked.secret = secret
        elif not locked.is_webhook:
            locked.secret = ""
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise Conflict(
                f"This team already has a notification rule named {locked.name!r}.", field="name"
            ) from None
        after = _audit_data(locked)
        if after != before or secret:
            audit_record(
                actor=actor,
                team=locked.team,
                verb="notification.updated",
                target=locked,
                request=request,
                data={"from": before, "to": after},
            )
    return locked, secret


def notification_rule_secret_regenerate(
    *, rule: NotificationRule, actor: Any, request: HttpRequest | None = None
) -> tuple[NotificationRule, str]:
    """A new signing secret for a webhook rule (returned, shown once); the old one
    signs nothing from now on."""
    with transaction.atomic():
        locked = _lock(rule)
        _refuse(locked.team, actor)
        if not locked.is_webhook:
            raise Conflict("Only webhook rules have a signing secret.")
        secret = secrets.token_urlsafe(32)
        locked.secret = secret
        locked.save(update_fields=["secret", "updated_at"])
        audit_record(
            actor=actor,
            team=locked.team,
            verb="notification.secret_regenerated",
            target=locked,
            request=request,
            data={"name": locked.name},
        )
    return locked, secret


def notification_rule_delete(
    *, rule: NotificationRule, actor: Any, request: HttpRequest | None = None
) -> None:
    """Delete the rule with its delivery log; deliveries waiting to be retried are dropped."""
    with transaction.atomic():
        locked = (
            NotificationRule.objects.select_related("team", "action").filter(pk=rule.pk).first()
        )
        if locked is None:
            return
        _refuse(locked.team, actor)
        audit_record(
            actor=actor,
            team=locked.team,
            verb="notification.deleted",
            target=locked,
            request=request,
            data=_audit_data(locked),
        )
        locked.delete()


def notification_test_send(
    *, rule: NotificationRule, actor: Any, request: HttpRequest | None = None
) -> None:
    """Queue a test notification through the rule (enabled or not); its result
    appears in the delivery log like any other."""
    from pipetower.notifications.tasks import notification_send_task

    with transaction.atomic():
        locked = _lock(rule)
        _refuse(locked.team, actor)
        audit_record(
            actor=actor,
            team=locked.team,
            verb="notification.test_sent",
            target=locked,
            request=request,
            data={"name": locked.name},
        )
        outbox_enqueue(
            notification_send_task,
            locked.pk,
            None,
            Event.TEST.value,
            1,
            subject=f"notifications.rule:{locked.pk}",
        )


# --- the run hook --------------------------------------------------------------------


def run_finished_notify(run_id: int) -> None:
    """Called once when a run reaches a final state, inside the transaction that
    records it: queue the notifications if any enabled rule could be about it."""
    from pipetower.notifications.tasks import notification_run_task

    run = Run.objects.filter(pk=run_id).values("team_id", "action_id").first()
    if run is None:
        return
    rules = NotificationRule.objects.filter(team_id=run["team_id"], enabled=True).filter(
        Q(action__isnull=True) | Q(action_id=run["action_id"])
    )
    if rules.exists():
        outbox_enqueue(notification_run_task, run_id, subject=f"notifications.run:{run_id}")
