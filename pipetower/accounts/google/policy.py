"""Pipetower's rules for Google sign-in, called from the SocialAccountAdapter.

- Only the profile fields Pipetower uses are kept (`KEPT_CLAIMS`).
- An existing account is signed in (and the Google account linked to it) only
  when the address is verified by Google *and* confirmed in Pipetower.
- A Google sign-in whose verified address belongs to an account that never
  confirmed it is refused with a page that says so: the account may have been
  registered by someone else, waiting for the address's owner to arrive.
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from django.http import HttpRequest
from django.shortcuts import render

from pipetower.accounts.models import SignInEvent, User

logger = logging.getLogger(__name__)

# What Pipetower keeps of the ID token (SocialAccount.extra_data); docs/security.md lists them.
KEPT_CLAIMS = ("sub", "email", "email_verified", "name")


def kept_claims(claims: Any) -> dict[str, Any]:
    if not isinstance(claims, dict):
        return {}
    return {key: claims[key] for key in KEPT_CLAIMS if key in claims}


def verified_match(sociallogin: Any) -> tuple[Any, str] | None:
    """The account whose confirmed address is one Google verified, if any."""
    from allauth.socialaccount.adapter import get_adapter

    adapter = get_adapter()
    for address in sociallogin.email_addresses:
        if not address.verified or not adapter.can_authenticate_by_email(
            sociallogin, address.email
        ):
            continue
        local = (
            EmailAddress.objects.filter(email__iexact=address.email, verified=True)
            .select_related("user")
            .first()
        )
        if local is not None:
            return local.user, local.email
    return None


def refuse_unverified_local_account(request: HttpRequest, sociallogin: Any) -> None:
    if sociallogin.is_existing or sociallogin.state.get("process") == "connect":
        return
    for address in sociallogin.email_addresses:
        if not address.verified:
            continue  # allauth's own flow answers without revealing whether an account exists
        user = _unconfirmed_holder(address.email)
        if user is None:
            continue
        from pipetower.accounts.signins import signin_record

        signin_record(
            user=user,
            method=SignInEvent.Method.GOOGLE,
            outcome=SignInEvent.Outcome.FAILED,
            request=request,
            reason="Refused: the address is not confirmed in Pipetower",
            detail=f"Google account {address.email}",
        )
        raise ImmediateHttpResponse(
            render(
                request,
                "socialaccount/unconfirmed_account.html",
                {"email": address.email},
                status=409,
            )
        )


def _unconfirmed_holder(email: str) -> User | None:
    address = EmailAddress.objects.filter(email__iexact=email).select_related("user").first()
    if address is not None:
        return None if address.verified else address.user
    return User.objects.filter(email__iexact=email).first()


def explain_error(
    request: HttpRequest, error: Any, exception: Any, extra_context: dict[str, Any] | None
) -> None:
    """Put a sentence for the error page into its context, and log what happened."""
    from allauth.socialaccount.providers.oauth2.client import OAuth2Error
    from requests import RequestException

    if extra_context is None:
        return
    if "state_id" in extra_context:
        problem = (
            "This sign-in could not be matched to one started in this browser: it may have "
            "expired, been started in another browser, or been tampered with. Nothing was "
            "changed. Start again from the sign-in page."
        )
        kind = "state mismatch"
    elif isinstance(exception, OAuth2Error) and "id_token" in str(exception):
        problem = (
            "Google's answer could not be verified, so Pipetower did not sign you in. "
            "Try again; if it keeps happening, tell the person who runs this Pipetower."
        )
        kind = "ID token rejected"
    elif isinstance(exception, RequestException):
        problem = (
            "Pipetower could not reach Google to finish signing you in. Try again in a moment."
        )
        kind = "provider unreachable"
    else:
        problem = "Google did not finish signing you in. Start again from the sign-in page."
        kind = "provider error"
    extra_context["problem"] = problem
    logger.info("Google sign-in failed (%s): %s %r", kind, error, exception)
