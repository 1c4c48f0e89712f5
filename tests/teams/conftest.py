from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.teams import services
from pipetower.teams.models import Invitation, Role, Team

LINK = re.compile(r"/teams/join/([A-Za-z0-9_-]+)/")

Invite = Callable[..., tuple[Invitation, str]]


def token_in(message: object) -> str:
    """The invitation token in an email's link."""
    match = LINK.search(message.body)  # type: ignore[attr-defined]
    assert match, "no invitation link in the email"
    return match.group(1)


@pytest.fixture
def invite(team: Team, user: User, django_capture_on_commit_callbacks, mailoutbox) -> Invite:
    """Invite someone through the real service and read the token from the email."""

    def make(
        email: str = "grace@example.com",
        role: Role = Role.OPERATOR,
        *,
        to: Team | None = None,
        by: User | None = None,
    ) -> tuple[Invitation, str]:
        with django_capture_on_commit_callbacks(execute=True):
            invitation = services.invitation_create(
                team=to or team, actor=by or user, email=email, role=role
            )
        return invitation, token_in(mailoutbox[-1])

    return make


def expire(invitation: Invitation, *, ago: timedelta = timedelta(minutes=1)) -> None:
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - ago)
    invitation.refresh_from_db()
