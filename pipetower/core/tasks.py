from __future__ import annotations

import socket
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.utils import timezone

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
