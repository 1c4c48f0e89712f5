"""Real processes for reliability tests: an own redis-server and `pipetower worker`s."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from pipetower.config.celery import app
from pipetower.core.models import WorkerHeartbeat
from tests.core._ops import wait_until
from tests.sshd import pick_free_port

ROOT = Path(__file__).resolve().parents[2]


class OwnRedis:
    """redis-server on a free loopback port; `stop()` and `start()` again on the same port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if not self.binary:
            pytest.skip("redis-server is not installed; .ci/run installs it.")
        self.port = pick_free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OwnRedis:
        assert self.binary
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        def answers() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
            except redis.RedisError:
                return False

        wait_until(answers, timeout=20, what="redis-server to answer")
        return self

    def stop(self) -> None:
        """Stop it abruptly (SIGKILL), as a crash or a lost network does: no goodbyes."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    hostname: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def heartbeat(self) -> WorkerHeartbeat | None:
        return WorkerHeartbeat.objects.filter(hostname=self.hostname).first()

    def wait_ready(self, timeout: float = 90) -> Worker:
        def ready() -> bool:
            assert self.alive(), f"The worker exited:\n{self.output()}"
            return self.heartbeat() is not None

        try:
            wait_until(ready, timeout=timeout, interval=0.2, what=f"{self.hostname} to be ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.output()}") from None
        return self

    def stop(self) -> None:
        """SIGTERM to the worker's main process only, as a service manager should send it:
        it stops its pool children itself. (A SIGTERM to the whole group kills an idle
        child holding the pool's queue lock, and the main process then waits on that
        lock until it is killed.) Whatever is left of the group is killed after."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_worker(*, queues: str, concurrency: int = 1, broker_url: str = "", **env: str) -> Worker:
    """`pipetower worker` on the test database and data directory, as a deployment runs it."""
    name = f"{queues.replace(',', '-')}-{uuid.uuid4().hex[:6]}@localhost"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.actions.worker_settings",
        "PIPETOWER_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONUNBUFFERED": "1",
        "PIPETOWER_LOG_LEVEL": "INFO",
        **env,
    }
    if broker_url:
        environment["BROKER_URL"] = broker_url
    log = Path(settings.DATA_DIR) / f"worker-{name.split('@')[0]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "pipetower.cli", "worker", "--skip-checks"),
                *("--queues", queues, "--concurrency", str(concurrency), "--hostname", name),
            ],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(process, name, log)


def mail_env(host: str, port: int) -> dict[str, str]:
    """Worker settings that send email to the SMTP sink."""
    return {"PIPETOWER_EMAIL": "smtp", "EMAIL_HOST": host, "EMAIL_PORT": str(port)}


def purge_queues() -> None:
    """Drop messages left in the broker by earlier tests (the queue folder is shared)."""
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        for queue in settings.TASK_QUEUES:
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)


def _reset_broker_connections() -> None:
    """Forget the app's connection and producer pools, so the next send uses the new URL.

    The pools stay open in kombu's registry (keyed by broker URL): closing them
    would break the next test that sends to the same URL.
    """
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None


@contextlib.contextmanager
def tasks_sent_to(broker_url: str) -> Iterator[None]:
    """This test process sends its tasks to `broker_url`, as the web process would."""
    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.broker_url = broker_url
    app.conf.task_always_eager = False
    app.conf.broker_transport_options = {}
    _reset_broker_connections()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options = saved
        _reset_broker_connections()
