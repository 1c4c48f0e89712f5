"""Notification tasks: adapters that load by id and call `delivery` (housekeeping queue)."""

from __future__ import annotations

from celery import shared_task

from pipetower.notifications import delivery


@shared_task(name="pipetower.notifications.tasks.notification_run_task", ignore_result=True)
def notification_run_task(run_id: int) -> int:
    """A run reached a final state: deliver what its team's rules ask for."""
    return delivery.run_notify(run_id)


@shared_task(name="pipetower.notifications.tasks.notification_send_task", ignore_result=True)
def notification_send_task(rule_id: int, run_id: int | None, event: str, attempt: int) -> None:
    """One attempt of one notification (a retry, or a test)."""
    delivery.notification_send(rule_id=rule_id, run_id=run_id, event=event, attempt=attempt)


@shared_task(name="pipetower.notifications.tasks.notification_deliveries_purge_task")
def notification_deliveries_purge_task() -> int:
    """Run by the scheduler: forget delivery log rows past PIPETOWER_NOTIFY_LOG_DAYS."""
    return delivery.deliveries_purge()
