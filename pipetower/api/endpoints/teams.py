"""`/teams/...`: teams, members, invitations and the audit trail.

Every team is resolved through the teams selectors: a missing team and
someone else's team are both 404; a member whose role is too low gets 403.
The writes are the same services the pages call, so the rules live there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from pydantic import ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.pagination import Page, PageParams, paginate
from pipetower.api.schemas import (
    AuditEventOut,
    InvitationCreateIn,
    InvitationOut,
    MemberOut,
    MemberUpdateIn,
    TeamCreateIn,
    TeamOut,
    TeamRetentionIn,
    TeamRetentionOut,
    TeamUpdateIn,
)
from pipetower.audit.selectors import audit_events_for_team
from pipetower.core import query
from pipetower.core.errors import NotAllowed
from pipetower.teams import retention
from pipetower.teams import services as team_services
from pipetower.teams.models import Membership, Role, Team
from pipetower.teams.selectors import (
    invitation_get,
    member_get,
    membership_get,
    memberships_for_user,
    team_get_for_user,
    team_members,
    team_open_invitations,
)

router = Router(tags=["teams"])


def _team_out(team: Team, role: str) -> dict[str, Any]:
    return {
        "slug": team.slug,
        "name": team.name,
        "role": role,
        "created_at": team.created_at,
        "deletion_scheduled_for": team.deletion_scheduled_for,
    }


def _membership(request: HttpRequest, slug: str, role: Role = Role.VIEWER) -> Membership:
    """The caller's membership of the team: 404 if none, 403 if below `role`."""
    membership = membership_get(user=principal(request).user, team_slug=slug)
    if not membership.role_enum.at_least(role):
        raise PermissionDenied(f"This needs the {role.label} role or higher.")
    return membership


# --- teams -------------------------------------------------------------------
@router.get(
    "/teams",
    response=with_errors({200: Page[TeamOut]}, 400, 401, 404, 422, 429),
    operation_id="teams_list",
)
def team_list(request: HttpRequest, pagination: Query[PageParams]) -> dict[str, Any]:
    """The teams you belong to, by name, with your role in each."""
    caller = principal(request)
    memberships = memberships_for_user(user=caller.user)
    if caller.team_id is not None:
        memberships = memberships.filter(team_id=caller.team_id)
    return paginate(request, memberships, pagination, transform=lambda m: _team_out(m.team, m.role))


@router.post(
    "/teams",
    response=with_errors({201: TeamOut}, 400, 401, 403, 409, 422, 429),
    operation_id="teams_create",
)
def team_create(request: HttpRequest, payload: TeamCreateIn) -> Status[dict[str, Any]]:
    """Create a team. You become its owner. Needs a token for all your teams."""
    caller = principal(request)
    if caller.team_id is not None:
        raise NotAllowed(
            "This token is limited to one team. Creating a team needs a token for all your teams.",
            code="token_team_scope",
        )
    team = team_services.team_create(
        user=principal(request).user, name=payload.name, request=request
    )
    return Status(201, _team_out(team, Role.OWNER))


@router.get(
    "/teams/{slug}",
    response=with_errors({200: TeamOut}, 400, 401, 404, 429),
    operation_id="teams_get",
)
def team_get(request: HttpRequest, slug: str) -> dict[str, Any]:
    """One team, with your role in it."""
    membership = _membership(request, slug)
    return _team_out(membership.team, membership.role)


