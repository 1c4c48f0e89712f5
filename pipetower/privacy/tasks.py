"""Celery tasks of the privacy app: thin adapters that call a service."""

from __future__ import annotations

from smtplib import SMTPException

from celery import Task, shared_task

# =============================================================================
# Export and deletion (export.py, deletion.py)
# =============================================================================


@shared_task(name="pipetower.privacy.tasks.export_build_task", ignore_result=True)
def export_build_task(job_id: int) -> None:
    """Build one person's export archive and mail them when it is ready."""
    from pipetower.privacy.export import export_build

    export_build(job_id=job_id)


@shared_task(name="pipetower.privacy.tasks.export_jobs_purge_task", ignore_result=True)
def export_jobs_purge_task() -> int:
    """Run by the scheduler: delete export files older than their 7 days."""
    from pipetower.privacy.export import export_jobs_purge

    return export_jobs_purge()


@shared_task(name="pipetower.privacy.tasks.account_deletions_purge_task", ignore_result=True)
def account_deletions_purge_task() -> int:
    """Run by the scheduler: erase accounts, then teams, whose deletion grace period ended."""
    from pipetower.privacy.deletion import account_deletions_purge, team_deletions_purge

    return account_deletions_purge() + team_deletions_purge()


@shared_task(name="pipetower.privacy.tasks.mail_expired_purge_task", ignore_result=True)
def mail_expired_purge_task() -> int:
    """Run by the scheduler: delete saved mail older than its retention period."""
    from pipetower.privacy.retention import mail_expired_purge

    return mail_expired_purge()


@shared_task(
    name="pipetower.privacy.tasks.data_subject_requests_housekeeping_task", ignore_result=True
)
def data_subject_requests_housekeeping_task() -> int:
    """Run by the scheduler: remind staff of requests at day 20 and 25 (once each)
    and delete visitors' requests never confirmed."""
    from pipetower.privacy.rights_requests import (
        data_subject_requests_remind,
        data_subject_requests_unconfirmed_purge,
    )

    return data_subject_requests_remind() + data_subject_requests_unconfirmed_purge()


# =============================================================================
# Support access (support_access.py)
# =============================================================================


@shared_task(name="pipetower.privacy.tasks.support_grant_summary_task", ignore_result=True)
def support_grant_summary_task(grant_id: int) -> bool:
    """Mail a team's owners what staff did under a grant that just ended."""
    from pipetower.privacy.support_access import support_grant_summary_send

    return support_grant_summary_send(grant_id=grant_id)


@shared_task(name="pipetower.privacy.tasks.support_grants_summarise_task", ignore_result=True)
def support_grants_summarise_task() -> int:
    """Run by the scheduler: summarise grants that expired since the last run."""
    from pipetower.privacy.support_access import support_grants_summarise

    return support_grants_summarise()


# =============================================================================
# Public registers (subprocessors.py)
# =============================================================================


@shared_task(name="pipetower.privacy.tasks.subprocessor_change_send_task", ignore_result=True)
def subprocessor_change_send_task(change_id: int) -> int:
    """Mail one change of the subprocessor list to every confirmed subscriber."""
    from pipetower.privacy.subprocessors import subprocessor_change_send

    return subprocessor_change_send(change_id=change_id)


# =============================================================================
# Privacy policy versions (policy.py)
# =============================================================================


@shared_task(
    name="pipetower.privacy.tasks.policy_announce_task",
    bind=True,
    ignore_result=True,
    max_retries=48,
)
def policy_announce_task(self: Task, number: int) -> None:
    """Email the announcement of a significant policy version to everyone not yet emailed.

    A mail server that fails is tried again a minute later; rows another sender
    claimed (it may have crashed) are looked at again once their claim expires."""
    from pipetower.privacy.policy import CLAIM_LEASE, policy_announce_send

    try:
        progress = policy_announce_send(number=number)
    except (OSError, SMTPException) as exc:
        raise self.retry(exc=exc, countdown=60) from exc
    if not progress.done:
        raise self.retry(countdown=int(CLAIM_LEASE.total_seconds()) + 1)
