"""Celery tasks of the teams app: thin adapters that call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="pipetower.teams.tasks.invitation_send_task", ignore_result=True)
def invitation_send_task(invitation_id: int, token: str) -> None:
    """Mail an invitation link.

    The raw token travels in this task's arguments and nowhere else: the
    database keeps only its SHA-256. That is acceptable because the broker is
    internal to the deployment; the service that enqueues this task masks the
    token in Celery's logs and events with `argsrepr`, and the task builds the
    link itself so it can first check the token is still the invitation's
    current one (see `services._enqueue_invitation_email`).
    """
    from pipetower.teams.services import invitation_email_send

    invitation_email_send(invitation_id=invitation_id, token=token)


@shared_task(name="pipetower.teams.tasks.invitations_purge_task", ignore_result=True)
def invitations_purge_task() -> int:
    """Run by the scheduler: delete invitations that expired more than 30 days ago."""
    from pipetower.teams.services import invitations_purge

    return invitations_purge()


@shared_task(name="pipetower.teams.tasks.runs_expired_purge_task", ignore_result=True)
def runs_expired_purge_task() -> dict[str, int]:
    """Run by the scheduler: delete finished runs older than their team's run history
    period, with their results per server and output (teams/retention.py)."""
    from pipetower.teams.retention import runs_expired_purge

    return runs_expired_purge().as_dict()
