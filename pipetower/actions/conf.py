"""The actions app's settings, each with its default (settings.py sets them from the
environment; tests override them with pytest-django's `settings` fixture)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def output_limit_bytes() -> int:
    """Output kept per target; beyond it the rest is discarded with a marker."""
    return int(getattr(settings, "ACTIONS_OUTPUT_LIMIT_BYTES", 10 * 1024 * 1024))


def shard_size() -> int:
    """Targets per worker task: a larger run is split so several workers share it."""
    return max(1, int(getattr(settings, "ACTIONS_SHARD_SIZE", 100)))


def script_max_bytes() -> int:
    return int(getattr(settings, "ACTIONS_SCRIPT_MAX_BYTES", 256 * 1024))


def heartbeat_seconds() -> float:
    return float(getattr(settings, "ACTIONS_HEARTBEAT_SECONDS", 10.0))


def worker_lost_after() -> timedelta:
    value = getattr(settings, "ACTIONS_WORKER_LOST_AFTER", timedelta(seconds=60))
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def connect_timeout() -> float:
    return float(getattr(settings, "ACTIONS_CONNECT_TIMEOUT", 10.0))


def cancel_grace_seconds() -> float:
    """After TERM, how long a cancelled or timed-out script gets before KILL."""
    return float(getattr(settings, "ACTIONS_CANCEL_GRACE_SECONDS", 5.0))


def flush_interval() -> float:
    return float(getattr(settings, "ACTIONS_FLUSH_SECONDS", 0.1))


def flush_lines() -> int:
    return int(getattr(settings, "ACTIONS_FLUSH_LINES", 500))


def handshakes_per_host() -> int:
    """Simultaneous SSH handshakes to one host:port (sshd's MaxStartups defaults to 10)."""
    return int(getattr(settings, "ACTIONS_HANDSHAKES_PER_HOST", 8))


def keepalive_seconds() -> float:
    """SSH keepalive interval during a run; a host silent for 3 of them fails the target."""
    return float(getattr(settings, "ACTIONS_KEEPALIVE_SECONDS", 15.0))


def warm_idle_seconds() -> float:
    """How long a worker keeps an SSH connection open after a script for the next
    run on that server; 0 turns warm connections off."""
    return float(getattr(settings, "ACTIONS_SSH_IDLE_SECONDS", 60))


def warm_per_host() -> int:
    """Idle connections a worker keeps to one host and port at most."""
    return int(getattr(settings, "ACTIONS_SSH_WARM_PER_HOST", 4))


def warm_per_worker() -> int:
    """Idle connections one worker process keeps at most (the oldest closes first)."""
    return int(getattr(settings, "ACTIONS_SSH_WARM_PER_WORKER", 500))


def claim_poll_seconds() -> float:
    """How often a shard waiting on the run-wide concurrency limit asks again."""
    return float(getattr(settings, "ACTIONS_CLAIM_POLL_SECONDS", 0.2))


def db_retry_seconds() -> float:
    """How long the engine retries a failing database write (with backoff) before giving up."""
    return float(getattr(settings, "ACTIONS_DB_RETRY_SECONDS", 120.0))


def schedule_grace() -> timedelta:
    """How late a schedule's time may be reached and still count as on time."""
    return timedelta(seconds=float(getattr(settings, "ACTIONS_SCHEDULE_GRACE_SECONDS", 120)))


def schedule_tick_batch() -> int:
    """Due schedules one scheduler tick handles; the rest wait for the next tick."""
    return max(1, int(getattr(settings, "ACTIONS_SCHEDULE_TICK_BATCH", 200)))


def webhook_body_max_bytes() -> int:
    """The largest webhook body accepted; a larger one is refused with 413."""
    return int(getattr(settings, "ACTIONS_WEBHOOK_BODY_MAX_BYTES", 256 * 1024))


def webhook_replay_window() -> timedelta:
    """How long an accepted delivery id is remembered (a repeat is refused with 409)."""
    value = getattr(settings, "ACTIONS_WEBHOOK_REPLAY_WINDOW", timedelta(hours=24))
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def webhook_rate_limit() -> str:
    """Deliveries per webhook, such as "60/m"; more are refused with 429."""
    return str(getattr(settings, "ACTIONS_WEBHOOK_RATE_LIMIT", "60/m"))
