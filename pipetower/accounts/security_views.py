"""The security page (/account/security/) and the "this wasn't me" link.

Thin: they read through `signins` and change things only through its services.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from pipetower.accounts import geo, signins
from pipetower.core.errors import ServiceError

SIGNINS_PER_PAGE = 25


@dataclass(frozen=True)
class SessionRow:
    id: int
    ip: str
    location: geo.Location
    device: str
    created_at: Any
    last_seen_at: Any
    is_current: bool


@login_required
def security(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    page = Paginator(signins.signin_events_for_user(user=user), SIGNINS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    current_key = request.session.session_key
    sessions = []
    for session in signins.user_sessions_list(user=user):
        browser, os_family = signins.device_describe(session.user_agent)
        sessions.append(
            SessionRow(
                id=session.pk,
                ip=session.ip,
                location=geo.locate(session.ip),
                device=_device(browser, os_family),
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
                is_current=session.session_key == current_key,
            )
        )
    context = {
        "page": page,
        "events": page.object_list,
        "sessions": sessions,
        "other_sessions": sum(1 for s in sessions if not s.is_current),
        "tokens": signins.api_tokens_for_user(user=user),
        "attribution": geo.attribution(),
    }
    return render(request, "accounts/security.html", context)


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    try:
        signins.user_session_end(user=request.user, session_id=session_id, request=request)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "That session is signed out.")
    return redirect("accounts:security")


@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = signins.user_sessions_end(user=request.user, request=request, keep_current=True)
    if ended:
        plural = "session is" if ended == 1 else "sessions are"
        messages.success(request, f"{ended} other {plural} signed out. This one stays signed in.")
    else:
        messages.info(request, "You were not signed in anywhere else.")
    return redirect("accounts:security")


@never_cache
@require_http_methods(["GET", "POST"])
def signin_disown(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what will happen (mail scanners open links); POST does it."""
    try:
        event = signins.signin_event_from_disown_token(token=token)
    except ServiceError as error:
        return render(
            request,
            "accounts/signin_disown_invalid.html",
            {"message": error.message},
            status=error.status,
        )
    if request.method == "POST":
        try:
            signins.signin_disown(event=event, request=request)
        except ServiceError as error:
            return render(
                request,
                "accounts/signin_disown_invalid.html",
                {"message": error.message},
                status=error.status,
            )
        return render(request, "accounts/signin_disown_done.html", {"email": event.user.email})
    return render(request, "accounts/signin_disown.html", {"event": event})


def _device(browser: str, os_family: str) -> str:
    if browser and os_family:
        return f"{browser} on {os_family}"
    return browser or os_family or "Unknown device"


@login_required
def sessions_moved(request: HttpRequest) -> HttpResponse:
    """allauth's Sessions page lives on the security page now: one place for it."""
    return redirect(reverse("accounts:security") + "#sessions")
