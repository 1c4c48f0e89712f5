"""Who may do what in a team: the role rules, written once.

Services call the `*_refusal` functions and raise what they return; pages call
the same functions to decide which controls to show, so a button is shown
exactly when pressing it would work. docs/teams.md has the table in words.

Also here: `@team_view(...)`, which resolves the team once per request, and
the team's two-factor requirement (`two_factor_refusal`), which the pages and
the API both ask.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.teams.models import ROLE_RANK, Membership, Role, Team
from pipetower.teams.selectors import membership_get

View = Callable[..., HttpResponse]

MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


def can_manage_members(role: Role | str) -> bool:
    """Owners and admins manage members and invitations; operators and viewers do not."""
    return Role(role).at_least(Role.ADMIN)


def grantable_roles(role: Role | str) -> list[Role]:
    """The roles someone with `role` may give by invitation or role change, highest first."""
    role = Role(role)
    if role == Role.OWNER:
        return [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.VIEWER]
    if role == Role.ADMIN:
        return [Role.ADMIN, Role.OPERATOR, Role.VIEWER]
    return []


def _manage_refusal(actor: Membership | None) -> NotAllowed | None:
    if actor is None:
        return NotAllowed("You are not a member of this team.")
    if not can_manage_members(actor.role):
        return NotAllowed(
            "Only team owners and admins can manage members and invitations. "
            f"Your role is {actor.role_enum.label}."
        )
    return None


def grant_refusal(actor: Membership | None, role: Role) -> NotAllowed | None:
    """Why `actor` may not invite someone as `role` (or resend/revoke such an invitation)."""
    if refusal := _manage_refusal(actor):
        return refusal
    assert actor is not None
    if role not in grantable_roles(actor.role):
        return NotAllowed(
            f"Only an owner can make someone {role.label.lower()}. "
            f"As {actor.role_enum.label.lower()} you can choose "
            + ", ".join(r.label.lower() for r in grantable_roles(actor.role))
            + "."
        )
    return None


def role_change_refusal(
    actor: Membership | None, target: Membership, role: Role, owner_count: int
) -> ServiceError | None:
    """Why `actor` may not give `target` the role `role`; None when it is allowed.

    `owner_count` is the number of owners the team has now.
    """
    if actor is not None and actor.pk == target.pk and ROLE_RANK[role] > ROLE_RANK[target.role]:
        return NotAllowed("You cannot raise your own role. Ask an owner to do it.")
    if refusal := _manage_refusal(actor):
        return refusal
    assert actor is not None
    if target.role == Role.OWNER and actor.role != Role.OWNER:
        return NotAllowed("Only an owner can change an owner's role.")
    if refusal := grant_refusal(actor, role):
        return refusal
    if target.role == Role.OWNER and role != Role.OWNER and owner_count <= 1:
        return Conflict(
            f"{target.user} is the last owner of this team. Make someone else an owner first."
        )
    return None


def removal_refusal(
    actor: Membership | None, target: Membership, owner_count: int
) -> ServiceError | None:
    """Why `actor` may not remove `target` from the team; None when it is allowed."""
    if refusal := _manage_refusal(actor):
        return refusal
    assert actor is not None
    if target.role == Role.OWNER and actor.role != Role.OWNER:
        return NotAllowed("Only an owner can remove an owner.")
    if target.role == Role.OWNER and owner_count <= 1:
        return Conflict(
            f"{target.user} is the last owner of this team and cannot be removed. "
            "Make someone else an owner first."
        )
    return None


def leave_refusal(membership: Membership, owner_count: int) -> ServiceError | None:
    """Why this member may not leave the team; None when they may."""
    if membership.role == Role.OWNER and owner_count <= 1:
        return Conflict(
            "You are the last owner of this team. Make someone else an owner before you leave."
        )
    return None


def _day(moment: Any) -> str:
    from django.utils import timezone
    from django.utils.dateformat import format as date_format

    return date_format(timezone.localtime(moment), "j F Y")


def team_settings_refusal(actor: Membership | None) -> NotAllowed | None:
    """Why `actor` may not change the team's settings (name, retention); None when they may."""
    if actor is None:
        return NotAllowed("You are not a member of this team.")
    if not actor.role_enum.at_least(Role.ADMIN):
        return NotAllowed(
            "Only team owners and admins can change the team's settings. "
            f"Your role is {actor.role_enum.label}."
        )
    return None


