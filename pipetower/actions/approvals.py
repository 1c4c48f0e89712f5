"""Approvals: a run of an action that requires approval waits until a second person,
an admin or owner of the team who did not ask for it, approves it.

    run_start ──> Run (pending_approval, targets queued, no shards) + ApprovalRequest
        approve ──> run queued, shards queued through the outbox (as run_start does)
        deny    ──> run cancelled, targets "not started"
        expire  ──> run cancelled, targets "not started" (the scheduler, every 5 minutes)

Every decision takes the Run row lock first (the engine's lock order), reads the
request afresh and asks `approval_refusal`, the one check the pages, the API and
the admin all use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.actions.models import ApprovalRequest, Run, RunStatus, TargetStatus
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.teams.models import Membership, Role, Team
from pipetower.teams.permissions import team_frozen_refusal

REASON_MAX = 500
OWN_REQUEST = "You asked for this run; another admin or owner must approve it."


def approval_hours() -> int:
    """How long a request waits for a decision before it expires."""
    return int(getattr(settings, "ACTIONS_APPROVAL_HOURS", 24))


def _name(user: Any) -> str:
    if user is None:
        return "someone"
    return str(getattr(user, "name", "") or getattr(user, "email", "") or "someone")


def approval_refusal(*, run: Run, actor: Any) -> ServiceError | None:
    """Why `actor` may not approve or deny `run` now (None: they may).

    Pages ask it to decide whether to show the buttons; the services raise what it
    returns. Pass a run read inside the lock to decide; any run to show.
    """
    approval = ApprovalRequest.objects.filter(run_id=run.pk).select_related("decided_by").first()
    if approval is None:
        return Conflict("This run is not waiting for approval.", code="no_approval")
    if approval.is_waiting and run.status != RunStatus.PENDING_APPROVAL:
        return Conflict(
            f"This run is no longer waiting for approval ({run.get_status_display().lower()}).",
            code="no_approval",
        )
    if approval.decision == ApprovalRequest.Decision.EXPIRED or (
        approval.is_waiting and approval.expires_at <= timezone.now()
    ):
        return Conflict(
            "This approval request has expired; the run was not started. "
            "Start the action again to ask anew.",
            code="expired",
        )
    if not approval.is_waiting:
        return Conflict(
            f"This request was already {approval.get_decision_display().lower()} "
            f"by {_name(approval.decided_by)}.",
            code="already_decided",
        )
    if actor is None or not getattr(actor, "is_authenticated", False):
        return NotAllowed("Only an admin or owner of the team can approve runs.")
    if approval.requested_by_id is not None and approval.requested_by_id == actor.pk:
        return NotAllowed(OWN_REQUEST, code="own_request")
    membership = Membership.objects.filter(team_id=run.team_id, user=actor).first()
    if membership is None:
        return NotAllowed("You are not a member of this team.")
    if not membership.role_enum.at_least(Role.ADMIN):
        return NotAllowed(
            "Only admins and owners can approve or deny runs. "
            f"Your role is {membership.role_enum.label}."
        )
    return None


def approval_request(*, run: Run, requested_by: Any, request: HttpRequest | None = None) -> None:
    """Hold a just-created run for approval. Called by run_start inside its
    transaction, for every trigger, instead of queueing the run's shards."""
    from pipetower.teams.services import team_members_mail

    now = timezone.now()
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    approval = ApprovalRequest.objects.create(
        team_id=run.team_id,
        run=run,
        requested_by=user,
        created_at=now,
        expires_at=now + timedelta(hours=approval_hours()),
    )
    audit_record(
        actor=requested_by,
        team=run.team,
        verb="run.approval_requested",
        target=run,
        request=request,
        data={"action": run.action_name, "expires_at": approval.expires_at.isoformat()},
    )
    deciders = Membership.objects.filter(
        team_id=run.team_id, role__in=(Role.OWNER, Role.ADMIN)
    ).select_related("user")
    addresses = sorted(
        {m.user.email for m in deciders if m.user.email and (user is None or m.user_id != user.pk)}
    )
    if addresses:
        link = settings.BASE_URL + reverse("runs:detail", args=[run.team.slug, run.pk])
        team_members_mail(
            addresses=addresses,
            subject=f"Approval needed: {run.action_name}",
            body=(
                f"{run.started_by_text if user is None else _name(user)} wants to run "
                f"{run.action_name!r} in {run.team.name}. It waits for an admin or owner "
                f"to approve it until {approval.expires_at:%Y-%m-%d %H:%M} UTC.\n\n"
                f"See the script, targets and parameters, and approve or deny it:\n{link}\n"
            ),
        )


