"""Request plumbing that must stay cheap: it runs on every request."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# How often a signed-in session's "last seen" is written when nothing else changed.
SESSION_TRACK_EVERY = 60.0
_REMEMBERED_SESSIONS = 10_000


class UserSessionsMiddleware:
    """allauth's "where you are signed in" tracking (address, browser, last seen),
    without a database write on every request.

    allauth's own middleware updates the session's row on each request. This
    one lets it do so when the session is new to this process, when the
    address or browser changed (so allauth still notices at once), or when
    SESSION_TRACK_EVERY seconds have passed; "last seen" is then at most a
    minute old.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._seen: OrderedDict[str, tuple[tuple[str, str, str], float]] = OrderedDict()
        self._lock = threading.Lock()

    def _due(self, key: str, client: tuple[str, str, str]) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and last[0] == client and now - last[1] < SESSION_TRACK_EVERY:
                return False
            self._seen[key] = (client, now)
            self._seen.move_to_end(key)
            while len(self._seen) > _REMEMBERED_SESSIONS:
                self._seen.popitem(last=False)
            return True

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        key = getattr(session, "session_key", None)
        user = getattr(request, "user", None)
        if key and user is not None and user.is_authenticated:
            meta = request.META
            client = (
                str(meta.get("REMOTE_ADDR", "")),
                str(meta.get("HTTP_X_FORWARDED_FOR", "")),
                str(meta.get("HTTP_USER_AGENT", "")),
            )
            if self._due(key, client):
                from allauth.usersessions.internal.usersessionkit import track_activity

                track_activity(request, user=user, session=session)
        return self.get_response(request)
