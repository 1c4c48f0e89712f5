"""Counts consented page views, keeps the A/B cookie in step with consent, and
lets the operator's analytics script through the Content-Security-Policy only
for visitors who agreed to analytics cookies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from pipetower.analytics.cookies import (
    AB_COOKIE,
    AB_MAX_AGE,
    ANALYTICS,
    CONSENT_COOKIE,
    CookieChoices,
    cookie_allowed,
    scripts_allowed,
)
from pipetower.analytics.experiments import assignments_for, encode_assignments
from pipetower.analytics.scripts import configured_scripts, script_cookie_delete
from pipetower.analytics.services import page_view_record

# Pages that are not visits: the back office, the API, files, probes, and the
# cookie endpoints themselves.
NOT_COUNTED_PREFIXES = ("/admin/", "/api/", "/static/", "/media/", "/healthz", "/cookies/")


def snippet_origin() -> str:
    url = getattr(settings, "ANALYTICS_SNIPPET_URL", "")
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_page(request: HttpRequest, response: HttpResponse) -> bool:
    return (
        request.method == "GET"
        and response.status_code == 200
        and response.get("Content-Type", "").startswith("text/html")
        and not request.headers.get("HX-Request")
        and getattr(request, "resolver_match", None) is not None
    )


class CookieConsentMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.cookie_choices = CookieChoices.parse(  # type: ignore[attr-defined]
            request.COOKIES.get(CONSENT_COOKIE)
        )
        response = self.get_response(request)
        if _is_page(request, response):
            self._count(request)
            self._allow_snippet(request, response)
        self._sync_ab_cookie(request, response)
        self._remove_withdrawn_script_cookies(request, response)
        return response

    def _count(self, request: HttpRequest) -> None:
        if request.path.startswith(NOT_COUNTED_PREFIXES):
            return
        if not cookie_allowed(request, ANALYTICS):
            return
        match = request.resolver_match
        assert match is not None
        page_view_record(path="/" + str(match.route or "").lstrip("^").rstrip("$"))

    def _allow_snippet(self, request: HttpRequest, response: HttpResponse) -> None:
        if hasattr(response, "_csp_config"):
            return
        origins = [s.origin for s in scripts_allowed(request)]
        origin = snippet_origin()
        if origin and cookie_allowed(request, ANALYTICS):
            origins.insert(0, origin)
        if not origins:
            return
        configured: dict[str, Any] = settings.SECURE_CSP
        policy = {key: list(value) for key, value in configured.items()}
        for directive in ("script-src", "connect-src", "img-src"):
            policy.setdefault(directive, [])
            for allowed in origins:
                if allowed not in policy[directive]:
                    policy[directive].append(allowed)
        response._csp_config = policy  # type: ignore[attr-defined]

    def _remove_withdrawn_script_cookies(
        self, request: HttpRequest, response: HttpResponse
    ) -> None:
        """A third-party script's cookies that Pipetower can remove go as soon as the
        consent they need is off (withdrawn in the privacy center, or restricted)."""
        for script in configured_scripts():
            if not any(c.name in request.COOKIES for c in script.removable):
                continue
            if cookie_allowed(request, script.purpose_key):
                continue
            for cookie in script.removable:
                if cookie.name in request.COOKIES and cookie.name not in response.cookies:
                    script_cookie_delete(response, cookie)

    def _sync_ab_cookie(self, request: HttpRequest, response: HttpResponse) -> None:
        if AB_COOKIE in response.cookies:
            return  # the view already decided (a saved choice deleted it)
        has_cookie = AB_COOKIE in request.COOKIES
        if not request.cookie_choices.ab_testing:  # type: ignore[attr-defined]
            if has_cookie:
                response.delete_cookie(AB_COOKIE, samesite="Lax")
            return
        assignments = assignments_for(request)
        if assignments is None:  # consented in this browser, but restricted or withdrawn
            if has_cookie:
                response.delete_cookie(AB_COOKIE, samesite="Lax")
            return
        value = encode_assignments(assignments)
        if request.COOKIES.get(AB_COOKIE) != value:
            response.set_cookie(
                AB_COOKIE,
                value,
                max_age=AB_MAX_AGE,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
