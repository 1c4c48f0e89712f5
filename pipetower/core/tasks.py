from __future__ import annotations

import socket
from typing import Any

from celery import shared_task
from celery.signals import task_prerun, worker_ready
from django.utils import timezone

from pipetower.core import outbox
from pipetower.core.models import WorkerHeartbeat


@shared_task(name="pipetower.core.tasks.heartbeat_task", bind=True, ignore_result=True)
def heartbeat_task(self: Any) -> None:
    """Run by the scheduler every 15 s; /healthz reads when a worker last did it."""
    heartbeat_record(self.request.hostname or socket.gethostname())


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    heartbeat_record(getattr(sender, "hostname", None) or socket.gethostname())


def heartbeat_record(hostname: str) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )


@shared_task(name="pipetower.core.tasks.outbox_sweep_task", ignore_result=True)
def outbox_sweep_task() -> int:
    """Run by the scheduler: send the outbox messages the broker did not take."""
    return outbox.outbox_sweep()


@task_prerun.connect
def _on_task_prerun(task_id: str | None = None, **kwargs: Any) -> None:
    """A task sent through the outbox has started: its work is no longer "waiting"."""
    outbox.outbox_started(task_id)
