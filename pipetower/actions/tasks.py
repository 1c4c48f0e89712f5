"""Celery tasks: thin adapters that take ids and call the engine or a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from pipetower.actions import engine, services


@shared_task(
    name="pipetower.actions.tasks.run_shard_execute_task",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_shard_execute_task(self: Any, run_id: int, target_ids: list[int]) -> int:
    """Run one shard of a run. Safe to deliver twice: only queued targets are claimed."""
    return engine.shard_execute(
        run_id=run_id, target_ids=target_ids, worker=self.request.hostname or ""
    )


@shared_task(name="pipetower.actions.tasks.run_targets_reap_task", ignore_result=True)
def run_targets_reap_task() -> int:
    """Periodic (scheduler): end targets whose worker stopped reporting as worker_lost."""
    return services.run_targets_reap()


@shared_task(name="pipetower.actions.tasks.schedules_tick_task", ignore_result=True)
def schedules_tick_task() -> int:
    """Periodic (scheduler): start the runs of schedules whose time has come."""
    from pipetower.actions import schedules

    return schedules.schedules_tick()


@shared_task(name="pipetower.actions.tasks.approvals_expire_task", ignore_result=True)
def approvals_expire_task() -> int:
    """Periodic (scheduler): runs whose approval request expired end as not started."""
    from pipetower.actions import approvals

    return approvals.approvals_expire_due()


@shared_task(name="pipetower.actions.tasks.webhook_deliveries_purge_task", ignore_result=True)
def webhook_deliveries_purge_task() -> int:
    """Periodic (scheduler): forget webhook deliveries older than the replay window."""
    from pipetower.actions import webhooks

    return webhooks.webhook_deliveries_purge()
