"""Rate limits on Django's cache: Pipetower's own failure counters, and the wait
before one of allauth's limits lets a request through again (for Retry-After).

Counters are sliding windows: the timestamps of the last hits, newest first,
kept for as long as the window. With the embedded file cache the counters are
per machine; with `CACHE_URL` pointing at Redis they are shared by every web
process (docs/security.md).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest

from pipetower.core.http import client_ip

_RATE_RE = re.compile(r"^\s*(?P<amount>\d+)\s*/\s*(?P<count>\d*)(?P<unit>[smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LOCK_SECONDS = 5
_LOCK_WAIT = 1.0


@dataclass(frozen=True)
class Rate:
    """`amount` hits per `seconds`, written like "10/m" or "5/5m"."""

    amount: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE_RE.match(text)
        if match is None or int(match["amount"]) < 1:
            raise ValueError(f"{text!r} is not a rate such as 10/m or 5/5m.")
        count = int(match["count"] or 1)
        return cls(int(match["amount"]), count * _UNITS[match["unit"]])


@contextmanager
def _locked(key: str) -> Iterator[None]:
    """A best-effort lock around one counter, so two processes do not lose a hit.
    If the lock cannot be had within a second, the update goes ahead anyway."""
    lock = f"{key}:lock"
    deadline = time.monotonic() + _LOCK_WAIT
    acquired = cache.add(lock, 1, timeout=_LOCK_SECONDS)
    while not acquired and time.monotonic() < deadline:
        time.sleep(0.01)
        acquired = cache.add(lock, 1, timeout=_LOCK_SECONDS)
    try:
        yield
    finally:
        if acquired:
            cache.delete(lock)


def _live(history: Iterable[float], now: float, seconds: float) -> list[float]:
    return [stamp for stamp in history if stamp > now - seconds]


def seconds_until_free(history: list[float], rate_amount: int, seconds: float) -> int:
    """How long until a window holding `history` (newest first) admits one more hit."""
    now = time.time()
    live = sorted(_live(history, now, seconds), reverse=True)
    if len(live) < rate_amount:
        return 0
    return max(1, math.ceil(live[rate_amount - 1] + seconds - now))


class FailureLimit:
    """Counts failures per client address and refuses further tries for a while.

    Before trying, ask `wait(request)`: a non-zero answer is the number of
    seconds to refuse for (send it as Retry-After). After a failed try, call
    `hit(request)`. The rate is text such as "10/m", or a callable giving it.
    """

    def __init__(self, scope: str, rate: str | Callable[[], str]) -> None:
        self.scope = scope
        self._rate = rate

    @property
    def rate(self) -> Rate:
        return Rate.parse(self._rate() if callable(self._rate) else self._rate)

    def _key(self, request: HttpRequest) -> str:
        return f"pipetower:rl:{self.scope}:{client_ip(request) or 'unknown'}"

    def wait(self, request: HttpRequest) -> int:
        """Seconds until this client may try again; 0 when it may now."""
        rate = self.rate
        return seconds_until_free(cache.get(self._key(request), []), rate.amount, rate.seconds)

    def hit(self, request: HttpRequest) -> None:
        rate, key, now = self.rate, self._key(request), time.time()
        with _locked(key):
            history = _live(cache.get(key, []), now, rate.seconds)
            history.insert(0, now)
            cache.set(key, history[: rate.amount], timeout=rate.seconds)

    def clear(self, request: HttpRequest) -> None:
        cache.delete(self._key(request))


# --- allauth's limits --------------------------------------------------------


def allauth_wait(
    request: HttpRequest,
    *,
    app: str,
    action: str,
    keys: Iterable[str] = (),
    user: Any = None,
) -> int | None:
    """Seconds until allauth's `action` limit admits this request again.

    Each of the action's rates that can be looked up (per address, per signed-in
    user, per one of `keys`) and is full gives its wait; the longest counts.
    When none of them is full, the longest window of the rates that could not
    be looked up is the answer; None when the action has no rates.
    (The login key allauth counts failed sign-ins under is read through its
    adapter; see `pipetower.core.security.login_failed_keys`.)
    """
    from allauth.core.internal.ratelimit import get_cache_key, get_rates

    try:
        rates = get_rates(app=app, action=action)
    except (ImportError, AttributeError, ValueError):
        return None
    if user is None:
        candidate = getattr(request, "user", None)
        user = candidate if getattr(candidate, "is_authenticated", False) else None
    keys = [key for key in keys if key]
    waits: list[int] = []
    unknown: list[float] = []
    for rate in rates:
        if rate.per == "key":
            sources: list[dict[str, Any]] = [{"key": key} for key in keys]
        elif rate.per == "user":
            sources = [{"user": user}] if user is not None else []
        else:
            sources = [{}]
        if not sources:
            unknown.append(rate.duration)
            continue
        for source in sources:
            try:
                cache_key = get_cache_key(request, app=app, action=action, rate=rate, **source)
            except (PermissionDenied, ImproperlyConfigured, ValueError):  # no usable address
                unknown.append(rate.duration)
                continue
            history = cache.get(cache_key, [])
            waits.append(seconds_until_free(history, rate.amount, rate.duration))
    if waits and max(waits) > 0:
        return max(waits)
    if unknown:
        return max(1, math.ceil(max(unknown)))
    if waits:
        return 1  # the window freed up while the refusal was being written
    return None
