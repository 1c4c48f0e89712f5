"""Celery tasks of the accounts app: thin adapters that call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="pipetower.accounts.tasks.signin_alert_send_task",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def signin_alert_send_task(event_id: int) -> None:
    """Email the person about an unusual sign-in (the task builds the link itself)."""
    from pipetower.accounts.models import SignInEvent
    from pipetower.accounts.signins import signin_alert_send

    event = SignInEvent.objects.select_related("user").filter(pk=event_id).first()
    if event is not None:
        signin_alert_send(event=event)
