"""Celery tasks of the support app: thin adapters that call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="pipetower.support.tasks.newsletter_send_task", ignore_result=True)
def newsletter_send_task(newsletter_id: int) -> int:
    from pipetower.support.models import Newsletter
    from pipetower.support.services import newsletter_send

    return newsletter_send(newsletter=Newsletter.objects.get(pk=newsletter_id))


@shared_task(name="pipetower.support.tasks.survey_send_task", ignore_result=True)
def survey_send_task(survey_id: int) -> int:
    from pipetower.support.models import Survey
    from pipetower.support.services import survey_send

    return survey_send(survey=Survey.objects.get(pk=survey_id))
