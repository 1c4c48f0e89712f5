"""Reads of team-owned data. Every lookup checks membership and answers 404 for
missing and forbidden alike, so nobody can learn what exists in another team."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from pipetower.teams.models import ROLE_RANK, Invitation, Membership, Role, Team


def teams_for_user(*, user: Any) -> QuerySet[Team]:
    if not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name")


def memberships_for_user(*, user: Any) -> QuerySet[Membership]:
    """The user's memberships with their team and the team's member count (one query)."""
    if not getattr(user, "is_authenticated", False):
        return Membership.objects.none()
    return (
        Membership.objects.filter(user=user)
        .select_related("team")
        .annotate(member_count=Count("team__memberships"))
        .order_by("team__name", "team__pk")
    )


def membership_get(*, user: Any, team_slug: str) -> Membership:
    """The user's membership of the team with this slug, or 404."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such team.")
    try:
        return Membership.objects.select_related("team").get(team__slug=team_slug, user=user)
    except Membership.DoesNotExist:
        raise Http404("No such team.") from None


def membership_of(*, team: Team, user: Any) -> Membership | None:
    """The user's membership of `team`, or None. For services, which refuse rather than 404."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.select_related("user").filter(team=team, user=user).first()


def team_get_for_user(*, user: Any, team_slug: str, role: Role = Role.VIEWER) -> Team:
    """The team, if the user is a member with at least `role`.

    Missing team or no membership: 404. Member with a lower role: PermissionDenied.
    """
    from django.core.exceptions import PermissionDenied

    membership = membership_get(user=user, team_slug=team_slug)
    if not membership.role_enum.at_least(role):
        raise PermissionDenied(f"This needs the {role.label} role or higher.")
    return membership.team


def team_members(*, team: Team) -> list[Membership]:
    """The team's members with their user, owners first, then by name (one query)."""
    members = list(Membership.objects.filter(team=team).select_related("user"))
    members.sort(key=lambda m: (-ROLE_RANK[m.role], (m.user.name or m.user.email).lower()))
    return members


def team_owner_count(*, team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.OWNER).count()


def member_get(*, team: Team, membership_id: int) -> Membership:
    try:
        return Membership.objects.select_related("user", "team").get(team=team, pk=membership_id)
    except (Membership.DoesNotExist, ValueError):
        raise Http404("No such member.") from None


def team_open_invitations(*, team: Team) -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked: pending ones and expired ones (which
    can be resent), newest first, with who sent them."""
    return (
        Invitation.objects.filter(team=team, accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-sent_at", "-pk")
    )


def team_pending_invitation_exists(
    *, team: Team, email: str, exclude_pk: int | None = None
) -> bool:
    pending = Invitation.objects.filter(
        team=team,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    if exclude_pk is not None:
        pending = pending.exclude(pk=exclude_pk)
    return pending.exists()


def team_member_with_email_exists(*, team: Team, email: str) -> bool:
    """Whether a member of `team` signs in with, or has verified, this address."""
    return (
        Membership.objects.filter(team=team)
        .filter(
            Q(user__email__iexact=email)
            | Q(user__emailaddress__email__iexact=email, user__emailaddress__verified=True)
        )
        .exists()
    )


def invitation_get(*, team: Team, invitation_id: int) -> Invitation:
    try:
        return Invitation.objects.select_related("team").get(team=team, pk=invitation_id)
    except (Invitation.DoesNotExist, ValueError):
        raise Http404("No such invitation.") from None


def token_hash(token: str) -> str:
    """The SHA-256 stored in place of an invitation token."""
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_find_by_token(*, token: str) -> Invitation | None:
    """The invitation this token belongs to, in whatever state, or None.

    No state checks: `services.invitation_get_by_token` is the guarded read.
    """
    if not token:
        return None
    return (
        Invitation.objects.select_related("team", "invited_by")
        .filter(token_hash=token_hash(token))
        .first()
    )
