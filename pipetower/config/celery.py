"""The Celery application shared by the web process, workers and the scheduler."""

import contextlib
import os
import time
import uuid
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


def _filesystem_messages_appear_whole() -> None:
    """Make the embedded broker's messages appear in their folder only once written.

    kombu's filesystem transport (5.x) creates a message's file under its final
    name and then writes it, while a worker lists the same folder, takes every
    file named like a message and parses it at once. A worker that took a file
    in between read it empty, stopped with "Unrecoverable error:
    JSONDecodeError", and the task was lost. Here the message is written to a
    file whose name no reader takes, then renamed: a rename within one folder is
    atomic, so a reader sees no file or the whole message.
    """
    from kombu.exceptions import ChannelError
    from kombu.transport import filesystem
    from kombu.utils.encoding import str_to_bytes
    from kombu.utils.json import dumps

    channel: Any = filesystem.Channel
    if getattr(channel, "_pipetower_patched", False):
        return

    def _put(self: Any, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Starts with a dot: `_get` takes only names whose part after the first
        # dot is "<queue>.msg", so no reader takes the file while it is written.
        partial = os.path.join(self.data_folder_out, f".writing-{uuid.uuid4().hex}")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    channel._put = _put
    channel._pipetower_patched = True


_redis_channel_survives_a_closed_connection()
_filesystem_messages_appear_whole()

app = Celery("pipetower")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
