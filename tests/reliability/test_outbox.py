"""The outbox on its own (tasks run inline here): what a transaction commits is queued,
what it rolls back is not, and the sweep leaves fresh messages to the relay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from pipetower.core.models import OutboxMessage, WorkerHeartbeat
from pipetower.core.outbox import outbox_enqueue, outbox_sweep, outbox_waiting
from pipetower.core.tasks import heartbeat_task

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_a_rolled_back_transaction_queues_nothing() -> None:
    with pytest.raises(Rollback), transaction.atomic():
        outbox_enqueue(heartbeat_task, subject="test:1")
        raise Rollback

    assert not OutboxMessage.objects.exists()
    assert not WorkerHeartbeat.objects.exists()


def test_a_committed_message_is_sent_after_the_commit_and_marked_started() -> None:
    with transaction.atomic():
        message = outbox_enqueue(heartbeat_task, subject="test:2")
        assert outbox_waiting(["test:2"]) == {"test:2": "broker"}  # not sent before the commit

    message.refresh_from_db()
    assert message.published_at is not None and message.started_at is not None
    assert WorkerHeartbeat.objects.exists()  # the task ran (inline in tests)
    assert outbox_waiting(["test:2"]) == {}


def test_the_sweep_sends_what_was_left_but_leaves_fresh_messages_to_the_relay() -> None:
    fresh = OutboxMessage.objects.create(task=heartbeat_task.name, subject="test:3")
    old = OutboxMessage.objects.create(task=heartbeat_task.name, subject="test:4")
    OutboxMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    assert outbox_sweep() == 1

    assert OutboxMessage.objects.get(pk=old.pk).published_at is not None
    assert OutboxMessage.objects.get(pk=fresh.pk).published_at is None
    assert outbox_waiting(["test:3", "test:4"]) == {"test:3": "broker"}


def test_secret_arguments_are_stored_encrypted() -> None:
    from pipetower.core import crypto

    key = crypto.data_key_create(purpose="test")
    with transaction.atomic():
        message = outbox_enqueue(
            heartbeat_task, secret_args=["tok-planted-123"], data_key=key, subject="test:5"
        )
        stored = OutboxMessage.objects.filter(pk=message.pk).values_list("secret_args", flat=True)
        assert "tok-planted-123" not in stored[0]
        transaction.set_rollback(True)  # heartbeat_task takes no such argument
