"""`/teams/{slug}/notifications`: the API of notification rules and their delivery log.

Every member reads (a webhook URL is whole only for owners and admins, null
for the rest: such URLs are often credentials); owners and admins write. The
writes are the services the pages call, so the rules and messages are the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.pagination import Page, PageParams, paginate
from pipetower.api.schemas import Input
from pipetower.notifications import services
from pipetower.notifications.models import NotificationDelivery, NotificationRule
from pipetower.teams.models import Membership, Role
from pipetower.teams.selectors import membership_get

router = Router(tags=["notifications"])

ChannelName = Literal["email", "webhook"]
WhenName = Literal["failure", "success", "always", "back_to_normal"]
RecipientsName = Literal["creator", "owner", "admin", "operator", "viewer"]
FormatName = Literal["json", "slack"]


class NotificationRuleIn(Input):
    name: str = Field(..., min_length=1, max_length=100)
    action_id: int | None = Field(None, description="The action; null for every action.")
    when: WhenName = "failure"
    channel: ChannelName
    recipients: RecipientsName | None = Field(
        None,
        description="Email rules: the rule's creator, or members with at least this role. "
        "Defaults to admin.",
    )
    url: str | None = Field(None, description="Webhook rules: where to POST.")
    format: FormatName | None = Field(None, description="Webhook rules; defaults to json.")
    enabled: bool = True


class NotificationRulePatchIn(Input):
    name: str | None = Field(None, min_length=1, max_length=100)
    action_id: int | None = Field(None, description="null: every action.")
    when: WhenName | None = None
    channel: ChannelName | None = None
    recipients: RecipientsName | None = None
    url: str | None = None
    format: FormatName | None = None
    enabled: bool | None = None


class NotificationRuleOut(Schema):
    id: int
    name: str
    action_id: int | None
    action_name: str | None
    when: WhenName
    channel: ChannelName
    recipients: RecipientsName | None
    url: str | None = Field(
        ..., description="Webhook rules, for owners and admins; null for others (a credential)."
    )
    format: FormatName | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class NotificationRuleSecretOut(NotificationRuleOut):
    secret: str | None = Field(
        ...,
        description="A webhook rule's new signing secret: in this answer once, never again; "
        "null when none was made.",
    )


class NotificationDeliveryOut(Schema):
    id: int
    run_id: int | None
    event: Literal["failed", "succeeded", "cancelled", "back_to_normal", "test"]
    attempt: int
    outcome: Literal["delivered", "retrying", "failed"]
    status_code: int | None = Field(..., description="The receiver's HTTP status, if it answered.")
    message: str
    next_retry_at: datetime | None
    created_at: datetime


class QueuedOut(Schema):
    queued: bool


def _membership(request: HttpRequest, slug: str, role: Role = Role.VIEWER) -> Membership:
    membership = membership_get(user=principal(request).user, team_slug=slug)
    if not membership.role_enum.at_least(role):
        raise PermissionDenied(f"This needs the {role.label} role or higher.")
    return membership


def _manages(membership: Membership) -> bool:
    return membership.role_enum.at_least(Role.ADMIN)


def _rule_out(
    rule: NotificationRule, *, show_url: bool, secret: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.pk,
        "name": rule.name,
        "action_id": rule.action_id,
        "action_name": rule.action.name if rule.action_id and rule.action else None,
        "when": rule.when,
        "channel": rule.channel,
        "recipients": rule.recipients or None,
        "url": (rule.url if show_url else None) if rule.is_webhook else None,
        "format": rule.format or None,
        "enabled": rule.enabled,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }
    if secret is not None:
        out["secret"] = secret or None
    return out


def _delivery_out(row: NotificationDelivery) -> dict[str, Any]:
    return {
        "id": row.pk,
        "run_id": row.run_id,
        "event": row.event,
        "attempt": row.attempt,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "message": row.message,
        "next_retry_at": row.next_retry_at,
        "created_at": row.created_at,
    }


@router.get(
    "/teams/{slug}/notifications",
    response=with_errors({200: Page[NotificationRuleOut]}, 401, 404, 422, 429),
    operation_id="notifications_list",
)
def notifications_list(
    request: HttpRequest, slug: str, pagination: Query[PageParams]
) -> dict[str, Any]:
    """The team's notification rules, by name."""
    membership = _membership(request, slug)
    show = _manages(membership)
    return paginate(
        request,
        services.rules_for_team(team=membership.team),
        pagination,
        transform=lambda rule: _rule_out(rule, show_url=show),
    )


