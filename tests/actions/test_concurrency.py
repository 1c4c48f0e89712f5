"""The run state under real concurrency: separate processes (spawned interpreters and
real Celery workers) change the same runs at the same moment, on SQLite and PostgreSQL.

Every run-state change locks the Run row first and recounts inside that lock, and a
claim counts the run's active targets under that lock (services.py, "run state").
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from pipetower.actions import services
from pipetower.actions.models import Run, RunStatus, TargetStatus
from tests.actions.conftest import add_server, pinned_server
from tests.actions.test_worker import Worker, purge_filesystem_queue, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINAL = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}


def run_processes(*jobs: tuple[Callable[..., None], tuple[Any, ...]], timeout: float = 90) -> None:
    """Start each job in its own spawned process, wait for all; each must exit cleanly."""
    from tests.actions import procs  # noqa: F401  (importable by the children)

    connections.close_all()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=f, args=args) for f, args in jobs]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
    alive = [p for p in processes if p.is_alive()]
    for process in alive:
        process.kill()
    assert not alive, "a process hung (a deadlock?)"
    assert [p.exitcode for p in processes] == [0] * len(processes)


def start_runs(action: Any, actor: Any, servers: list[Any], count: int) -> list[Run]:
    return [
        services.run_start(action=action, actor=actor, server_ids=[s.pk for s in servers])
        for _ in range(count)
    ]


def test_shards_of_many_runs_finishing_together_in_separate_processes_all_end_final(
    team, user, sshd, make_action, tasks_queued, settings
):
    from tests.actions import procs

    settings.ACTIONS_SHARD_SIZE = 1  # two targets: two shards per run
    servers = [add_server(team, user, sshd, name=f"web-{i}") for i in range(2)]
    runs = start_runs(make_action("echo done"), user, servers, 12)
    shards = [
        [
            (run.pk, [t])
            for run in runs
            for t in [sorted(run.targets.values_list("pk", flat=True))[i]]
        ]
        for i in range(2)
    ]
    barrier = multiprocessing.get_context("spawn").Barrier(2)
    run_processes(
        (procs.execute_shards, (shards[0], barrier, "worker-a")),
        (procs.execute_shards, (shards[1], barrier, "worker-b")),
    )
    purge_filesystem_queue()
    statuses = list(
        Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
    )
    assert statuses == [RunStatus.SUCCEEDED] * len(runs)
    assert all(Run.objects.get(pk=r.pk).finished_at is not None for r in runs), (
        "a final run has its finish time"
    )


def test_cancel_racing_with_claims_never_deadlocks_and_every_run_ends(
    team, user, make_action, tasks_queued
):
    from tests.actions import procs

    servers = [pinned_server(team, f"db-{i}", port=9) for i in range(12)]
    runs = start_runs(make_action("true", concurrency=4), user, servers, 15)
    ids = [run.pk for run in runs]
    barrier = multiprocessing.get_context("spawn").Barrier(3)
    run_processes(
        (procs.claim_and_finish, (ids, barrier, "worker-a")),
        (procs.claim_and_finish, (ids, barrier, "worker-b")),
        (procs.cancel_each, (ids, barrier)),
    )
    purge_filesystem_queue()
    for run in Run.objects.filter(pk__in=ids):
        assert run.status in FINAL, run
        assert not run.targets.exclude(
            status__in=[TargetStatus.SUCCEEDED, TargetStatus.CANCELLED]
        ).exists()
        assert run.cancel_requested_at is not None or run.status == RunStatus.SUCCEEDED


def _intervals(folder: Path) -> list[tuple[float, float]]:
    spans = []
    for item in folder.iterdir():
        start, end = item.read_text().split()
        spans.append((float(start), float(end)))
    return sorted(spans)


def test_concurrency_one_holds_across_shards_on_three_worker_processes(
    team, user, sshd_fleet, make_action, tasks_queued, settings
):
    """Nine servers (three sshd, three server rows each), shards of two, three workers:
    the scripts write when they start and end on the server; no two overlap."""
    purge_filesystem_queue()
    settings.ACTIONS_SHARD_SIZE = 2
    folder = Path(tempfile.mkdtemp(prefix="pt-concurrency-"))
    os.chmod(folder, 0o777)  # the scripts run as the sshd test user
    fleet = sshd_fleet(3)
    servers = [
        add_server(team, user, daemon, name=f"host-{n}-{i}")
        for n, daemon in enumerate(fleet)
        for i in range(3)
    ]
    script = (
        f'f={folder}/"$PT_TARGET_ID"; date +%s.%N > "$f.tmp"; sleep 0.3; '
        f'date +%s.%N >> "$f.tmp"; mv "$f.tmp" "$f"'
    )
    workers = [Worker(wait=False) for _ in range(3)]
    try:
        for worker in workers:
            worker.wait_ready()
        run = services.run_start(
            action=make_action(script, concurrency=1),
            actor=user,
            server_ids=[s.pk for s in servers],
        )
        assert run.shard_count == 5
        wait_for(lambda: Run.objects.get(pk=run.pk).status in FINAL, timeout=60, what="the run")
    finally:
        for worker in workers:
            worker.stop()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert len(set(run.targets.values_list("worker", flat=True))) > 1, "shards were shared"
    spans = _intervals(folder)
    assert len(spans) == 9
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two scripts ran at once: {spans}"
