"""A real `pipetower web` process on a loopback port, on the test database.

Import the `web` fixture in a test module (`from tests.webproc import web`); the
test must use a transactional database so the process sees its rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings

from tests.core._ops import free_port, get_json, pipetower_argv, wait_until

THREADS = 2  # request threads per web process: fewer than the concurrent requests tests make


@pytest.fixture
def web() -> Iterator[str]:
    """The base URL of a real `pipetower web` (two processes) on the test database.

    Tasks are queued, not run (no worker): what a request queues stays queued.
    """
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.actions.worker_settings",
        "PIPETOWER_DATA_DIR": str(django_settings.DATA_DIR),
        "PIPETOWER_LOG_LEVEL": "WARNING",
    }
    argv = pipetower_argv(
        "web", "--port", str(port), "--workers", "2", "--threads", str(THREADS), "--skip-checks"
    )
    process = subprocess.Popen(argv, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get_json(f"{base}/healthz"), timeout=60, what="pipetower web")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
