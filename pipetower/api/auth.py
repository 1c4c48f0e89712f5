"""Who is calling the API: a personal token (`Authorization: Bearer ptk_...`) or
the signed-in browser session (with CSRF), which is what the docs page uses.

A read-scope token may only make safe requests (GET/HEAD/OPTIONS); a
read-write token, like the session, can do whatever the person's team role
allows. A token limited to one team reaches only that team: any other team's
URL answers 404.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.http import Http404, HttpRequest
from ninja.errors import Throttled
from ninja.security import APIKeyCookie, HttpBearer
from ninja.throttling import BaseThrottle
from ninja.utils import check_csrf

from pipetower.accounts.signins import signin_record_token_use
from pipetower.api.errors import Unauthenticated
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_authenticate, api_token_team_refusal
from pipetower.core.errors import NotAllowed
from pipetower.core.http import client_ip
from pipetower.core.ratelimit import FailureLimit, RequestLimit
from pipetower.teams.permissions import api_two_factor_check

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_RATE_LIMIT = "600/m"
REQUESTS = RequestLimit(
    "api", lambda: getattr(settings, "API_RATE_LIMIT", None) or DEFAULT_RATE_LIMIT
)
TOKEN_FAILURES = FailureLimit(
    "api-token-failed", lambda: getattr(settings, "API_TOKEN_FAILURE_LIMIT", "10/m")
)


@dataclass(frozen=True)
class Principal:
    """The caller of one API request. `token` is None for a browser session."""

    user: Any
    token: ApiToken | None = None

    @property
    def can_write(self) -> bool:
        return self.token is None or self.token.scope == ApiToken.Scope.WRITE

    @property
    def team_id(self) -> int | None:
        """The one team a team-limited token may reach; None for all the person's teams."""
        return self.token.team_id if self.token is not None else None


def principal(request: HttpRequest) -> Principal:
    """The authenticated caller of this request (set by the API's auth classes)."""
    return cast(Principal, request.auth)  # type: ignore[attr-defined]


class TokenAuth(HttpBearer):
    """`Authorization: Bearer ptk_...`. A present but unusable header is a 401, not a fallback."""

    def __call__(self, request: HttpRequest) -> Principal | None:
        header = request.headers.get(self.header, "").strip()
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != self.openapi_scheme or not credentials.strip():
            raise Unauthenticated(
                "Send the token as `Authorization: Bearer <token>`.", code="token_malformed"
            )
        return self.authenticate(request, credentials.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        # Failed tokens are limited per client address (docs/security.md).
        if wait := TOKEN_FAILURES.wait(request):
            raise Throttled(wait)
        try:
            api_token = api_token_authenticate(raw_token=token, ip=client_ip(request))
        except Unauthenticated:
            TOKEN_FAILURES.hit(request)
            raise
        signin_record_token_use(token=api_token, request=request)  # the owner's sign-in log
        api_two_factor_check(request, api_token.user)
        if api_token.scope != ApiToken.Scope.WRITE and request.method not in SAFE_METHODS:
            raise NotAllowed(
                "This token has read scope and may only make GET requests. "
                "Create a read-write token to make changes.",
                code="token_read_only",
            )
        # A token limited to one team sees no other: every URL naming another
        # team's slug answers 404, whichever app's endpoint it is.
        match = getattr(request, "resolver_match", None)
        slug = match.kwargs.get("slug") if match is not None else None
        if refusal := api_token_team_refusal(token=api_token, team_slug=slug):
            raise Http404(refusal)
        request.user = api_token.user
        return Principal(user=api_token.user, token=api_token)


class SessionAuth(APIKeyCookie):
    """The signed-in browser session. Unsafe methods need the CSRF token (X-CSRFToken)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest) -> Principal | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise NotAllowed(
                "CSRF check failed: send the page's CSRF token in the X-CSRFToken header, "
                "or use an API token.",
                code="csrf_failed",
            )
        api_two_factor_check(request, user)
        return Principal(user=user)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        return self(request)  # pragma: no cover - __call__ does the work


class CallerRateThrottle(BaseThrottle):
    """Requests per person (all their tokens and their session together), counted
    with one atomic increment per request (`pipetower.core.ratelimit.RequestLimit`).

    The rate is `settings.API_RATE_LIMIT` (`PIPETOWER_API_RATE_LIMIT`, "600/m"
    unless set). One instance serves every thread, so the wait of a refusal is
    kept per thread for `wait()`, which Ninja asks right after.
    """

    def __init__(self) -> None:
        self._refused = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        auth = getattr(request, "auth", None)
        if not isinstance(auth, Principal):
            return True
        wait = REQUESTS.check(str(auth.user.pk))
        self._refused.wait = wait
        return wait == 0

    def wait(self) -> float | None:
        return float(getattr(self._refused, "wait", 0)) or None
