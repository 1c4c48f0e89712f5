"""The Celery application shared by the web process, workers and the scheduler."""

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipetower.config.settings")


def _redis_channel_survives_a_closed_connection() -> None:
    """Make a worker outlive a Redis outage while a task runs (celery/kombu 5.7.0).

    When the broker connection drops while a late-acknowledged task is running,
    the worker's consumer closes the broken connection twice: `collect()` first
    closes the channel (restoring the unacknowledged message fails: Redis is
    down) and detaches the transport from the connection, then `close()` closes
    the same channel again. The second restore builds a new Redis client from
    `self.connection.client`, which is now None, and the resulting
    `AttributeError: 'NoneType' object has no attribute 'hostname'` is not a
    connection error, so nothing ignores it and the worker stops with
    "Unrecoverable error". Acknowledging the task's message once it finishes
    trips on the same None.

    Answering a connection error instead (what it is: this channel's
    connection is closed) lets kombu's own handling take over: the close is
    ignored, the late acknowledgement is logged as failed (the message stays in
    Redis's unacknowledged set and comes back after the visibility timeout),
    and the consumer reconnects when Redis is back.
    """
    try:
        import redis
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - the redis extra is always installed
        return
    channel: Any = kombu_redis.Channel
    if getattr(channel, "_pipetower_patched", False):
        return
    original = channel._connparams

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError(
                "The broker connection of this channel is closed."
            )
        return original(self, asynchronous=asynchronous)

    channel._connparams = _connparams
    channel._pipetower_patched = True


_redis_channel_survives_a_closed_connection()

app = Celery("pipetower")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
