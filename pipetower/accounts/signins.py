"""The sign-in log, sign-in alerts, "this wasn't me", and ending sessions.

Every sign-in attempt that can be tied to an account is recorded with its
address, the place that address is in (looked up on this machine, see geo.py),
the browser and operating system, the method and the outcome. A successful
sign-in from a country or a browser/OS pair not seen before for that person
sends them an email with a "this wasn't me" link: signed, expiring, good once,
it ends every session and starts a password reset.

The receivers that feed the log are in receivers.py; views only call these.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from pipetower.accounts import geo
from pipetower.accounts.models import SignInEvent, User
from pipetower.audit.services import audit_record
from pipetower.core.errors import Gone, ServiceError
from pipetower.core.http import client_ip
from pipetower.core.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

Method = SignInEvent.Method
Outcome = SignInEvent.Outcome

DISOWN_SALT = "pipetower.accounts.signin-disown"
UA_MAX_LENGTH = 500
# API-token use is logged once per token, address and day (UTC).
TOKEN_USE_CACHE_PREFIX = "pipetower:signin-token-use"


# --- recording ---------------------------------------------------------------


def signin_record(
    *,
    user: User,
    method: str,
    outcome: str,
    request: HttpRequest | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    second_factor: str = "",
    reason: str = "",
    detail: str = "",
) -> SignInEvent:
    """Write one sign-in event; a successful sign-in may also send an alert email.

    `ip` and `user_agent` default to the request's (client_ip rules).
    """
    if ip is None:
        ip = client_ip(request)
    if user_agent is None:
        user_agent = str(request.META.get("HTTP_USER_AGENT", "")) if request is not None else ""
    # Headers are the client's to choose: drop NUL, which PostgreSQL text refuses.
    user_agent = user_agent.replace("\x00", "")[:UA_MAX_LENGTH]
    location = geo.locate(ip)
    browser, os_family = device_describe(user_agent)
    event = SignInEvent.objects.create(
        user=user,
        method=method,
        outcome=outcome,
        second_factor=second_factor[:32],
        reason=reason[:200],
        detail=detail[:200],
        ip=ip,
        country_code=location.country_code,
        country_name=location.country_name[:100],
        region=location.region,
        city=location.city,
        user_agent=user_agent,
        browser=browser,
        os=os_family,
    )
    if outcome == Outcome.SUCCESS and method != Method.API_TOKEN:
        reasons = signin_unfamiliar_reasons(event=event)
        if reasons:
            from pipetower.accounts.tasks import signin_alert_send_task

            event_id = event.pk
            outbox_enqueue(signin_alert_send_task, event_id)
    return event


def signin_record_token_use(*, token: Any, request: HttpRequest) -> SignInEvent | None:
    """Log an API token's first use from this address today; later uses are not logged.

    Called by the API's token authentication; never raises (the log must not
    turn an API call into an error).
    """
    try:
        # Checked before the transaction: on SQLite a transaction takes the write
        # lock, and this runs on every API request.
        ip = client_ip(request)
        today = timezone.now().date()
        key = f"{TOKEN_USE_CACHE_PREFIX}:{token.pk}:{ip}:{today.isoformat()}"
        from django.core.cache import cache

        if not cache.add(key, 1, timeout=int(timedelta(days=1).total_seconds())):
            return None
        with transaction.atomic():
            return _record_token_use(token=token, request=request, ip=ip)
    except Exception:
        logger.exception("Could not record an API token use")
        return None


def _record_token_use(*, token: Any, request: HttpRequest, ip: str | None) -> SignInEvent | None:
    detail = _token_detail(token)
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    already = SignInEvent.objects.filter(
        user_id=token.user_id,
        method=Method.API_TOKEN,
        ip=ip,
        detail=detail,
        created_at__gte=start,
    ).exists()
    if already:
        return None
    return signin_record(
        user=token.user,
        method=Method.API_TOKEN,
        outcome=Outcome.USED,
        request=request,
        ip=ip,
        detail=detail,
    )


def _token_detail(token: Any) -> str:
    return f"{token.name} (ptk_{token.prefix}…)"


def device_describe(user_agent: str) -> tuple[str, str]:
    """(browser family, OS family) from a User-Agent header; "" for what is not known."""
    if not user_agent:
        return "", ""
    return _parse_user_agent(user_agent[:UA_MAX_LENGTH])


@functools.lru_cache(maxsize=512)
def _parse_user_agent(user_agent: str) -> tuple[str, str]:
    try:
        from ua_parser import parse

        result = parse(user_agent)
    except Exception:  # a parser failure must not break a sign-in
        logger.warning("Could not parse a user agent", exc_info=True)
        return "", ""
    browser = result.user_agent.family if result.user_agent else ""
    os_family = result.os.family if result.os else ""
    return (
        "" if browser == "Other" else browser[:100],
        "" if os_family == "Other" else os_family[:100],
    )


# --- alerts --------------------------------------------------------------------


def signin_unfamiliar_reasons(*, event: SignInEvent) -> list[str]:
    """Why this successful sign-in is unusual for its person: "country" and/or "device".

    A person's first successful sign-in has nothing to compare with and is not unusual.
    An unknown location is not a new country.
    """
    earlier = (
        SignInEvent.objects.filter(user_id=event.user_id, outcome=Outcome.SUCCESS)
        .exclude(method=Method.API_TOKEN)
        .exclude(pk=event.pk)
    )
    if not earlier.exists():
        return []
    reasons = []
    if event.country_code and not earlier.filter(country_code=event.country_code).exists():
        reasons.append("country")
    if not earlier.filter(browser=event.browser, os=event.os).exists():
        reasons.append("device")
    return reasons


def signin_alert_send(*, event: SignInEvent) -> None:
    """Email the person about an unusual sign-in, with a "this wasn't me" link."""
    if event.alerted_at is not None or not event.user.is_active or not event.user.email:
        return
    reasons = signin_unfamiliar_reasons(event=event)
    link = settings.BASE_URL + reverse(
        "accounts:signin_disown", args=[signin_disown_token(event=event)]
    )
    ttl_days = max(1, settings.SIGNIN_ALERT_LINK_TTL // timedelta(days=1))
    context = {
        "user": event.user,
        "event": event,
        "new_country": "country" in reasons,
        "new_device": "device" in reasons,
        "disown_url": link,
        "security_url": settings.BASE_URL + reverse("accounts:security"),
        "ttl_days": ttl_days,
    }
    subject = "[Pipetower] New sign-in to your account"
    if "country" in reasons:
        subject += f" from {event.location.country_name or event.country_code}"
    text = render_to_string("accounts/email/signin_alert.txt", context)
    html = render_to_string("accounts/email/signin_alert.html", context)
    message = EmailMultiAlternatives(subject, text, to=[event.user.email])
    message.attach_alternative(html, "text/html")
    message.send()
    SignInEvent.objects.filter(pk=event.pk).update(alerted_at=timezone.now())


def signin_disown_token(*, event: SignInEvent) -> str:
    return signing.dumps({"e": event.pk, "u": event.user_id}, salt=DISOWN_SALT, compress=True)


def signin_event_from_disown_token(*, token: str) -> SignInEvent:
    """The event a "this wasn't me" link is about; Gone when expired, used or damaged."""
    max_age = settings.SIGNIN_ALERT_LINK_TTL
    try:
        data = signing.loads(token, salt=DISOWN_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise Gone(
            "This link has expired. Sign in and review your recent sign-ins on the security "
            "page, or reset your password from the sign-in page."
        ) from None
    except signing.BadSignature:
        raise Gone(
            "This link is not valid: it may have been copied incompletely. "
            "Open it again from the email, or reset your password from the sign-in page."
        ) from None
    event = (
        SignInEvent.objects.select_related("user")
        .filter(pk=data.get("e"), user_id=data.get("u"), user__is_active=True)
        .first()
    )
    if event is None:
        raise Gone("This link no longer applies to any account.")
    if event.disowned_at is not None:
        raise Gone(
            "This link has already been used: you were signed out everywhere and a "
            "password reset email was sent. Use the newest reset email to choose a new password."
        )
    return event


@transaction.atomic
def signin_disown(*, event: SignInEvent, request: HttpRequest) -> User:
    """ "This wasn't me": end every session, disable the password, send a reset email.

    The password stops working at once (it may be what was stolen); the reset
    email lets the person choose a new one. Good once per event.
    """
    locked = SignInEvent.objects.select_for_update().get(pk=event.pk)
    if locked.disowned_at is not None:
        raise Gone("This link has already been used.")
    user = locked.user
    locked.disowned_at = timezone.now()
    locked.save(update_fields=["disowned_at"])

    ended = user_sessions_end(user=user, request=request, keep_current=False)
    # A new password hash also invalidates any session that usersessions does not track.
    user.set_unusable_password()
    user.save(update_fields=["password"])
    _password_reset_send(request=request, user=user)
    audit_record(
        actor=user,
        verb="account.signin_disowned",
        target=user,
        request=request,
        data={"event_id": locked.pk, "sessions_ended": ended},
    )
    return user


def _password_reset_send(*, request: HttpRequest, user: User) -> None:
    """allauth's own password-reset email, to the account's address."""
    from allauth.account.forms import ResetPasswordForm

    form = ResetPasswordForm(data={"email": user.email})
    if form.is_valid():
        form.save(request)
    else:  # pragma: no cover - the address is the account's own
        logger.warning("Could not start a password reset for user %s: %s", user.pk, form.errors)


# --- sessions --------------------------------------------------------------------


def user_sessions_list(*, user: Any) -> list[Any]:
    """The person's live sessions, newest activity first (ended ones are purged)."""
    from allauth.usersessions.models import UserSession

    sessions = UserSession.objects.purge_and_list(user)
    return sorted(sessions, key=lambda s: s.last_seen_at, reverse=True)


