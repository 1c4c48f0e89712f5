"""Security plumbing shared by every page: headers, rate-limit answers, the admin door.

- `SecurityHeadersMiddleware` (first in MIDDLEWARE): believes X-Forwarded-Proto
  only from a trusted proxy, adds Permissions-Policy, answers rate-limited
  sign-in forms with 429, and gives every 429 a Retry-After.
  Django's own middleware does the rest: HTTPS redirect, HSTS and cookie flags
  (SecurityMiddleware, settings), the Content-Security-Policy
  (ContentSecurityPolicyMiddleware, `SECURE_CSP`), frame denial.
- `too_many_requests`: the page allauth shows when one of its limits is reached
  (`handler429` in the URL configuration).
- `AdminGuardMiddleware`: the Django admin signs people in through Pipetower's
  own sign-in (with its two-factor step), and in production refuses staff who
  have not set up two-factor authentication.

docs/security.md describes all of it for operators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from pipetower.core.http import parse_ip, trusted_proxies
from pipetower.core.ratelimit import allauth_wait

DEFAULT_RETRY_AFTER = 60
# Form errors allauth raises when a limit refuses a sign-in or a two-factor code.
RATE_LIMIT_ERROR_CODES = frozenset({"too_many_login_attempts", "rate_limited"})
# Which allauth limit each rate-limited page counts against: (app, action).
LIMITED_VIEWS: dict[str, tuple[str, str]] = {
    "account_login": ("allauth.account", "login"),
    "account_signup": ("allauth.account", "signup"),
    "account_reset_password": ("allauth.account", "reset_password"),
    "account_reset_password_from_key": ("allauth.account", "reset_password_from_key"),
    "account_reauthenticate": ("allauth.account", "reauthenticate"),
    "mfa_reauthenticate": ("allauth.account", "reauthenticate"),
    "mfa_reauthenticate_webauthn": ("allauth.account", "reauthenticate"),
    "account_change_password": ("allauth.account", "change_password"),
    "account_set_password": ("allauth.account", "change_password"),
    "account_email": ("allauth.account", "manage_email"),
    "account_confirm_email": ("allauth.account", "confirm_email"),
    "account_email_verification_sent": ("allauth.account", "confirm_email"),
    "mfa_login_webauthn": ("allauth.mfa", "webauthn_login"),
}


# --- headers -----------------------------------------------------------------


def _distrust_forwarded_proto(request: HttpRequest) -> None:
    """With trusted proxies configured, only they may say a request came over HTTPS."""
    if "HTTP_X_FORWARDED_PROTO" not in request.META:
        return
    proxies = trusted_proxies()
    if not proxies:
        return  # no proxy list: Django's SECURE_PROXY_SSL_HEADER decides, as configured
    peer = parse_ip(str(request.META.get("REMOTE_ADDR") or ""))
    if peer is None or not any(peer.version == net.version and peer in net for net in proxies):
        del request.META["HTTP_X_FORWARDED_PROTO"]


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return str(getattr(match, "url_name", "") or "")


def login_failed_keys(request: HttpRequest, forms_in_context: Iterable[Any] = ()) -> list[str]:
    """The per-account keys allauth counts failed sign-ins and codes under, for this request."""
    keys: list[str] = []
    login = str(request.POST.get("login", "") or "").strip().lower()
    if login:
        from allauth.account.adapter import get_adapter

        adapter = get_adapter(request)
        key_of = getattr(adapter, "_get_login_attempts_cache_key", None)
        if key_of is not None:
            keys.append(key_of(request, email=login))
    for form in forms_in_context:
        user_id = getattr(getattr(form, "user", None), "pk", None)
        if user_id is not None:
            keys.append(f"mfa-auth-user-{user_id}")
    return keys


def retry_after(request: HttpRequest) -> int:
    """Seconds this client should wait before trying the refused request again."""
    limited = LIMITED_VIEWS.get(_view_name(request))
    if limited is None:
        return DEFAULT_RETRY_AFTER
    app, action = limited
    keys = []
    email = str(request.POST.get("email", "") or "").strip().lower()
    if email:
        keys.append(email)
    wait = allauth_wait(request, app=app, action=action, keys=keys)
    return wait or DEFAULT_RETRY_AFTER


def _rate_limited_forms(response: TemplateResponse) -> list[forms.BaseForm]:
    context = response.context_data
    if not isinstance(context, dict):
        return []
    found = []
    for value in context.values():
        # Only forms the view already validated: asking an unvalidated form for its
        # errors would run its validation (and count against a limit) here.
        if isinstance(value, forms.BaseForm) and getattr(value, "_errors", None):
            codes = {
                error.code
                for errors in value.errors.as_data().values()
                for error in errors
                if error.code
            }
            if codes & RATE_LIMIT_ERROR_CODES:
                found.append(value)
    return found


def _drop_nul_from_headers(request: HttpRequest) -> None:
    """Headers are the client's to choose; NUL has no meaning in them and PostgreSQL
    text refuses it, so a header like a NUL-filled User-Agent cannot break a sign-in."""
    meta = request.META
    for key, value in meta.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            meta[key] = value.replace("\x00", "")


class SecurityHeadersMiddleware:
    """Request: drop an untrusted X-Forwarded-Proto and NUL bytes in headers.
    Response: Permissions-Policy,
    and Retry-After on every 429 (computing it where the limit is known)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        _distrust_forwarded_proto(request)
        _drop_nul_from_headers(request)
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = policy
        if response.status_code == 429 and "Retry-After" not in response:
            response["Retry-After"] = str(retry_after(request))
        return response

    def process_template_response(
        self, request: HttpRequest, response: TemplateResponse
    ) -> TemplateResponse:
        """A sign-in or two-factor form refused by a limit is a 429, not a 200."""
        if response.status_code >= 300:
            return response
        limited = _rate_limited_forms(response)
        if limited:
            response.status_code = 429
            wait = allauth_wait(
                request,
                app="allauth.account",
                action="login_failed",
                keys=login_failed_keys(request, limited),
            )
            response["Retry-After"] = str(wait or DEFAULT_RETRY_AFTER)
        return response


