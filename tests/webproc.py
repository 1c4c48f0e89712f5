"""A real `pipetower web` process on a loopback port.

`running_web(...)` starts one with any environment and yields its base URL;
the `web` fixture is the common case: the test database, two processes. Import
the fixture in a test module (`from tests.webproc import web`); the test must
use a transactional database so the process sees its rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.core._ops import free_port, get_json, pipetower_argv, wait_until

THREADS = 2  # request threads per web process: fewer than the concurrent requests tests make


def shared_database_env(**extra: str) -> dict[str, str]:
    """The environment of a process that uses the test database and data directory."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.actions.worker_settings",
        "PIPETOWER_DATA_DIR": str(django_settings.DATA_DIR),
        "PIPETOWER_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def running_web(
    env: dict[str, str], *, workers: int = 2, threads: int = THREADS, log: Path | None = None
) -> Iterator[str]:
    """`pipetower web` with `env`, until the block ends; yields its base URL.

    Its output goes to `log` when given (shown if it dies while starting).
    """
    port = free_port()
    argv = pipetower_argv(
        "web",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--skip-checks",
    )
    base = f"http://127.0.0.1:{port}"
    # Links and the loopback-alias redirect use the base URL: the address asked here.
    env = {**env, "PIPETOWER_BASE_URL": base}
    output = log.open("wb") if log else None
    process = subprocess.Popen(
        argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )

    def answers() -> bool:
        assert process.poll() is None, log.read_text() if log else "pipetower web exited"
        return get_json(f"{base}/healthz") is not None

    try:
        wait_until(answers, timeout=60, what="pipetower web")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if output:
            output.close()


@pytest.fixture
def web() -> Iterator[str]:
    """The base URL of a real `pipetower web` (two processes) on the test database.

    Tasks are queued, not run (no worker): what a request queues stays queued.
    """
    with running_web(shared_database_env()) as base:
        yield base
