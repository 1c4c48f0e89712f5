from __future__ import annotations

from celery import shared_task


@shared_task(name="pipetower.teams.tasks.invitations_purge_task", ignore_result=True)
def invitations_purge_task() -> None:
    """Placeholder replaced by the teams work."""