def too_many_requests(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The page shown when a limit refuses a request (allauth's `handler429`)."""
    wait = retry_after(request)
    response = render(
        request,
        "429.html",
        {"retry_after": wait, "retry_minutes": max(1, round(wait / 60))},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


# --- the Django admin --------------------------------------------------------


def _admin_next(request: HttpRequest) -> str:
    wanted = str(request.GET.get("next", "") or "")
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("admin:index")


class AdminGuardMiddleware:
    """The admin has no sign-in of its own: its login page hands over to Pipetower's
    (so the two-factor step applies), and with `ADMIN_REQUIRE_2FA` staff without
    two-factor authentication are sent to set it up first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        match = getattr(request, "resolver_match", None)
        if match is None or match.app_name != "admin":
            return None
        user = request.user
        if match.url_name == "login":
            if not user.is_authenticated:
                return redirect_to_login(_admin_next(request), login_url=reverse("account_login"))
            if not user.is_staff:
                return render(
                    request,
                    "core/error.html",
                    {
                        "code": 403,
                        "title": "Not for your account",
                        "message": "The admin is for the people who operate this Pipetower. "
                        "Your account is not one of theirs.",
                    },
                    status=403,
                )
            return HttpResponseRedirect(_admin_next(request))
        if user.is_authenticated and user.is_staff and settings.ADMIN_REQUIRE_2FA:
            from pipetower.accounts.mfa import has_two_factor

            if not has_two_factor(user):
                messages.warning(
                    request,
                    "Set up two-factor authentication to use the admin: an authenticator "
                    "app or a security key.",
                )
                return HttpResponseRedirect(reverse("mfa_index"))
        return None