def team_deletion_refusal(actor: Membership | None, team: Team) -> ServiceError | None:
    """Why `actor` may not schedule `team`'s deletion; None when they may."""
    if actor is None:
        return NotAllowed("You are not a member of this team.")
    if actor.role != Role.OWNER:
        return NotAllowed(
            f"Only team owners can delete the team. Your role is {actor.role_enum.label}."
        )
    if team.deletion_scheduled_for is not None:
        return Conflict(
            f"{team.name} is already scheduled for deletion on {_day(team.deletion_scheduled_for)}."
        )
    return None


def team_deletion_cancel_refusal(actor: Membership | None, team: Team) -> ServiceError | None:
    """Why `actor` may not cancel `team`'s scheduled deletion; None when they may."""
    if actor is None:
        return NotAllowed("You are not a member of this team.")
    if actor.role != Role.OWNER:
        return NotAllowed(
            "Only team owners can cancel the team's deletion. "
            f"Your role is {actor.role_enum.label}."
        )
    if team.deletion_scheduled_for is None:
        return Conflict(
            f"{team.name} is not scheduled for deletion, so there is nothing to cancel."
        )
    return None


def team_frozen_refusal(team: Team) -> Conflict | None:
    """Why nothing may start in `team`: it is scheduled for deletion. None otherwise."""
    if team.deletion_scheduled_for is None:
        return None
    return Conflict(
        f"{team.name} is scheduled for deletion on {_day(team.deletion_scheduled_for)}, "
        "so no runs start. An owner can cancel the deletion in the team's settings.",
        code="team_frozen",
    )


class TwoFactorRequired(NotAllowed):
    """The team requires two-factor authentication and this member has none."""

    code = "two_factor_required"


def two_factor_refusal(*, team: Team, user: Any) -> TwoFactorRequired | None:
    """Why `user` may not see `team` yet: it requires two-factor authentication
    and they have not set it up. None when they may."""
    if not team.require_2fa:
        return None
    from pipetower.accounts.mfa import has_two_factor

    if has_two_factor(user):
        return None
    return TwoFactorRequired(
        f"{team.name} requires two-factor authentication. Set it up for your account "
        "(an authenticator app or a security key) under Account, Two-factor; "
        "then this works again."
    )


def api_two_factor_check(request: HttpRequest, user: Any) -> None:
    """For the API: refuse a request for a team (`/teams/{slug}/...`) that requires
    two-factor authentication, from a member without it. Raises TwoFactorRequired."""
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match is not None else None
    if not slug or not getattr(user, "is_authenticated", False):
        return
    membership = (
        Membership.objects.select_related("team")
        .filter(user=user, team__slug=slug, team__require_2fa=True)
        .first()
    )
    if membership is not None and (refusal := two_factor_refusal(team=membership.team, user=user)):
        raise refusal


def team_view(
    roles: dict[str, Role] | None = None, *, allow_without_2fa: bool = False
) -> Callable[[View], View]:
    """Decorate a view taking `team_slug`: sets `request.team` and `request.membership`.

    `roles` maps HTTP methods to the least role they need; GET/HEAD default to
    viewer, other methods to admin. A missing team and a team the user is not a
    member of both answer 404; a member whose role is too low gets 403. A member
    without two-factor authentication, in a team that requires it, gets a page
    that says how to set it up (403) unless `allow_without_2fa` (leaving the team).
    """
    needed = {"GET": Role.VIEWER, "HEAD": Role.VIEWER, **(roles or {})}

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, team_slug: str, *args: Any, **kwargs: Any) -> Any:
            try:
                membership = membership_get(user=request.user, team_slug=team_slug)
            except Http404:
                # Pipetower staff outside the team: only under the team's support
                # grant, logged and shown to the team (privacy.support_access).
                from pipetower.privacy.support_access import StaffRefused, staff_membership

                try:
                    membership = staff_membership(request=request, team_slug=team_slug)
                except StaffRefused as refused:
                    return render(
                        request,
                        "core/error.html",
                        {"code": 403, "title": "No support access", "message": refused.message},
                        status=403,
                    )
            if not allow_without_2fa and (
                refusal := two_factor_refusal(team=membership.team, user=request.user)
            ):
                return render(
                    request,
                    "teams/two_factor_required.html",
                    {"team": membership.team, "message": refusal.message},
                    status=403,
                )
            role = needed.get(request.method or "GET", Role.ADMIN)
            if not membership.role_enum.at_least(role):
                raise PermissionDenied(f"This needs the {role.label} role or higher.")
            request.team = membership.team  # type: ignore[attr-defined]
            request.membership = membership  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
