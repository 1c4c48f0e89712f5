"""Reads of team-owned data. Every lookup checks membership and answers 404 for
missing and forbidden alike, so nobody can learn what exists in another team."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from pipetower.teams.models import Invitation, Membership, Role, Team


def teams_for_user(*, user: Any) -> QuerySet[Team]:
    if not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user: Any, team_slug: str) -> Membership:
    """The user's membership of the team with this slug, or 404."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such team.")
    try:
        return Membership.objects.select_related("team").get(team__slug=team_slug, user=user)
    except Membership.DoesNotExist:
        raise Http404("No such team.") from None


def team_get_for_user(*, user: Any, team_slug: str, role: Role = Role.VIEWER) -> Team:
    """The team, if the user is a member with at least `role`.

    Missing team or no membership: 404. Member with a lower role: PermissionDenied.
    """
    from django.core.exceptions import PermissionDenied

    membership = membership_get(user=user, team_slug=team_slug)
    if not membership.role_enum.at_least(role):
        raise PermissionDenied(f"This needs the {role.label} role or higher.")
    return membership.team


def member_get(*, team: Team, membership_id: int) -> Membership:
    try:
        return Membership.objects.select_related("user", "team").get(team=team, pk=membership_id)
    except (Membership.DoesNotExist, ValueError):
        raise Http404("No such member.") from None


def invitation_get(*, team: Team, invitation_id: int) -> Invitation:
    try:
        return Invitation.objects.select_related("team").get(team=team, pk=invitation_id)
    except (Invitation.DoesNotExist, ValueError):
        raise Http404("No such invitation.") from None