@router.post(
    "/teams/{slug}/notifications",
    response=with_errors({201: NotificationRuleSecretOut}),
    operation_id="notifications_create",
)
def notifications_create(request: HttpRequest, slug: str, payload: NotificationRuleIn) -> Status:
    """Make a rule (owners and admins). A webhook rule's answer carries its signing
    secret, once. A URL on a forbidden address answers 400 with the reason."""
    team = _membership(request, slug, Role.ADMIN).team
    rule, secret = services.notification_rule_create(
        team=team,
        actor=principal(request).user,
        name=payload.name,
        channel=payload.channel,
        when=payload.when,
        action=payload.action_id,
        enabled=payload.enabled,
        recipients=payload.recipients or "",
        url=payload.url or "",
        format=payload.format or "",
        request=request,
    )
    return Status(201, _rule_out(rule, show_url=True, secret=secret))


@router.get(
    "/teams/{slug}/notifications/{rule_id}",
    response=with_errors({200: NotificationRuleOut}, 401, 404, 429),
    operation_id="notifications_get",
)
def notifications_get(request: HttpRequest, slug: str, rule_id: int) -> dict[str, Any]:
    """One rule (never its secret)."""
    membership = _membership(request, slug)
    rule = services.rule_get(team=membership.team, rule_id=rule_id)
    return _rule_out(rule, show_url=_manages(membership))


@router.patch(
    "/teams/{slug}/notifications/{rule_id}",
    response=with_errors({200: NotificationRuleSecretOut}),
    operation_id="notifications_update",
)
def notifications_update(
    request: HttpRequest, slug: str, rule_id: int, payload: NotificationRulePatchIn
) -> dict[str, Any]:
    """Change some fields (owners and admins). A rule that becomes a webhook rule
    gets a signing secret, in this answer once."""
    team = _membership(request, slug, Role.ADMIN).team
    rule = services.rule_get(team=team, rule_id=rule_id)
    given = payload.model_dump(exclude_unset=True)
    changes = {k: v for k, v in given.items() if k != "action_id" and v is not None}
    if "action_id" in given:
        changes["action"] = given["action_id"]
    rule, secret = services.notification_rule_update(
        rule=rule, actor=principal(request).user, request=request, **changes
    )
    return _rule_out(rule, show_url=True, secret=secret)


@router.delete(
    "/teams/{slug}/notifications/{rule_id}",
    response=with_errors({204: None}),
    operation_id="notifications_delete",
)
def notifications_delete(request: HttpRequest, slug: str, rule_id: int) -> Status:
    """Delete a rule with its delivery log (owners and admins)."""
    team = _membership(request, slug, Role.ADMIN).team
    rule = services.rule_get(team=team, rule_id=rule_id)
    services.notification_rule_delete(rule=rule, actor=principal(request).user, request=request)
    return Status(204, None)


@router.post(
    "/teams/{slug}/notifications/{rule_id}/test",
    response=with_errors({202: QueuedOut}),
    operation_id="notifications_test",
)
def notifications_test(request: HttpRequest, slug: str, rule_id: int) -> Status:
    """Send a test notification through the rule (owners and admins); its result
    appears in the delivery log."""
    team = _membership(request, slug, Role.ADMIN).team
    rule = services.rule_get(team=team, rule_id=rule_id)
    services.notification_test_send(rule=rule, actor=principal(request).user, request=request)
    return Status(202, {"queued": True})


@router.post(
    "/teams/{slug}/notifications/{rule_id}/secret",
    response=with_errors({200: NotificationRuleSecretOut}),
    operation_id="notifications_secret",
)
def notifications_secret(request: HttpRequest, slug: str, rule_id: int) -> dict[str, Any]:
    """A new signing secret for a webhook rule (owners and admins), shown once; 409
    for an email rule."""
    team = _membership(request, slug, Role.ADMIN).team
    rule = services.rule_get(team=team, rule_id=rule_id)
    rule, secret = services.notification_rule_secret_regenerate(
        rule=rule, actor=principal(request).user, request=request
    )
    return _rule_out(rule, show_url=True, secret=secret)


@router.get(
    "/teams/{slug}/notifications/{rule_id}/deliveries",
    response=with_errors({200: Page[NotificationDeliveryOut]}, 401, 404, 422, 429),
    operation_id="notification_deliveries_list",
)
def notification_deliveries_list(
    request: HttpRequest, slug: str, rule_id: int, pagination: Query[PageParams]
) -> dict[str, Any]:
    """The rule's delivery log, newest first: one row per attempt."""
    team = _membership(request, slug).team
    rule = services.rule_get(team=team, rule_id=rule_id)
    return paginate(
        request, services.deliveries_for_rule(rule=rule), pagination, transform=_delivery_out
    )
