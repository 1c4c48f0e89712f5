"""The transactional outbox: committed work is always eventually queued.

Sending a task straight to the broker from a service has two failure modes:
the broker is down after the database committed (the work exists, its task
never does: a run stays "queued" for ever, an invitation looks sent), or the
transaction rolls back after the task was sent. Instead, every enqueue path
calls `outbox_enqueue(task, *args)` inside the service's transaction:

1. an `OutboxMessage` row is written in that same transaction, so it exists
   exactly when the work does;
2. right after the commit, `outbox_publish` sends it to the broker and marks
   it published; a broker that does not answer is logged, never an error for
   the person (the page shows "waiting for the worker" instead of a 500);
3. every `OUTBOX_SWEEP_SECONDS` the scheduler's `outbox_sweep_task` sends what
   is still unpublished. While the broker is down that task cannot be
   delivered either; the first one delivered once it is back catches up.
4. When a worker starts the task (Celery's `task_prerun`, see core/tasks.py),
   the row is marked started: `outbox_pending(subject)` tells pages whether
   the work is still waiting for a worker ("sending" rather than "sent").

The task id is `outbox-<row id>`, the same on every send, so a message sent
twice (published, but marking it failed) is recognisable in the logs. Tasks
must tolerate a second delivery anyway (acks_late redelivers after a crash).

Arguments that are secrets (an invitation's raw token) go in `secret_args`:
stored encrypted with the owner's data key, never in the clear in the
database; they travel in the broker message as before (masked in logs by
`argsrepr`).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from pipetower.core.models import DataKey, OutboxMessage

logger = logging.getLogger(__name__)

TASK_ID_PREFIX = "outbox-"
SWEEP_BATCH = 500
# Rows whose task started are kept this long (what happened, for support), then deleted.
KEEP_STARTED = timedelta(days=1)
# The sweep leaves messages this young to the relay that runs right after their
# commit, so that the two do not send the same message at once.
SWEEP_GRACE = timedelta(seconds=10)
# The broker errors that mean "not sent now, the sweep will try again".
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError)


def outbox_enqueue(
    task: Task,
    *args: Any,
    secret_args: list[Any] | None = None,
    data_key: DataKey | None = None,
    subject: str = "",
    argsrepr: str = "",
    options: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Queue `task(*args, *secret_args)` once the current transaction commits.

    Call it inside the transaction that writes the work. `subject` names what
    the work is about (`"teams.invitation:42"`) for `outbox_pending`; `options`
    are Celery's sending options (`{"time_limit": 600}`), kept with the message.
    """
    message = OutboxMessage(
        task=task.name,
        args=list(args),
        subject=subject,
        argsrepr=argsrepr[:200],
        data_key=data_key,
        options=dict(options or {}),
    )
    if secret_args:
        if data_key is None:
            raise ValueError("secret_args need the data key of their owner")
        message.secret_args = json.dumps(secret_args)
    message.save()
    message_id = message.pk
    transaction.on_commit(lambda: outbox_publish([message_id]))
    return message


def outbox_publish(
    ids: list[int] | None = None, *, older_than: timedelta | None = None, limit: int = SWEEP_BATCH
) -> int:
    """Send unpublished messages (these `ids`, or the oldest ones); how many were sent.

    Stops at the first broker error: the rest would fail the same way, and the
    sweep sends them later.
    """
    from pipetower.config.celery import app

    pending = OutboxMessage.objects.filter(published_at__isnull=True).order_by("id")
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    if older_than is not None:
        pending = pending.filter(created_at__lte=timezone.now() - older_than)
    sent = 0
    for message in pending.select_related("data_key")[:limit]:
        args = list(message.args)
        if message.secret_args:
            args += json.loads(message.secret_args)
        options: dict[str, Any] = {**message.options, "task_id": f"{TASK_ID_PREFIX}{message.pk}"}
        if message.argsrepr:
            options["argsrepr"] = message.argsrepr
        try:
            app.tasks[message.task].apply_async(args=tuple(args), **options)
        except BROKER_ERRORS as exc:
            if app.conf.task_always_eager:
                raise  # the task itself failed, in this process: not a broker outage
            OutboxMessage.objects.filter(pk=message.pk).update(
                attempts=F("attempts") + 1, last_error=exc.__class__.__name__[:200]
            )
            logger.warning(
                "The broker did not take task %s (outbox message %s): %s. "
                "It stays in the outbox and is sent when the broker is back.",
                message.task,
                message.pk,
                exc.__class__.__name__,
            )
            break
        OutboxMessage.objects.filter(pk=message.pk).update(
            published_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        sent += 1
    return sent


def outbox_sweep(*, grace: timedelta = SWEEP_GRACE) -> int:
    """Send what the relay could not (run by the scheduler); forget old started rows."""
    sent = outbox_publish(older_than=grace)
    OutboxMessage.objects.filter(started_at__lt=timezone.now() - KEEP_STARTED).delete()
    if sent:
        logger.info("The outbox sweep sent %s waiting task(s).", sent)
    return sent


def outbox_started(task_id: str | None) -> None:
    """Mark the message behind `task_id` as started (from the worker's task_prerun)."""
    if not task_id or not task_id.startswith(TASK_ID_PREFIX):
        return
    try:
        message_id = int(task_id.removeprefix(TASK_ID_PREFIX))
    except ValueError:
        return
    OutboxMessage.objects.filter(pk=message_id, started_at__isnull=True).update(
        started_at=timezone.now()
    )


def outbox_pending(subject: str) -> bool:
    """Whether work about `subject` still waits for a worker to start it."""
    return OutboxMessage.objects.filter(subject=subject, started_at__isnull=True).exists()


def outbox_waiting(subjects: list[str]) -> dict[str, str]:
    """For each of `subjects` whose work has not started: what it waits for.

    "broker": not yet accepted by the task queue (down; the sweep sends it
    again); "worker": queued, no worker has started it yet. One query.
    """
    waiting: dict[str, str] = {}
    if not subjects:
        return waiting
    for subject, published_at in OutboxMessage.objects.filter(
        subject__in=subjects, started_at__isnull=True
    ).values_list("subject", "published_at"):
        if published_at is None or subject not in waiting:
            waiting[subject] = "broker" if published_at is None else "worker"
    return waiting


def outbox_backlog() -> dict[str, Any]:
    """How many messages wait to be sent, and since when (for /healthz)."""
    waiting = OutboxMessage.objects.filter(published_at__isnull=True)
    oldest = waiting.order_by("id").values_list("created_at", flat=True).first()
    return {
        "waiting": waiting.count(),
        "oldest_seconds": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
        "sweep_seconds": settings.OUTBOX_SWEEP_SECONDS,
    }
