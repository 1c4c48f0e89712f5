"""How invitations meet sign-up and sign-in.

The account adapter asks two questions here (`signup_allowed`,
`pending_invitation_url`); the join page remembers the invitation in the
session; and a `user_signed_up` receiver (connected in `TeamsConfig.ready`)
accepts the invitation when someone signs up with the invited address, so the
invitee signs up through the link and lands in the team.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.urls import reverse

from pipetower.teams.models import Invitation, Role
from pipetower.teams.selectors import invitation_find_by_token

logger = logging.getLogger(__name__)

INVITATION_SESSION_KEY = "pipetower_invitation_token"


def _session_token(request: HttpRequest) -> str | None:
    token = request.session.get(INVITATION_SESSION_KEY)
    return token if isinstance(token, str) and token else None


def _session_invitation(request: HttpRequest) -> tuple[str, Invitation] | None:
    token = _session_token(request)
    if token is None:
        return None
    invitation = invitation_find_by_token(token=token)
    return (token, invitation) if invitation is not None else None


def remember_invitation(request: HttpRequest, *, token: str, invitation: Invitation) -> None:
    """Keep the invitation for a visitor who has to sign up or sign in first.

    The invited address is stashed as verified: the visitor proved they read
    mail sent to it by opening the link, so signing up with it needs no second
    verification email.
    """
    from allauth.account.adapter import get_adapter

    request.session[INVITATION_SESSION_KEY] = token
    get_adapter(request).stash_verified_email(request, invitation.email)


def forget_invitation(request: HttpRequest) -> None:
    request.session.pop(INVITATION_SESSION_KEY, None)


def signup_allowed(request: HttpRequest) -> bool:
    """Whether this visitor may sign up, given `PIPETOWER_SIGNUP`.

    open: anyone; closed: nobody; invite: only with a pending, valid invitation
    remembered in the session (they opened an invitation link first).
    """
    if settings.SIGNUP_MODE == "open":
        return True
    if settings.SIGNUP_MODE == "closed":
        return False
    found = _session_invitation(request)
    return found is not None and found[1].is_pending


def pending_invitation_url(request: HttpRequest) -> str | None:
    """Where to send someone who just signed in or up with an invitation pending.

    The join page while the remembered invitation is pending; the team's page
    when it was just accepted by this user (on sign-up); otherwise None, and the
    stale token is forgotten.
    """
    found = _session_invitation(request)
    if found is None:
        forget_invitation(request)
        return None
    token, invitation = found
    if invitation.is_pending:
        return reverse("teams:join", kwargs={"token": token})
    forget_invitation(request)
    user = getattr(request, "user", None)
    if (
        invitation.accepted_by_id is not None
        and getattr(user, "is_authenticated", False)
        and invitation.accepted_by_id == getattr(user, "pk", None)
    ):
        return reverse("teams:detail", kwargs={"team_slug": invitation.team.slug})
    return None


def accept_invitation_on_signup(
    sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any
) -> None:
    """`user_signed_up` receiver: join the invited team when the new account's
    address is the invited one. Any other address keeps the invitation pending,
    for the join page's Accept button. Never breaks the sign-up."""
    from pipetower.core.errors import ServiceError
    from pipetower.teams.services import invitation_accept

    if request is None or user is None or not hasattr(request, "session"):
        return
    found = _session_invitation(request)
    if found is None:
        return
    token, invitation = found
    if not invitation.is_pending or (user.email or "").lower() != invitation.email.lower():
        return
    try:
        membership = invitation_accept(token=token, user=user, request=request)
    except ServiceError as exc:
        logger.info("Invitation %s not accepted on sign-up: %s", invitation.pk, exc.message)
        return
    messages.success(
        request,
        f"Welcome to {membership.team.name}. You joined as {Role(membership.role).label.lower()}.",
        fail_silently=True,
    )
