"""Celery tasks of the privacy app: thin adapters that call a service."""

from __future__ import annotations

from celery import shared_task

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
