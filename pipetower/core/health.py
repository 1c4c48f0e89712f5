"""What /healthz checks: the database, the broker, the cache and the workers.

Each check answers a small dict with a `status` of "ok" or "error" (and a
`detail` saying what failed, never a password or an address with credentials),
in at most about a second: a health probe must not hang on a broker that
accepts connections and never answers.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache

PROBE_TIMEOUT_SECONDS = 1.0


def broker_status() -> dict[str, Any]:
    """Whether tasks can be sent right now."""
    if not settings.BROKER_URL:
        # The embedded broker is a folder in the data directory.
        folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_out"])
        if os.path.isdir(folder) and os.access(folder, os.W_OK):
            return {"status": "ok", "transport": "filesystem"}
        return {
            "status": "error",
            "transport": "filesystem",
            "detail": "the queue folder is missing or not writable",
        }
    if settings.BROKER_URL.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(
            settings.BROKER_URL,
            socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
            socket_timeout=PROBE_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            return {"status": "error", "transport": "redis", "detail": _reason(exc)}
        finally:
            client.close()
        return {"status": "ok", "transport": "redis"}
    from pipetower.config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception as exc:  # any transport: say it is down, never fail the probe
        return {"status": "error", "detail": _reason(exc)}
    return {"status": "ok"}


def cache_status() -> dict[str, Any]:
    """Whether the cache stores and returns a value."""
    key = "pipetower:healthz"
    value = secrets.token_hex(8)
    try:
        cache.set(key, value, timeout=10)
        if cache.get(key) != value:
            return {"status": "error", "detail": "a value written was not read back"}
    except Exception as exc:  # every cache backend raises its own errors
        return {"status": "error", "detail": _reason(exc)}
    return {"status": "ok"}


def _reason(exc: BaseException) -> str:
    """The kind of failure, without the message (which may hold an address or a password)."""
    return exc.__class__.__name__