def _locked_for_decision(run: Run, actor: Any) -> tuple[Run, ApprovalRequest]:
    """The Run row locked (the engine's lock order: run first), read afresh, and its
    request, after the refusal check."""
    from pipetower.actions.services import _lock_run

    if _lock_run(run.pk) is None:
        raise Conflict("This run no longer exists.", code="no_approval")
    fresh = Run.objects.select_related("team").get(pk=run.pk)
    if refusal := approval_refusal(run=fresh, actor=actor):
        raise refusal
    return fresh, ApprovalRequest.objects.get(run_id=run.pk)


def approval_approve(*, run: Run, actor: Any, request: HttpRequest | None = None) -> Run:
    """Approve a waiting run: it is queued and its shards go to the workers."""
    from pipetower.actions.services import _enqueue_shards

    with transaction.atomic():
        fresh, approval = _locked_for_decision(run, actor)
        # A team scheduled for deletion starts nothing, approved or not (as run_start).
        frozen = Team.objects.only("name", "deletion_scheduled_for").get(pk=fresh.team_id)
        if refusal := team_frozen_refusal(frozen):
            raise refusal
        now = timezone.now()
        approval.decision = ApprovalRequest.Decision.APPROVED
        approval.decided_by = actor
        approval.decided_at = now
        approval.save(update_fields=["decision", "decided_by", "decided_at"])
        # A new revision, so pages following the run see it leave the waiting state.
        Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, revision=F("revision") + 1)
        _enqueue_shards(run.pk)  # the outbox, in this transaction, as run_start does
        audit_record(
            actor=actor,
            team=fresh.team,
            verb="run.approved",
            target=fresh,
            request=request,
            data={"action": fresh.action_name, "requested_by": _name(approval.requested_by)},
        )
    run.refresh_from_db()
    return run


def _not_started_locked(*, run: Run, error: str) -> None:
    """End a waiting run that will not start: its targets cancelled as not started."""
    from pipetower.actions.services import _finish_queued_locked, _recount_locked

    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    _finish_queued_locked(run_id=run.pk, status=TargetStatus.CANCELLED, error=error)
    _recount_locked(run.pk)


def approval_deny(*, run: Run, actor: Any, reason: str, request: HttpRequest | None = None) -> Run:
    """Deny a waiting run: it ends cancelled, nothing ran."""
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ServiceError("Say why you deny this run.", field="reason")
    if len(reason) > REASON_MAX:
        raise ServiceError(
            f"The reason can be at most {REASON_MAX} characters long.", field="reason"
        )
    with transaction.atomic():
        fresh, approval = _locked_for_decision(run, actor)
        approval.decision = ApprovalRequest.Decision.DENIED
        approval.decided_by = actor
        approval.decided_at = timezone.now()
        approval.reason = reason
        approval.save(update_fields=["decision", "decided_by", "decided_at", "reason"])
        _not_started_locked(run=fresh, error=f"Not started: denied by {_name(actor)}: {reason}")
        audit_record(
            actor=actor,
            team=fresh.team,
            verb="run.approval_denied",
            target=fresh,
            request=request,
            data={"action": fresh.action_name, "reason": reason},
        )
    run.refresh_from_db()
    return run


def approvals_expire_due(now: datetime | None = None) -> int:
    """End the waiting requests past their expiry: their runs end as not started."""
    from pipetower.actions.services import _lock_run

    now = now or timezone.now()
    due = list(
        ApprovalRequest.objects.filter(decision="", expires_at__lte=now)
        .order_by("expires_at")
        .values_list("run_id", flat=True)[:500]
    )
    expired = 0
    for run_id in due:
        with transaction.atomic():
            if _lock_run(run_id) is None:
                continue
            approval = ApprovalRequest.objects.filter(run_id=run_id, decision="").first()
            if approval is None:
                continue  # decided meanwhile
            run = Run.objects.select_related("team").get(pk=run_id)
            approval.decision = ApprovalRequest.Decision.EXPIRED
            approval.decided_at = now
            approval.save(update_fields=["decision", "decided_at"])
            if run.status != RunStatus.PENDING_APPROVAL:
                continue  # cancelled while waiting: nothing left to end
            _not_started_locked(run=run, error="Not started: the approval request expired")
            audit_record(
                actor=None,
                team=run.team,
                verb="run.approval_expired",
                target=run,
                data={"action": run.action_name},
            )
            expired += 1
    return expired