def user_session_end(*, user: Any, session_id: int, request: HttpRequest) -> None:
    """End one of the person's sessions (not the one making the request: that is signing out)."""
    from allauth.usersessions.models import UserSession

    session = UserSession.objects.filter(user_id=user.pk, pk=session_id).first()
    if session is None:
        raise Gone("That session has already ended.")
    if session.session_key == request.session.session_key:
        raise ServiceError("This is the session you are using now: use “Sign out” instead.")
    session.end()
    audit_record(
        actor=user,
        verb="account.session_ended",
        target=user,
        request=request,
        data={"session_ip": session.ip},
    )


def user_sessions_end(*, user: Any, request: HttpRequest, keep_current: bool = True) -> int:
    """End the person's sessions (all but the current one when `keep_current`); how many ended."""
    from allauth.usersessions.models import UserSession

    current = request.session.session_key if hasattr(request, "session") else None
    ended = 0
    signs_out_requester = False
    for session in UserSession.objects.filter(user_id=user.pk):
        if session.session_key == current:
            if keep_current:
                continue
            signs_out_requester = True
        session.end()
        ended += 1
    if signs_out_requester or (
        not keep_current and getattr(request, "user", None) is not None and request.user == user
    ):
        from django.contrib.auth import logout

        logout(request)
    if keep_current:
        audit_record(
            actor=user,
            verb="account.sessions_ended",
            target=user,
            request=request,
            data={"sessions_ended": ended},
        )
    return ended


# --- reads -----------------------------------------------------------------------


def signin_events_for_user(*, user: Any) -> QuerySet[SignInEvent]:
    return SignInEvent.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def api_tokens_for_user(*, user: Any) -> Sequence[Any]:
    from pipetower.api.models import ApiToken

    return list(ApiToken.objects.filter(user_id=user.pk).order_by("-created_at"))
