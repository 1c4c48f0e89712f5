"""Which optional cookies a visitor agreed to, and whether Pipetower may use them now.

The consent cookie (`pt_consent`) records the visitor's choices in this browser,
for example `v1.a1.b0`: analytics yes, A/B testing no. Anything unreadable
counts as "not decided yet", so the banner asks again.

An optional cookie is used only when the browser's choice says yes and, for a
signed-in person, the privacy ledger agrees (`processing_allowed`): their own
newest choice is a grant and no restriction of processing is active.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import HttpRequest

from pipetower.analytics.scripts import ThirdPartyScript, configured_scripts
from pipetower.privacy.consent import processing_allowed
from pipetower.privacy.models import Purpose

CONSENT_COOKIE = "pt_consent"
CONSENT_MAX_AGE = timedelta(days=180)
AB_COOKIE = "pt_ab"
AB_MAX_AGE = timedelta(days=90)

ANALYTICS = Purpose.ANALYTICS_COOKIES.value
AB_TESTING = Purpose.AB_TESTING_COOKIES.value

_VALUE = re.compile(r"^v1\.a([01])\.b([01])$")


@dataclass(frozen=True)
class CookieChoices:
    decided: bool = False
    analytics: bool = False
    ab_testing: bool = False

    @classmethod
    def parse(cls, value: str | None) -> CookieChoices:
        match = _VALUE.match(value or "")
        if match is None:
            return cls()
        return cls(decided=True, analytics=match[1] == "1", ab_testing=match[2] == "1")

    def encode(self) -> str:
        return f"v1.a{int(self.analytics)}.b{int(self.ab_testing)}"

    def grants(self, purpose: str) -> bool:
        return {ANALYTICS: self.analytics, AB_TESTING: self.ab_testing}.get(purpose, False)


def choices_of(request: HttpRequest) -> CookieChoices:
    """The choices in effect for this request (set by the middleware, updated on save)."""
    choices = getattr(request, "cookie_choices", None)
    if choices is None:
        choices = CookieChoices.parse(request.COOKIES.get(CONSENT_COOKIE))
        request.cookie_choices = choices  # type: ignore[attr-defined]
    return choices


def cookie_allowed(request: HttpRequest, purpose: str) -> bool:
    """May Pipetower use the optional cookie for `purpose` in this request?"""
    if not choices_of(request).grants(purpose):
        return False
    cache: dict[str, bool] = _allowed_cache(request)
    if purpose not in cache:
        user: Any = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            cache[purpose] = processing_allowed(user=user, purpose=purpose)
        else:
            cache[purpose] = True
    return cache[purpose]


def scripts_allowed(request: HttpRequest) -> list[ThirdPartyScript]:
    """The operator's third-party scripts this request may load: each only with the
    consent its category needs."""
    return [s for s in configured_scripts() if cookie_allowed(request, s.purpose_key)]


def forget_allowed(request: HttpRequest) -> None:
    """Drop the cached answers after the choices changed within the request."""
    request._pt_cookie_allowed = {}  # type: ignore[attr-defined]


def _allowed_cache(request: HttpRequest) -> dict[str, bool]:
    cache = getattr(request, "_pt_cookie_allowed", None)
    if cache is None:
        cache = {}
        request._pt_cookie_allowed = cache  # type: ignore[attr-defined]
    return cache
