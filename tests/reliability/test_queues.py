"""Separate queues: long runs never hold up an email or the heartbeat.

Real `pipetower worker` processes laid out as `pipetower serve` lays them out
(one worker for the runs queue, one for mail and housekeeping), on whatever
broker and database the suite runs with (the embedded filesystem transport
and SQLite by default; Redis and PostgreSQL when BROKER_URL / DATABASE_URL
are set). The email goes to a real SMTP server (tests/smtp.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from pipetower.actions import services
from pipetower.actions.models import Run, RunStatus, TargetStatus
from pipetower.config.celery import app
from pipetower.core.tasks import heartbeat_task
from pipetower.teams.services import invitation_create
from tests.actions.conftest import add_server, output_of
from tests.core._ops import wait_until
from tests.reliability.procs import Worker, mail_env, purge_queues, start_worker
from tests.smtp import SmtpSink

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RUN_SECONDS = 12  # each run's script; the email must arrive well before the runs end


@pytest.fixture
def tasks_to_broker() -> Iterator[None]:
    app.conf.task_always_eager = False
    purge_queues()
    yield
    purge_queues()
    app.conf.task_always_eager = True


@pytest.fixture
def serve_layout(smtp_sink: SmtpSink, tasks_to_broker: None) -> Iterator[tuple[Worker, Worker]]:
    """The two workers of `pipetower serve`: one runs worker, one for mail and housekeeping."""
    env = mail_env(smtp_sink.host, smtp_sink.port)
    runs = start_worker(queues=settings.QUEUE_RUNS, concurrency=1, **env)
    rest = start_worker(
        queues=f"{settings.QUEUE_MAIL},{settings.QUEUE_HOUSEKEEPING}", concurrency=1, **env
    )
    try:
        runs.wait_ready()
        rest.wait_ready()
        yield runs, rest
    finally:
        runs.stop()
        rest.stop()


def test_tasks_are_routed_to_their_queue() -> None:
    route = app.amqp.router.route
    assert route({}, "pipetower.actions.tasks.run_shard_execute_task")["queue"].name == "runs"
    assert route({}, "pipetower.teams.tasks.invitation_send_task")["queue"].name == "mail"
    assert route({}, "pipetower.accounts.tasks.signin_alert_send_task")["queue"].name == "mail"
    assert route({}, "pipetower.core.tasks.heartbeat_task")["queue"].name == "housekeeping"
    assert route({}, "pipetower.core.tasks.outbox_sweep_task")["queue"].name == "housekeeping"


def test_an_invitation_email_and_the_heartbeat_go_through_while_two_long_runs_hold_the_runs_worker(
    serve_layout: tuple[Worker, Worker],
    team: Any,
    user: Any,
    sshd: Any,
    make_action: Any,
    smtp_sink: SmtpSink,
    client: Client,
) -> None:
    runs_worker, rest = serve_layout
    server = add_server(team, user, sshd, name="web-1")
    action = make_action(f"echo started; sleep {RUN_SECONDS}; echo finished")
    first = services.run_start(action=action, actor=user, server_ids=[server.pk])
    second = services.run_start(action=action, actor=user, server_ids=[server.pk])
    wait_until(
        lambda: (
            first.targets.get().refresh_from_db()
            or first.targets.get().status == TargetStatus.RUNNING
        ),
        timeout=60,
        interval=0.2,
        what=f"the first run to start\n{runs_worker.output()}",
    )

    invited = time.monotonic()
    invitation_create(team=team, actor=user, email="grace@example.com", role="viewer")
    deliveries = smtp_sink.wait_for(1, timeout=30)
    print(f"\n[queues] invitation email delivered {time.monotonic() - invited:.1f} s after")

    # The email arrived while both runs still hold (or wait for) the runs worker.
    assert Run.objects.filter(pk__in=[first.pk, second.pk], finished_at__isnull=True).count() == 2
    assert deliveries[0].rcpt_tos == ["grace@example.com"]
    assert "/join/" in deliveries[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    # The heartbeat (housekeeping) is not stuck behind the runs either.
    rest.heartbeat().delete()  # type: ignore[union-attr]
    heartbeat_task.delay()
    wait_until(rest.heartbeat, timeout=30, interval=0.1, what="the heartbeat task to run")
    assert client.get("/healthz").json()["worker"]["status"] == "ok"
    assert Run.objects.get(pk=second.pk).status == RunStatus.QUEUED

    wait_until(
        lambda: (
            Run.objects.filter(pk__in=[first.pk, second.pk], finished_at__isnull=False).count() == 2
        ),
        timeout=3 * RUN_SECONDS + 60,
        interval=0.5,
        what="both runs to finish",
    )
    assert output_of(first.targets.get()) == "started\nfinished\n"
    assert runs_worker.alive() and rest.alive()
