"""Approvals: a run of an action that requires approval waits for a second person, an
admin or owner who did not ask for it; approve/deny/expire are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipetower.actions import approvals, services
from pipetower.actions.approvals import OWN_REQUEST, approval_refusal
from pipetower.actions.models import ApprovalRequest, Run, RunStatus, TargetStatus
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.models import OutboxMessage
from pipetower.teams.models import Role
from tests.actions.conftest import execute, output_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def gated(make_action):
    return make_action("echo approved-and-ran", name="Deploy", requires_approval=True)


def shards_queued(run: Run) -> int:
    return OutboxMessage.objects.filter(subject=services.run_subject(run.pk)).count()


def ask(action, actor, servers, **kw) -> Run:
    return services.run_start(action=action, actor=actor, server_ids=[s.pk for s in servers], **kw)


def test_a_run_of_an_action_that_requires_approval_waits_and_queues_nothing(gated, admin, web1):
    run = ask(gated, admin, [web1])
    assert run.status == RunStatus.PENDING_APPROVAL
    assert run.get_status_display() == "Waiting for approval"
    assert not run.is_finished
    assert shards_queued(run) == 0
    request = ApprovalRequest.objects.get(run=run)
    assert request.requested_by == admin and request.is_waiting
    assert request.expires_at - request.created_at == timedelta(hours=24)
    assert AuditEvent.objects.filter(verb="run.approval_requested", target_id=str(run.pk)).exists()


def test_an_action_without_approval_queues_its_shards_at_once(make_action, user, web1):
    run = ask(make_action(), user, [web1])
    assert run.status == RunStatus.QUEUED
    assert shards_queued(run) == 1
    assert not ApprovalRequest.objects.filter(run=run).exists()


def test_the_requester_cannot_approve_their_own_run(gated, admin, web1):
    run = ask(gated, admin, [web1])
    with pytest.raises(NotAllowed) as caught:
        approvals.approval_approve(run=run, actor=admin)
    assert caught.value.message == OWN_REQUEST
    assert caught.value.code == "own_request"
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING_APPROVAL and shards_queued(run) == 0


def test_the_requester_cannot_deny_their_own_run_either(gated, admin, web1):
    run = ask(gated, admin, [web1])
    with pytest.raises(NotAllowed, match="another admin or owner must approve it"):
        approvals.approval_deny(run=run, actor=admin, reason="changed my mind")


def test_an_operator_cannot_approve(gated, admin, operator, web1):
    run = ask(gated, admin, [web1])
    with pytest.raises(NotAllowed, match="Only admins and owners can approve or deny runs"):
        approvals.approval_approve(run=run, actor=operator)


def test_someone_outside_the_team_cannot_approve(gated, admin, web1):
    from tests.factories import UserFactory

    run = ask(gated, admin, [web1])
    with pytest.raises(NotAllowed, match="not a member"):
        approvals.approval_approve(run=run, actor=UserFactory())


def test_another_admin_approves_and_the_shards_are_queued_once(gated, user, admin, web1):
    run = ask(gated, admin, [web1])
    approved = approvals.approval_approve(run=run, actor=user)
    assert approved.status == RunStatus.QUEUED
    assert shards_queued(run) == 1
    request = ApprovalRequest.objects.get(run=run)
    assert (request.decision, request.decided_by) == ("approved", user)
    event = AuditEvent.objects.get(verb="run.approved", target_id=str(run.pk))
    assert event.actor == user


def test_a_decided_request_cannot_be_decided_again(gated, user, admin, web1, make_member):
    other = make_member(Role.ADMIN, email="cy@example.com")
    run = ask(gated, admin, [web1])
    approvals.approval_approve(run=run, actor=user)
    with pytest.raises(Conflict) as caught:
        approvals.approval_approve(run=run, actor=other)
    assert caught.value.code == "already_decided"
    assert "already approved" in caught.value.message
    with pytest.raises(Conflict):
        approvals.approval_deny(run=run, actor=other, reason="too late")
    assert shards_queued(run) == 1


def test_a_denied_run_ends_cancelled_and_nothing_starts(gated, user, admin, web1):
    run = ask(gated, admin, [web1])
    denied = approvals.approval_deny(run=run, actor=user, reason="Not during the freeze")
    assert denied.status == RunStatus.CANCELLED and denied.finished_at is not None
    target = denied.targets.get()
    assert target.status == TargetStatus.CANCELLED
    assert target.error == "Not started: denied by Ada Lovelace: Not during the freeze"
    assert shards_queued(run) == 0
    assert services.run_targets_claim(
        run_id=run.pk, target_ids=[target.pk], worker="w", want=1
    ) == ([], [])
    event = AuditEvent.objects.get(verb="run.approval_denied")
    assert event.data["reason"] == "Not during the freeze"


def test_a_denial_needs_a_reason(gated, user, admin, web1):
    run = ask(gated, admin, [web1])
    with pytest.raises(ServiceError, match="Say why"):
        approvals.approval_deny(run=run, actor=user, reason="   ")
    with pytest.raises(ServiceError, match="at most 500"):
        approvals.approval_deny(run=run, actor=user, reason="x" * 501)


def test_an_unanswered_request_expires_and_its_run_ends_not_started(gated, user, admin, web1):
    run = ask(gated, admin, [web1])
    later = timezone.now() + timedelta(hours=25)
    assert approvals.approvals_expire_due(now=timezone.now()) == 0
    assert approvals.approvals_expire_due(now=later) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.targets.get().error == "Not started: the approval request expired"
    assert ApprovalRequest.objects.get(run=run).decision == "expired"
    assert AuditEvent.objects.filter(verb="run.approval_expired").count() == 1
    with pytest.raises(Conflict) as caught:
        approvals.approval_approve(run=run, actor=user)
    assert caught.value.code == "expired"


def test_a_request_past_its_expiry_cannot_be_approved_before_the_sweep(gated, user, admin, web1):
    run = ask(gated, admin, [web1])
    ApprovalRequest.objects.filter(run=run).update(expires_at=timezone.now() - timedelta(1))
    with pytest.raises(Conflict, match="expired"):
        approvals.approval_approve(run=run, actor=user)


def test_the_expiry_follows_the_setting(gated, admin, web1, settings):
    settings.ACTIONS_APPROVAL_HOURS = 2
    run = ask(gated, admin, [web1])
    request = ApprovalRequest.objects.get(run=run)
    assert request.expires_at - request.created_at == timedelta(hours=2)


def test_a_scheduled_or_system_run_also_waits_and_anyone_admin_may_approve(gated, user, web1):
    run = ask(gated, None, [web1], trigger=Run.Trigger.SCHEDULE)
    assert run.status == RunStatus.PENDING_APPROVAL
    assert ApprovalRequest.objects.get(run=run).requested_by is None
    assert approval_refusal(run=run, actor=user) is None


def test_the_reaper_and_a_recount_leave_a_waiting_run_waiting(gated, admin, web1):
    run = ask(gated, admin, [web1])
    services.run_targets_reap(now=timezone.now() + timedelta(hours=1))
    assert services.run_status_refresh(run_id=run.pk) == RunStatus.PENDING_APPROVAL
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING_APPROVAL


def test_the_requester_can_cancel_a_waiting_run_and_it_is_no_longer_waiting(
    gated, user, admin, web1
):
    run = ask(gated, admin, [web1])
    services.run_cancel(run=run, actor=admin)
    refusal = approval_refusal(run=Run.objects.get(pk=run.pk), actor=user)
    assert refusal is not None and refusal.code == "no_approval"
    approvals.approvals_expire_due(now=timezone.now() + timedelta(days=2))
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_admins_and_owners_but_not_the_requester_are_mailed(
    gated, user, admin, operator, web1, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ask(gated, admin, [web1])
    assert sorted(m.to[0] for m in mailoutbox) == [user.email]
    assert "Approval needed: Deploy" in mailoutbox[0].subject


def test_an_approved_run_runs_on_a_real_server(gated, user, admin, ssh_server):
    run = ask(gated, admin, [ssh_server])
    approvals.approval_approve(run=run, actor=user)
    run = execute(Run.objects.get(pk=run.pk))
    assert run.status == RunStatus.SUCCEEDED
    assert "approved-and-ran" in output_of(run.targets.get())


def test_requires_approval_is_a_setting_not_a_new_version(make_action, user):
    action = make_action()
    updated = services.action_update(action=action, actor=user, requires_approval=True)
    assert updated.requires_approval is True
    assert updated.current_version == 1


def test_a_schedule_skips_its_next_time_while_its_previous_run_waits_for_approval(
    gated, user, web1
):
    from pipetower.actions import schedules
    from pipetower.actions.models import Schedule

    schedule = schedules.schedule_create(
        action=gated,
        actor=user,
        name="every five",
        cron_expression="*/5 * * * *",
        timezone_name="UTC",
        server_ids=[web1.pk],
    )
    first_slot = schedule.next_run_at
    schedules.schedules_tick(now=first_slot)
    first = Run.objects.get()
    assert first.status == RunStatus.PENDING_APPROVAL
    assert ApprovalRequest.objects.get(run=first).requested_by is None
    assert schedules.schedules_tick(now=first_slot + timedelta(minutes=5)) == 0
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.SKIPPED_OVERLAP


def test_the_run_history_purge_keeps_a_run_waiting_for_approval(gated, admin, web1):
    from pipetower.teams.retention import runs_expired_purge

    run = ask(gated, admin, [web1])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=400))
    runs_expired_purge(now=timezone.now() + timedelta(days=400))
    assert Run.objects.filter(pk=run.pk, status=RunStatus.PENDING_APPROVAL).exists()


def test_the_list_puts_waiting_requests_first_then_the_newest_decisions(gated, user, admin, web1):
    from pipetower.actions.selectors import approvals_for_team

    older, newer, waiting = (ask(gated, admin, [web1]) for _ in range(3))
    approvals.approval_deny(run=older, actor=user, reason="first")
    approvals.approval_approve(run=newer, actor=user)
    listed = [a.run_id for a in approvals_for_team(team=gated.team)]
    assert listed == [waiting.pk, newer.pk, older.pk]
    assert [a.run_id for a in approvals_for_team(team=gated.team, state="waiting")] == [waiting.pk]


def test_a_team_scheduled_for_deletion_approves_nothing(gated, user, admin, web1, team):
    run = ask(gated, admin, [web1])
    type(team).objects.filter(pk=team.pk).update(
        deletion_scheduled_for=timezone.now() + timedelta(days=14)
    )
    with pytest.raises(Conflict) as caught:
        approvals.approval_approve(run=run, actor=user)
    assert caught.value.code == "team_frozen"
    assert shards_queued(run) == 0
