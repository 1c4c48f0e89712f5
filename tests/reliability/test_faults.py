"""Fault injection with real processes: each run still reaches a final state in a stated bound.

A real `pipetower worker` runs the shards (on the suite's broker and database);
the faults are real: the sshd of a target (and its session processes) killed
mid-script, a host that accepts TCP and never answers. For each: the run ends within
`FINAL_BOUND` seconds of the fault, the output produced before it is kept, and
the target's state says what happened. (Redis stopped and restarted mid-run is
in test_broker_outage.py.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from pipetower.actions import services
from pipetower.actions.models import Run, RunStatus, TargetStatus
from pipetower.config.celery import app
from tests.actions.conftest import add_server, output_of, pinned_server
from tests.core._ops import descendants, kill_all, wait_until
from tests.reliability.procs import Worker, purge_queues, start_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Seconds from the fault to the run's final state. The connect timeout of a
# silent host is 10 s (ACTIONS_CONNECT_TIMEOUT); the rest is slack for a
# machine shared with other work.
FINAL_BOUND = 45


@pytest.fixture
def worker() -> Iterator[Worker]:
    app.conf.task_always_eager = False
    purge_queues()
    running = start_worker(queues=",".join(settings.TASK_QUEUES), concurrency=2)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        purge_queues()
        app.conf.task_always_eager = True


def finished_within(run: Run, seconds: float, worker: Worker) -> tuple[Run, float]:
    started = time.monotonic()
    wait_until(
        lambda: Run.objects.get(pk=run.pk).finished_at,
        timeout=seconds,
        interval=0.2,
        what=f"run {run.pk} to reach a final state\n{worker.output()}",
    )
    return Run.objects.get(pk=run.pk), time.monotonic() - started


def wait_for_output(run: Run, text: str, worker: Worker) -> None:
    wait_until(
        lambda: text in output_of(run.targets.get()),
        timeout=60,
        interval=0.1,
        what=f"{text!r} in the output\n{worker.output()}",
    )


def test_sshd_killed_mid_script(
    worker: Worker, team: Any, user: Any, sshd: Any, make_action: Any
) -> None:
    server = add_server(team, user, sshd, name="web-1")
    run = services.run_start(
        action=make_action("echo before; sleep 60; echo after"), actor=user, server_ids=[server.pk]
    )
    wait_for_output(run, "before\n", worker)

    assert sshd.process is not None
    kill_all([*descendants(sshd.process.pid), sshd.process.pid])  # the session too

    run, seconds = finished_within(run, FINAL_BOUND, worker)
    target = run.targets.get()
    print(f"\n[fault] sshd killed: run final after {seconds:.1f} s, target {target.status}")
    assert run.status != RunStatus.SUCCEEDED
    assert target.status in {TargetStatus.UNREACHABLE, TargetStatus.FAILED}
    output = output_of(target)
    assert output.startswith("before\n") and "after" not in output  # kept, nothing made up
    assert worker.alive()


def test_a_host_that_accepts_tcp_and_never_answers(
    worker: Worker, team: Any, user: Any, silent_listener: int, make_action: Any
) -> None:
    server = pinned_server(team, "silent", silent_listener)
    run = services.run_start(action=make_action("echo hi"), actor=user, server_ids=[server.pk])

    run, seconds = finished_within(run, FINAL_BOUND, worker)
    target = run.targets.get()
    print(f"\n[fault] silent host: run final after {seconds:.1f} s, target {target.status}")
    assert target.status == TargetStatus.UNREACHABLE
    assert output_of(target).startswith("[Pipetower:")  # only its own note, no script output
    assert worker.alive()


@pytest.fixture
def worker_with_app_name() -> Iterator[Worker]:
    """A worker whose PostgreSQL connections carry a name, so they alone can be killed."""
    app.conf.task_always_eager = False
    purge_queues()
    running = start_worker(
        queues=",".join(settings.TASK_QUEUES), concurrency=2, PGAPPNAME=FAULT_APP_NAME
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        purge_queues()
        app.conf.task_always_eager = True


FAULT_APP_NAME = "pipetower-fault-worker"


def test_postgresql_kills_the_workers_connections_mid_run(
    worker_with_app_name: Worker, team: Any, user: Any, sshd: Any, make_action: Any
) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (DATABASE_URL=postgres://…)")
    worker = worker_with_app_name
    server = add_server(team, user, sshd, name="web-1")
    run = services.run_start(
        action=make_action("echo before; sleep 3; echo after"), actor=user, server_ids=[server.pk]
    )
    wait_for_output(run, "before\n", worker)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [FAULT_APP_NAME],
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1

    run, seconds = finished_within(run, FINAL_BOUND, worker)
    target = run.targets.get()
    print(f"\n[fault] pg_terminate_backend: run final after {seconds:.1f} s, {target.status}")
    # The engine retries its database writes on a new connection: the script
    # goes on and nothing it printed is lost.
    assert target.status == "succeeded", target.error
    assert output_of(target) == "before\nafter\n"
    assert worker.alive()
