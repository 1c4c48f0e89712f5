"""A task sent by the web side reaches a real `pipetower worker` process and runs.

Runs against whatever broker and database the suite is configured with: the
embedded default (filesystem transport, SQLite file) or the scale-out setup
(BROKER_URL=redis://…, DATABASE_URL=postgres://…). The worker is told where
the test database is through DATABASE_URL, as a deployment would tell it.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from pipetower.config.celery import app
from pipetower.core.models import WorkerHeartbeat
from pipetower.core.tasks import heartbeat_task
from tests.core._ops import (
    alive,
    database_url,
    descendants,
    embedded_env,
    pipetower_argv,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WORKER_START_TIMEOUT = 90


@dataclass
class RunningWorker:
    process: subprocess.Popen[bytes]
    hostname: str
    queue: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_worker(log: Path) -> RunningWorker:
    """A `pipetower worker` subprocess on a queue of its own, sharing the test database."""
    name = uuid.uuid4().hex[:10]
    hostname, queue = f"test-{name}@localhost", f"test-{name}"
    env = embedded_env(
        settings.DATA_DIR,  # same data directory: same broker folder and secrets
        DATABASE_URL=database_url(connection.settings_dict),
        **{k: v for k, v in (("BROKER_URL", settings.BROKER_URL),) if v},
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            pipetower_argv(
                "worker", "--concurrency", "1", "--queues", queue, "--hostname", hostname
            ),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningWorker(process, hostname, queue, log)


def stop_worker(worker: RunningWorker) -> None:
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@pytest.fixture(scope="module")
def shared_worker(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningWorker]:
    """One ready worker for the tests of this module that do not stop it."""
    with django_db_blocker.unblock():
        worker = start_worker(tmp_path_factory.mktemp("worker") / "worker.log")
        try:
            wait_for_worker_ready(worker)
            yield worker
        finally:
            stop_worker(worker)


@pytest.fixture
def worker(shared_worker: RunningWorker) -> RunningWorker:
    assert shared_worker.process.poll() is None, f"The worker exited:\n{shared_worker.output()}"
    return shared_worker


@pytest.fixture
def tasks_to_broker() -> Iterator[None]:
    """Send tasks through the broker, as the running web process does (tests run them eagerly)."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager


def heartbeat_of(worker: RunningWorker) -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.filter(hostname=worker.hostname).first()


def wait_for_worker_ready(worker: RunningWorker) -> None:
    """A ready worker records a heartbeat for itself (the worker_ready signal)."""

    def ready() -> bool:
        assert worker.process.poll() is None, f"The worker exited:\n{worker.output()}"
        return heartbeat_of(worker) is not None

    try:
        wait_until(ready, timeout=WORKER_START_TIMEOUT, what="the worker to be ready")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{worker.output()}") from None


def send_heartbeat_and_wait(worker: RunningWorker) -> float:
    """Send the heartbeat task to `worker`; seconds until its row appears."""
    WorkerHeartbeat.objects.filter(hostname=worker.hostname).delete()
    started = time.perf_counter()
    heartbeat_task.apply_async(queue=worker.queue)
    wait_until(
        lambda: heartbeat_of(worker), timeout=30, interval=0.005, what="the heartbeat task to run"
    )
    return time.perf_counter() - started


def test_a_task_sent_by_the_web_side_runs_in_a_real_worker_and_healthz_sees_it(
    worker: RunningWorker, tasks_to_broker: None, client: Client
) -> None:
    WorkerHeartbeat.objects.all().delete()
    assert client.get("/healthz").json()["worker"]["status"] == "unknown"

    send_heartbeat_and_wait(worker)

    body = client.get("/healthz").json()
    assert body["database"]["status"] == "ok"
    assert body["worker"]["status"] == "ok"
    assert body["status"] == "ok"


def test_round_trip_from_sending_a_task_to_its_effect_is_well_under_a_second(
    worker: RunningWorker, tasks_to_broker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    send_heartbeat_and_wait(worker)  # warm up
    trips = [send_heartbeat_and_wait(worker) for _ in range(10)]

    median = statistics.median(trips)
    with capsys.disabled():
        broker = "redis" if settings.BROKER_URL else "filesystem"
        print(
            f"\n[{broker} broker, {connection.vendor}] task round trip: "
            f"median {median * 1000:.0f} ms, max {max(trips) * 1000:.0f} ms over {len(trips)}"
        )
    assert median < 1.0


def test_the_worker_answers_remote_control(worker: RunningWorker) -> None:
    """Broadcast (fan-out) works on the broker in use: what `celery inspect` relies on."""
    replies = app.control.ping(destination=[worker.hostname], timeout=10)

    assert replies == [{worker.hostname: {"ok": "pong"}}]


def test_a_stopped_worker_leaves_no_process_behind(tmp_path: Path) -> None:
    worker = start_worker(tmp_path / "worker.log")
    try:
        wait_for_worker_ready(worker)
        pool = list(descendants(worker.process.pid))
        assert pool, "a prefork worker runs its tasks in child processes"

        worker.process.send_signal(signal.SIGTERM)

        assert worker.process.wait(timeout=30) == 0
        wait_until(lambda: not any(alive(pid) for pid in pool), timeout=10, what="the pool")
    finally:
        if worker.process.poll() is None:
            stop_worker(worker)
