"""Runs executed by a real Celery worker process, on the embedded filesystem transport and
on Redis, and what happens when that worker dies mid-run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings as django_settings

from pipetower.actions import services
from pipetower.actions.models import OutputChunk, Run, RunStatus, TargetStatus
from pipetower.actions.tasks import run_targets_reap_task
from tests.actions.conftest import add_server, output_of
from tests.sshd import pick_free_port

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, broker_url: str = "", *, wait: bool = True) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.actions.worker_settings"}
        env["PIPETOWER_DATA_DIR"] = str(django_settings.DATA_DIR)
        if broker_url:
            env["BROKER_URL"] = broker_url
        self.log = Path(django_settings.DATA_DIR) / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pipetower.config.celery",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                "-n",
                f"test-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while "ready." not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM to the main process only (it stops its pool children), then kill
        whatever is left (see tests/reliability/procs.py, Worker.stop)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def purge_filesystem_queue() -> None:
    for name in ("messages", "processed"):
        folder = Path(django_settings.DATA_DIR) / "queue" / name
        for item in folder.glob("*"):
            item.unlink(missing_ok=True)


def wait_for(condition, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if not server:
        pytest.skip("redis-server is not installed; .ci/run installs it.")
    port = pick_free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_worker_on_the_embedded_filesystem_transport_runs_a_queued_run(
    team, user, sshd, make_action, tasks_queued
):
    purge_filesystem_queue()
    server = add_server(team, user, sshd, name="web-1")
    worker = Worker()
    try:
        run = services.run_start(
            action=make_action("echo from the worker"), actor=user, server_ids=[server.pk]
        )
        wait_for(lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, what="the run")
    finally:
        worker.stop()
    target = run.targets.get()
    assert output_of(target) == "from the worker\n"
    assert target.worker.startswith("test-")


def test_a_worker_on_redis_runs_a_shard(team, user, sshd, make_action, tasks_queued, redis_url):
    server = add_server(team, user, sshd, name="web-1")
    run = services.run_start(
        action=make_action("echo via redis"), actor=user, server_ids=[server.pk]
    )
    worker = Worker(redis_url)
    try:
        with Celery(broker=redis_url, set_as_current=False) as sender:
            sender.send_task(
                "pipetower.actions.tasks.run_shard_execute_task",
                args=[run.pk, list(run.targets.values_list("pk", flat=True))],
                queue="runs",  # a bare sender knows no routes; shards go to the runs queue
            )
        wait_for(lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, what="the run")
    finally:
        worker.stop()
    assert output_of(run.targets.get()) == "via redis\n"


def test_a_target_whose_worker_dies_ends_as_worker_lost_and_keeps_its_output(
    team, user, sshd, make_action, tasks_queued, settings
):
    purge_filesystem_queue()
    server = add_server(team, user, sshd, name="web-1")
    tag = uuid.uuid4().hex[:8]
    action = make_action(f"echo before the crash; exec -a pt-lost-{tag} sleep 60")
    worker = Worker()
    try:
        run = services.run_start(action=action, actor=user, server_ids=[server.pk])
        wait_for(lambda: OutputChunk.objects.filter(run_target__run=run).exists(), what="output")
        # While the worker lives, its heartbeat keeps the target from being reaped.
        settings.ACTIONS_WORKER_LOST_AFTER = timedelta(seconds=2)
        time.sleep(2.5)
        assert run_targets_reap_task() == 0
        worker.kill()
    finally:
        worker.stop()
    time.sleep(2.5)
    assert run_targets_reap_task() == 1
    run.refresh_from_db()
    target = run.targets.get()
    assert target.status == TargetStatus.WORKER_LOST
    assert "stopped responding" in target.error
    assert output_of(target) == "before the crash\n"
    assert run.status == RunStatus.FAILED
    # The dropped connection also stopped the script on the server.
    time.sleep(0.5)
    found = subprocess.run(["pgrep", "-f", f"pt-lost-{tag}"], capture_output=True, text=True)
    assert found.stdout.strip() == ""


def test_the_scheduler_runs_the_reaper_often_enough_for_a_bounded_detection():
    entry = django_settings.CELERY_BEAT_SCHEDULE["reap-lost-run-targets"]
    assert entry["task"] == "pipetower.actions.tasks.run_targets_reap_task"
    bound = django_settings.ACTIONS_WORKER_LOST_AFTER + timedelta(seconds=entry["schedule"])
    assert bound <= timedelta(seconds=90)


def test_a_run_whose_whole_worker_is_killed_resumes_on_another_worker_within_the_bound(
    team, user, sshd, make_action, tasks_queued, settings
):
    """Concurrency 1, four servers, one shard: the worker is SIGKILLed while the first
    script runs. The reaper (here every 0.2 s instead of the scheduler's 15 s) ends
    that target as worker_lost with its output, queues the three it held again, and
    a second worker finishes them: a final state within the stated bound."""
    purge_filesystem_queue()
    lost_after = 2.0
    settings.ACTIONS_WORKER_LOST_AFTER = timedelta(seconds=lost_after)
    servers = [add_server(team, user, sshd, name=f"web-{i}") for i in range(4)]
    action = make_action('echo "started $PT_SERVER_NAME"; sleep 1; echo finished', concurrency=1)
    first = Worker()
    try:
        run = services.run_start(action=action, actor=user, server_ids=[s.pk for s in servers])
        wait_for(lambda: OutputChunk.objects.filter(run_target__run=run).exists(), what="output")
        first.kill()
    finally:
        first.stop()
    killed_at = time.monotonic()
    second = Worker(wait=False)  # starts while the reaper runs
    try:
        recovered_at = None
        while Run.objects.get(pk=run.pk).status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            assert time.monotonic() - killed_at < 60, "the run did not end"
            if run_targets_reap_task() and recovered_at is None:
                recovered_at = time.monotonic()
            time.sleep(0.2)
        finished_at = time.monotonic()
    finally:
        second.stop()
    assert recovered_at is not None
    # Recovery takes the heartbeat timeout plus one reaper interval (and a heartbeat).
    assert recovered_at - killed_at <= lost_after + 1.5
    assert finished_at - killed_at <= lost_after + 20
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    statuses = sorted(run.targets.values_list("status", flat=True))
    assert statuses == [TargetStatus.SUCCEEDED] * 3 + [TargetStatus.WORKER_LOST]
    lost = run.targets.get(status=TargetStatus.WORKER_LOST)
    assert output_of(lost) == f"started {lost.server_name}\n"  # kept
    for target in run.targets.filter(status=TargetStatus.SUCCEEDED):
        assert output_of(target) == f"started {target.server_name}\nfinished\n"
