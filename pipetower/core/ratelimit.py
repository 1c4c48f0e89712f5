"""Rate limits.

- `RequestLimit` (API requests per person): fixed-window counters with one
  atomic increment per request, in Redis when `CACHE_URL` is Redis (shared by
  every web process of a scale-out deployment) and otherwise in a small SQLite
  file in the data directory (shared by every web process on the machine).
  When the store does not answer, requests go ahead and a warning is logged.
- `FailureLimit` (failed API tokens) and the wait before one of allauth's limits
  lets a request through again (for Retry-After) live in Django's cache, as
  sliding windows: the timestamps of the last hits, newest first.

docs/security.md describes the limits for operators.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest

from pipetower.core.http import client_ip

logger = logging.getLogger(__name__)

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


# --- request limits: one atomic increment per request ------------------------


class CounterStore:
    """Fixed-window counters: `hit(key, seconds)` adds one to the key's count in the
    current window (windows start at multiples of `seconds` since the epoch) and
    answers the new count and the seconds until the window ends."""

    def hit(self, key: str, seconds: int) -> tuple[int, float]:
        raise NotImplementedError

    def clear(self) -> None:
        """Forget every count (tests)."""
        raise NotImplementedError


def _window(seconds: int, now: float) -> tuple[int, float]:
    """The end of the current window (epoch seconds) and the time left in it."""
    end = (int(now // seconds) + 1) * seconds
    return end, end - now


class RedisCounterStore(CounterStore):
    """`INCR` and `EXPIRE` in one MULTI round trip: shared by every web process of a
    scale-out deployment (the Redis of `CACHE_URL`)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def hit(self, key: str, seconds: int) -> tuple[int, float]:
        end, left = _window(seconds, time.time())
        name = f"pipetower:rl:{key}:{end}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, seconds + 1)
        count, _ = pipe.execute()
        return int(count), left

    def clear(self) -> None:
        for name in self.client.scan_iter("pipetower:rl:*"):
            self.client.delete(name)


def _while_locked[T](statement: Callable[[], T], *, patience: float = 10.0) -> T:
    """Run `statement`, again while SQLite answers "locked" or "busy", for up to `patience` s.

    SQLite's busy timeout covers most waits, but not all: a lock that could
    deadlock (two connections changing the journal mode at once, a WAL reader
    upgrading) is refused at once. Each statement here is one atomic write, so
    running it again counts nothing twice.
    """
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class SqliteCounterStore(CounterStore):
    """A small SQLite file in the data directory, one conditional upsert per hit.

    The upsert is one statement, so SQLite's write lock makes it atomic across
    every thread and process on the machine (several web processes of the
    embedded default count together). The file is separate from the main
    database, so counting never waits behind a worker writing output, and it
    is not synced to disk (a crash loses at most the current window's counts).
    """

    _UPSERT = (
        "INSERT INTO hits (key, expires, count) VALUES (?, ?, 1) "
        "ON CONFLICT (key) DO UPDATE SET "
        "count = CASE WHEN hits.expires = excluded.expires THEN hits.count + 1 ELSE 1 END, "
        "expires = excluded.expires "
        "RETURNING count"
    )
    PURGE_EVERY = 1000

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            new = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            # Switching a new file to WAL and creating the table take locks that
            # SQLite refuses at once, without waiting, while another process
            # does the same: the first hits of several fresh processes retry.
            _while_locked(lambda: new.execute("PRAGMA journal_mode=WAL"))
            new.execute("PRAGMA synchronous=OFF")
            _while_locked(
                lambda: new.execute(
                    "CREATE TABLE IF NOT EXISTS hits "
                    "(key TEXT PRIMARY KEY, expires INTEGER NOT NULL, count INTEGER NOT NULL) "
                    "WITHOUT ROWID"
                )
            )
            self._local.conn, self._local.pid, self._local.calls = new, os.getpid(), 0
            return new
        return conn

    def hit(self, key: str, seconds: int) -> tuple[int, float]:
        now = time.time()
        end, left = _window(seconds, now)
        conn = self._connection()
        (count,) = _while_locked(lambda: conn.execute(self._UPSERT, (key, end)).fetchall())[0]
        self._local.calls += 1
        if self._local.calls % self.PURGE_EVERY == 0:
            _while_locked(lambda: conn.execute("DELETE FROM hits WHERE expires < ?", (int(now),)))
        return int(count), left

    def clear(self) -> None:
        self._connection().execute("DELETE FROM hits")


_store: CounterStore | None = None
_store_lock = threading.Lock()


def counter_store() -> CounterStore:
    """Redis when `CACHE_URL` is Redis, else the SQLite file in the data directory."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                url = str(getattr(settings, "CACHE_URL", "") or "")
                if url.startswith(("redis://", "rediss://")):
                    _store = RedisCounterStore(url)
                else:
                    _store = SqliteCounterStore(str(settings.DATA_DIR / "ratelimit.sqlite3"))
    return _store


def counters_clear() -> None:
    """Forget every request count (tests); a store that does not answer has none."""
    try:
        counter_store().clear()
    except _store_errors():
        pass


_last_warning = 0.0


def _warn_fail_open(exc: Exception) -> None:
    """Log that limits are off, at most once a minute per process."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60:
        _last_warning = now
        logger.warning(
            "Rate limits are not enforced: their store does not answer (%s: %s). "
            "Requests are let through until it is back.",
            exc.__class__.__name__,
            exc,
        )


def _store_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.Error, OSError]
    try:
        import redis

        errors.append(redis.RedisError)
    except ImportError:  # pragma: no cover - redis is a dependency through celery[redis]
        pass
    return tuple(errors)


class RequestLimit:
    """At most `rate.amount` requests per window per key, counted atomically.

    `check(key)` counts this request and answers 0 when it may go ahead, or the
    seconds until the window ends (for Retry-After). When the store does not
    answer (Redis down), the request goes ahead and a warning is logged: a
    cache outage must not take the API down with it.
    """

    def __init__(self, scope: str, rate: str | Callable[[], str]) -> None:
        self.scope = scope
        self._rate = rate

    @property
    def rate(self) -> Rate:
        return Rate.parse(self._rate() if callable(self._rate) else self._rate)

    def check(self, key: str) -> int:
        rate = self.rate
        try:
            count, left = counter_store().hit(f"{self.scope}:{key}", rate.seconds)
        except _store_errors() as exc:
            _warn_fail_open(exc)
            return 0
        if count <= rate.amount:
            return 0
        return max(1, math.ceil(left))
