"""Signal receivers that feed the sign-in log (connected in AccountsConfig.ready).

They only translate allauth's and Django's signals into `signins.signin_record`
calls. Attempts that cannot be tied to an account (an unknown email address, a
Google response that failed its checks) have no log to go to; they are written
to the server log instead.

- a full sign-in (allauth `user_logged_in`): success, with the first factor
  (password, Google, email link) and the second one, if any;
- a correct first factor when a second is still to come
  (`authentication_step_completed`): pending;
- a wrong password (Django `user_login_failed`): failed;
- a wrong two-factor code (allauth.mfa `authentication_failed`): failed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from pipetower.accounts.models import SignInEvent, User

logger = logging.getLogger(__name__)

Method = SignInEvent.Method
Outcome = SignInEvent.Outcome

# allauth's names for first factors -> the sign-in log's methods.
FIRST_FACTORS = {
    "password": Method.PASSWORD,
    "socialaccount": Method.GOOGLE,
    "code": Method.EMAIL_LINK,
    "password_reset": Method.EMAIL_LINK,
}


def connect() -> None:
    from allauth.account.signals import authentication_step_completed, user_logged_in
    from allauth.mfa.signals import authentication_failed
    from django.contrib.auth.signals import user_login_failed

    user_logged_in.connect(on_user_logged_in, dispatch_uid="pipetower.signin.logged_in")
    authentication_step_completed.connect(
        on_authentication_step, dispatch_uid="pipetower.signin.step"
    )
    user_login_failed.connect(on_login_failed, dispatch_uid="pipetower.signin.failed")
    authentication_failed.connect(on_mfa_failed, dispatch_uid="pipetower.signin.mfa_failed")


def _record(**kwargs: Any) -> None:
    from django.db import transaction

    from pipetower.accounts.signins import signin_record

    try:
        with transaction.atomic():
            signin_record(**kwargs)
    except Exception:  # the log must never turn a sign-in into an error page
        logger.exception("Could not record a sign-in event")


def on_user_logged_in(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    from allauth.account.internal.flows.login import get_authentication_records

    method = Method.EMAIL_LINK
    second_factor = ""
    for record in get_authentication_records(request, user):
        name = record.get("method")
        if record.get("reauthenticated"):
            continue
        if name in FIRST_FACTORS:
            method = FIRST_FACTORS[name]
            second_factor = ""
        elif name == "mfa":
            if record.get("passwordless"):
                method, second_factor = Method.PASSKEY, ""
            else:
                second_factor = str(record.get("type") or "")
    if kwargs.get("sociallogin") is not None:
        method = Method.GOOGLE
    _record(
        user=user,
        method=method,
        outcome=Outcome.SUCCESS,
        request=request,
        second_factor=second_factor,
        detail=_google_detail(kwargs.get("sociallogin")),
    )


def on_authentication_step(
    sender: Any, request: HttpRequest, user: User, method: str, **kwargs: Any
) -> None:
    """A correct password (or Google) with a two-factor code still to be asked."""
    if method not in ("password", "socialaccount") or kwargs.get("reauthenticated"):
        return
    if request.user.is_authenticated:  # re-authentication of a signed-in person
        return
    from allauth.mfa.utils import is_mfa_enabled

    if not is_mfa_enabled(user):
        return
    _record(
        user=user,
        method=FIRST_FACTORS[method],
        outcome=Outcome.PENDING,
        request=request,
        reason="Correct; a two-factor code was asked for",
    )


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is None:
        return
    login = str(credentials.get("email") or credentials.get("username") or "").strip()
    user = _user_by_email(login)
    if user is None:
        logger.info("Failed sign-in for an unknown address from %s", _ip(request))
        return
    _record(
        user=user,
        method=Method.PASSWORD,
        outcome=Outcome.FAILED,
        request=request,
        reason="Wrong password",
    )


def on_mfa_failed(
    sender: Any, request: HttpRequest, user: User, authenticator: Any, **kwargs: Any
) -> None:
    if kwargs.get("reauthentication"):
        return
    _record(
        user=user,
        method=Method.MFA,
        outcome=Outcome.FAILED,
        request=request,
        second_factor=str(getattr(authenticator, "type", "") or ""),
        reason="Wrong code",
    )


def _user_by_email(email: str) -> User | None:
    if not email or "@" not in email:
        return None
    from allauth.account.models import EmailAddress

    address = EmailAddress.objects.filter(email__iexact=email).select_related("user").first()
    if address is not None:
        return address.user
    return User.objects.filter(email__iexact=email).first()


def _google_detail(sociallogin: Any) -> str:
    if sociallogin is None:
        return ""
    email = str((sociallogin.account.extra_data or {}).get("email") or "")
    return f"Google account {email}" if email else "Google account"


def _ip(request: HttpRequest) -> str | None:
    from pipetower.core.http import client_ip

    return client_ip(request)
