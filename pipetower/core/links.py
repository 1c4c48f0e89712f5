"""One public address for every link Pipetower writes (`PIPETOWER_BASE_URL`).

Emails are read outside the browser that caused them, so a link built from the
request's Host (127.0.0.1 in one tab, localhost in another) would open a new,
signed-out session. Every absolute link is built here instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def public_url(path: str) -> str:
    """The absolute address of a path on this Pipetower (`/teams/` → `https://…/teams/`)."""
    return settings.BASE_URL + (path if path.startswith("/") else "/" + path)


def rebase(url: str) -> str:
    """The same link on the public address: scheme and host replaced by the base URL's."""
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc and not url.startswith("/"):
        return url
    base = urlsplit(settings.BASE_URL)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def rebase_context(context: dict[str, Any]) -> dict[str, Any]:
    """Every `*_url` string in a mail context, moved to the public address."""
    for key, value in list(context.items()):
        if key.endswith("_url") and isinstance(value, str) and value:
            context[key] = rebase(value)
    context["base_url"] = settings.BASE_URL
    return context


class LoopbackAliasRedirectMiddleware:
    """On a local Pipetower, send 127.0.0.1 and [::1] to the base URL's name (same port).

    Cookies belong to a host name, so a person who opened http://127.0.0.1:8000
    and then an emailed http://localhost:8000 link would meet a sign-in page.
    Only loopback aliases of a loopback base URL on the same port are redirected;
    any other host is left to ALLOWED_HOSTS. Machines are never redirected: the
    API, webhook deliveries, /healthz and any request carrying an Authorization
    header answer on whichever local name they used (an HTTP client following a
    redirect to another host name drops the token, and a monitor wants an answer,
    not a 301).
    """

    MACHINE_PATHS = ("/api/", "/hooks/", "/healthz")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        base = urlsplit(settings.BASE_URL)
        self.base_host = (base.hostname or "").lower()
        self.base_port = base.port or (443 if base.scheme == "https" else 80)
        self.active = self.base_host in LOOPBACK_NAMES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            self.active
            and request.method in {"GET", "HEAD"}
            and not request.path.startswith(self.MACHINE_PATHS)
            and "authorization" not in request.headers
        ):
            host = urlsplit("//" + request.get_host())
            name = (host.hostname or "").lower()
            port = host.port or (443 if request.is_secure() else 80)
            if name in LOOPBACK_NAMES and name != self.base_host and port == self.base_port:
                return HttpResponsePermanentRedirect(rebase(request.get_full_path()))
        return self.get_response(request)
