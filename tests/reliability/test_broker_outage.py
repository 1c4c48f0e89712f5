"""The broker goes away: workers survive, committed work is not lost, people see the truth.

Each test runs a redis-server of its own on a free loopback port and stops it
for real (tests/reliability/procs.py); the web side is this test process
(Django's test client), the workers are real `pipetower worker` processes.
Runs on SQLite and on PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.actions import services
from pipetower.actions.models import Run, RunStatus, TargetStatus
from pipetower.core.models import OutboxMessage
from pipetower.core.outbox import outbox_sweep
from pipetower.core.tasks import heartbeat_task
from pipetower.teams.models import Invitation
from tests.actions.conftest import add_server, output_of
from tests.core._ops import wait_until
from tests.reliability.procs import OwnRedis, mail_env, start_worker, tasks_sent_to
from tests.smtp import SmtpSink

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 8
# Celery waits 2, 4, 6, 8 … s between attempts to reconnect: after an outage of
# OUTAGE_SECONDS the worker is back within about that much again.
RECONNECT_BOUND = 40


def test_the_worker_outlives_a_redis_outage_during_a_run_and_takes_new_work_after(
    own_redis: OwnRedis, team: Any, user: Any, sshd: Any, make_action: Any, client: Client
) -> None:
    own_redis.start()
    # Two task processes, as `pipetower serve` and most deployments run: with one,
    # celery/kombu 5.7.0 happen not to trip over the closed connection.
    worker = start_worker(queues="runs,mail,housekeeping", concurrency=2, broker_url=own_redis.url)
    try:
        worker.wait_ready()
        server = add_server(team, user, sshd, name="web-1")
        action = make_action(f"echo before; sleep {OUTAGE_SECONDS // 2}; echo after")
        with tasks_sent_to(own_redis.url):
            run = services.run_start(action=action, actor=user, server_ids=[server.pk])
            wait_until(
                lambda: run.targets.filter(status=TargetStatus.RUNNING).exists(),
                timeout=60,
                interval=0.1,
                what=f"the run to start\n{worker.output()}",
            )

            own_redis.stop()  # in the middle of the run (a late-acknowledged task)
            time.sleep(OUTAGE_SECONDS)
            assert worker.alive(), f"the worker died with the broker:\n{worker.output()}"
            own_redis.start()

            # Output produced during the outage is kept; the run ends normally.
            wait_until(
                lambda: Run.objects.get(pk=run.pk).finished_at,
                timeout=60,
                what="the run to end",
            )
            assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
            assert output_of(run.targets.get()) == "before\nafter\n"

            # The worker reconnected: a task sent now runs.
            worker.heartbeat().delete()  # type: ignore[union-attr]
            heartbeat_task.delay()
            wait_until(
                worker.heartbeat,
                timeout=RECONNECT_BOUND,
                interval=0.2,
                what=f"the worker to take a task after Redis came back\n{worker.output()}",
            )
        assert worker.alive()
        assert "Unrecoverable error" not in worker.output()
    finally:
        worker.stop()


def test_healthz_says_the_broker_is_down_and_comes_back(
    own_redis: OwnRedis, client: Client, settings: Any
) -> None:
    settings.BROKER_URL = own_redis.url  # nothing listens yet

    body = client.get("/healthz").json()

    assert body["broker"]["status"] == "error"
    assert body["broker"]["detail"] == "ConnectionError"
    assert "broker" in body["down"]
    assert body["status"] == "degraded"
    assert str(own_redis.port) not in str(body)  # no address in the answer

    own_redis.start()
    body = client.get("/healthz").json()
    assert body["broker"] == {"status": "ok", "transport": "redis"}
    assert "broker" not in body.get("down", [])


def test_healthz_says_the_cache_is_down(client: Client, settings: Any) -> None:
    from tests.sshd import pick_free_port

    closed = pick_free_port()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed}/0",
        }
    }

    body = client.get("/healthz").json()

    assert body["cache"]["status"] == "error"
    assert "cache" in body["down"]
    assert body["database"]["status"] == "ok"


def test_a_run_started_while_the_broker_is_down_says_so_and_runs_once_it_is_back(
    own_redis: OwnRedis,
    owner_client: Client,
    team: Any,
    user: Any,
    sshd: Any,
    make_action: Any,
) -> None:
    server = add_server(team, user, sshd, name="web-1")
    action = make_action("echo ran after the outage")
    with tasks_sent_to(own_redis.url):  # stopped: nothing listens on its port
        response = owner_client.post(
            reverse("actions:run", args=[team.slug, action.pk]), {"servers": [server.pk]}
        )

        assert response.status_code == 302, response.content[:2000]
        run = Run.objects.get(action=action)
        page = owner_client.get(response["Location"]).content.decode()
        assert "Queued, waiting for the worker: the task queue did not answer yet." in page
        message = OutboxMessage.objects.get(subject=f"actions.run:{run.pk}")
        assert message.published_at is None and message.attempts == 1
        assert message.last_error

        own_redis.start()
        worker = start_worker(queues="runs,mail,housekeeping", broker_url=own_redis.url)
        try:
            worker.wait_ready()
            # What the scheduler runs every 15 s (without the grace it leaves the relay).
            assert outbox_sweep(grace=timedelta(0)) == 1
            wait_until(
                lambda: Run.objects.get(pk=run.pk).finished_at,
                timeout=60,
                what=f"the run to end\n{worker.output()}",
            )
        finally:
            worker.stop()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    assert output_of(run.targets.get()) == "ran after the outage\n"
    page = owner_client.get(response["Location"]).content.decode()
    assert "waiting for the worker" not in page
    assert outbox_sweep(grace=timedelta(0)) == 0  # sent once, not again


def test_an_invitation_made_while_the_broker_is_down_shows_sending_until_it_is_mailed(
    own_redis: OwnRedis, owner_client: Client, team: Any, smtp_sink: SmtpSink
) -> None:
    members = reverse("teams:members", args=[team.slug])
    with tasks_sent_to(own_redis.url):
        response = owner_client.post(
            members, {"email": "grace@example.com", "role": "viewer"}, follow=True
        )

        assert response.status_code == 200
        page = response.content.decode()
        assert "Invitation is being sent to grace@example.com." in page
        assert '<span class="badge badge-sending">Sending</span>' in page
        invitation = Invitation.objects.get(email="grace@example.com")
        message = OutboxMessage.objects.get(subject=f"teams.invitation:{invitation.pk}")
        # The raw token waits encrypted, never in the clear.
        raw_secret = OutboxMessage.objects.filter(pk=message.pk).values_list(
            "secret_args", flat=True
        )[0]
        assert invitation.token_hash not in raw_secret and "[" not in raw_secret
        assert smtp_sink.deliveries == []

        own_redis.start()
        worker = start_worker(
            queues="mail,housekeeping",
            broker_url=own_redis.url,
            **mail_env(smtp_sink.host, smtp_sink.port),
        )
        try:
            worker.wait_ready()
            assert outbox_sweep(grace=timedelta(0)) == 1
            deliveries = smtp_sink.wait_for(1, timeout=30)
        finally:
            worker.stop()
    assert deliveries[0].rcpt_tos == ["grace@example.com"]
    page = owner_client.get(members).content.decode()
    assert "badge-sending" not in page
