"""`pipetower web` runs one web process per CPU core by default, or as configured."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from pipetower.core.management.commands.web import web_processes
from tests.core._ops import (
    descendants,
    embedded_env,
    free_port,
    get_json,
    pipetower_argv,
    run_pipetower,
    wait_until,
)


def test_one_web_process_per_core_unless_configured(settings) -> None:
    settings.WEB_PROCESSES = 0
    assert web_processes() == (os.cpu_count() or 1)
    settings.WEB_PROCESSES = 3
    assert web_processes() == 3


@pytest.mark.embedded_only
@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        ({"PIPETOWER_WEB_PROCESSES": "3"}, [], 3),
        ({"PIPETOWER_WEB_PROCESSES": "3"}, ["--workers", "2"], 2),
    ],
)
def test_web_starts_the_configured_number_of_processes(
    tmp_path: Path, env: dict[str, str], flag: list[str], expected: int
) -> None:
    environment = embedded_env(tmp_path / "data", **env)
    assert run_pipetower("migrate", env=environment, timeout=120).returncode == 0
    port = free_port()
    process = subprocess.Popen(
        pipetower_argv("web", "--port", str(port), "--skip-checks", *flag),
        env=environment,
        start_new_session=True,
    )
    try:
        wait_until(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        workers = wait_until(
            lambda: len(descendants(process.pid)) == expected and descendants(process.pid),
            timeout=30,
            what=f"{expected} web processes",
        )
        assert len(workers) == expected
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.embedded_only
def test_a_negative_process_count_is_refused_with_the_variable_named(tmp_path: Path) -> None:
    done = run_pipetower(
        "check", env=embedded_env(tmp_path / "d", PIPETOWER_WEB_PROCESSES="-1"), timeout=60
    )
    assert done.returncode != 0
    assert "PIPETOWER_WEB_PROCESSES must be 0 (one per CPU core) or more" in done.stderr
