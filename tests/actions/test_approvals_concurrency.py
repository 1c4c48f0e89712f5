"""Two admins approving the same runs at the same moment, in real separate processes
on PostgreSQL: for each run exactly one wins, and its shards are queued once.

A decision locks the Run row first and reads the request afresh under that lock
(actions/approvals.py), so the second admin is told it was already approved.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from django.db import connection

from pipetower.actions import services
from pipetower.actions.models import ApprovalRequest, RunStatus
from pipetower.audit.models import AuditEvent
from pipetower.core.models import OutboxMessage
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server
from tests.actions.test_concurrency import run_processes
from tests.actions.test_worker import purge_filesystem_queue

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_two_admins_approving_at_once_start_each_run_once(
    team, user, make_member, make_action, tasks_queued, settings, tmp_path: Path
):
    if connection.vendor != "postgresql":
        # The processes reach the test database through DATABASE_URL, and a SQLite
        # DATABASE_URL gets no IMMEDIATE transactions; the embedded default's
        # SQLite serialises every write anyway. Row locks are PostgreSQL's question.
        pytest.skip("row locking between processes is tested on PostgreSQL")
    from tests.actions import procs

    settings.ACTIONS_SHARD_SIZE = 1  # two servers: two shards per run
    requester = make_member(Role.OPERATOR)
    other_admin = make_member(Role.ADMIN)
    servers = [pinned_server(team, f"web-{i}", port=9) for i in range(2)]
    action = make_action("true", name="Gated", requires_approval=True)
    runs = [
        services.run_start(action=action, actor=requester, server_ids=[s.pk for s in servers])
        for _ in range(10)
    ]
    ids = [run.pk for run in runs]
    barrier = multiprocessing.get_context("spawn").Barrier(2)
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    run_processes(
        (procs.approve_each, (ids, barrier, user.pk, str(out_a))),
        (procs.approve_each, (ids, barrier, other_admin.pk, str(out_b))),
    )
    purge_filesystem_queue()
    won_a = {int(i) for i in out_a.read_text().split(",") if i}
    won_b = {int(i) for i in out_b.read_text().split(",") if i}
    assert won_a | won_b == set(ids)
    assert won_a & won_b == set()
    for run in runs:
        run.refresh_from_db()
        assert run.status != RunStatus.PENDING_APPROVAL
        assert OutboxMessage.objects.filter(subject=services.run_subject(run.pk)).count() == 2
        assert AuditEvent.objects.filter(verb="run.approved", target_id=str(run.pk)).count() == 1
        approval = ApprovalRequest.objects.get(run=run)
        winner = user if run.pk in won_a else other_admin
        assert approval.decided_by_id == winner.pk