@router.patch(
    "/teams/{slug}",
    response=with_errors({200: TeamOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="teams_update",
)
def team_update(request: HttpRequest, slug: str, payload: TeamUpdateIn) -> dict[str, Any]:
    """Rename the team (owners and admins)."""
    caller = principal(request)
    membership = _membership(request, slug, Role.ADMIN)
    team = team_services.team_update(
        team=membership.team, actor=caller.user, name=payload.name, request=request
    )
    return _team_out(team, membership.role)


def _retention_out(team: Team) -> dict[str, Any]:
    return {
        "run_retention_days": team.run_retention_days,
        "output_limit_mb": retention.team_output_limit_mb(team),
        "kept": [vars(row) for row in retention.team_retention_rows(team=team)],
    }


@router.get(
    "/teams/{slug}/retention",
    response=with_errors({200: TeamRetentionOut}, 400, 401, 404, 429),
    operation_id="teams_retention_get",
)
def team_retention_get(request: HttpRequest, slug: str) -> dict[str, Any]:
    """How long the team keeps run history and how much output, and everything
    else it keeps, as the team's settings page shows it."""
    return _retention_out(_membership(request, slug).team)


@router.patch(
    "/teams/{slug}/retention",
    response=with_errors({200: TeamRetentionOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="teams_retention_update",
)
def team_retention_update(
    request: HttpRequest, slug: str, payload: TeamRetentionIn
) -> dict[str, Any]:
    """Change how long finished runs are kept and how much output per server
    (owners and admins). A field left out keeps its value. Shorter periods take
    effect at the next hourly purge."""
    caller = principal(request)
    team = _membership(request, slug, Role.ADMIN).team
    team = team_services.team_retention_set(
        team=team,
        actor=caller.user,
        run_retention_days=(
            team.run_retention_days
            if payload.run_retention_days is None
            else payload.run_retention_days
        ),
        output_limit_mb=(
            retention.team_output_limit_mb(team)
            if payload.output_limit_mb is None
            else payload.output_limit_mb
        ),
        request=request,
    )
    return _retention_out(team)


# --- members -----------------------------------------------------------------
@router.get(
    "/teams/{slug}/members",
    response=with_errors({200: Page[MemberOut]}, 400, 401, 404, 422, 429),
    operation_id="members_list",
)
def member_list(request: HttpRequest, slug: str, pagination: Query[PageParams]) -> dict[str, Any]:
    """The team's members, owners first, then by name."""
    team = team_get_for_user(user=principal(request).user, team_slug=slug)
    return paginate(request, team_members(team=team), pagination)


@router.patch(
    "/teams/{slug}/members/{member_id}",
    response=with_errors({200: MemberOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="members_update",
)
def member_update(
    request: HttpRequest, slug: str, member_id: int, payload: MemberUpdateIn
) -> Membership:
    """Change a member's role (owners and admins; only owners grant or change owner)."""
    caller = principal(request)
    team = team_get_for_user(user=caller.user, team_slug=slug)
    target = member_get(team=team, membership_id=member_id)
    team_services.membership_change_role(
        membership=target, actor=caller.user, role=Role(payload.role), request=request
    )
    return member_get(team=team, membership_id=member_id)


@router.delete(
    "/teams/{slug}/members/{member_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 409, 429),
    operation_id="members_remove",
)
def member_remove(request: HttpRequest, slug: str, member_id: int) -> Status[None]:
    """Remove a member (owners and admins). Your own membership: leave the team (any role)."""
    caller = principal(request)
    team = team_get_for_user(user=caller.user, team_slug=slug)
    target = member_get(team=team, membership_id=member_id)
    if target.user_id == caller.user.pk:
        team_services.team_leave(team=team, user=caller.user, request=request)
    else:
        team_services.membership_remove(membership=target, actor=caller.user, request=request)
    return Status(204, None)


# --- invitations -------------------------------------------------------------
@router.get(
    "/teams/{slug}/invitations",
    response=with_errors({200: Page[InvitationOut]}, 400, 401, 403, 404, 422, 429),
    operation_id="invitations_list",
)
def invitation_list(
    request: HttpRequest, slug: str, pagination: Query[PageParams]
) -> dict[str, Any]:
    """Invitations not yet accepted or revoked, newest first (owners and admins)."""
    team = team_get_for_user(user=principal(request).user, team_slug=slug, role=Role.ADMIN)
    return paginate(request, team_open_invitations(team=team), pagination)


@router.post(
    "/teams/{slug}/invitations",
    response=with_errors({201: InvitationOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="invitations_create",
)
def invitation_create(request: HttpRequest, slug: str, payload: InvitationCreateIn) -> Status[Any]:
    """Invite someone by email. They get a single-use link that expires."""
    caller = principal(request)
    team = team_get_for_user(user=caller.user, team_slug=slug, role=Role.ADMIN)
    invitation = team_services.invitation_create(
        team=team, actor=caller.user, email=payload.email, role=Role(payload.role), request=request
    )
    return Status(201, invitation)


@router.post(
    "/teams/{slug}/invitations/{invitation_id}/resend",
    response=with_errors({200: InvitationOut}, 400, 401, 403, 404, 409, 410, 429),
    operation_id="invitations_resend",
)
def invitation_resend(request: HttpRequest, slug: str, invitation_id: int) -> Any:
    """Send the invitation again with a fresh link and expiry."""
    caller = principal(request)
    team = team_get_for_user(user=caller.user, team_slug=slug, role=Role.ADMIN)
    invitation = invitation_get(team=team, invitation_id=invitation_id)
    return team_services.invitation_resend(
        invitation=invitation, actor=caller.user, request=request
    )


@router.delete(
    "/teams/{slug}/invitations/{invitation_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 409, 429),
    operation_id="invitations_revoke",
)
def invitation_revoke(request: HttpRequest, slug: str, invitation_id: int) -> Status[None]:
    """Revoke an invitation; its link stops working."""
    caller = principal(request)
    team = team_get_for_user(user=caller.user, team_slug=slug, role=Role.ADMIN)
    invitation = invitation_get(team=team, invitation_id=invitation_id)
    team_services.invitation_revoke(invitation=invitation, actor=caller.user, request=request)
    return Status(204, None)


# --- audit -------------------------------------------------------------------


class AuditFilters(Schema):
    verb: str | None = Field(None, max_length=64, description="Exact verb, e.g. member.removed.")
    actor_id: int | None = Field(None, ge=1, description="Only events by this user id.")
    since: datetime | date | None = Field(
        None, description="From this instant (ISO 8601) or, for a date, the start of that day."
    )
    until: datetime | date | None = Field(
        None, description="Up to this instant (ISO 8601) or, for a date, the end of that day."
    )

    @field_validator("since", "until", mode="before")
    @classmethod
    def _date_or_instant(cls, value: Any, info: ValidationInfo) -> Any:
        """A bare date means that whole day; anything else must be an ISO 8601 instant
        (parsed once for pages and API alike: pipetower/core/query.py)."""
        if not isinstance(value, str) or not value.strip():
            return value or None
        try:
            return query.instant(value, name=str(info.field_name))
        except query.BadQuery as exc:
            raise PydanticCustomError("date_or_datetime", exc.message) from None


def _aware(value: datetime | date | None) -> datetime | date | None:
    """Instants without a time zone are UTC."""
    if isinstance(value, datetime) and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


@router.get(
    "/teams/{slug}/audit-events",
    response=with_errors({200: Page[AuditEventOut]}, 400, 401, 404, 422, 429),
    operation_id="audit_events_list",
)
def audit_event_list(
    request: HttpRequest,
    slug: str,
    filters: Query[AuditFilters],
    pagination: Query[PageParams],
) -> dict[str, Any]:
    """Who did what in the team, newest first. `since` and `until` are inclusive;
    times without a zone are UTC."""
    team = team_get_for_user(user=principal(request).user, team_slug=slug)
    events = audit_events_for_team(
        team=team,
        actor_id=filters.actor_id,
        verb=filters.verb or None,
        since=_aware(filters.since),
        until=_aware(filters.until),
    )
    return paginate(request, events, pagination)
