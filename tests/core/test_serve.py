"""`pipetower serve`: one command runs the web server, a worker and the scheduler.

These start the real command in a fresh data directory with no configuration,
as someone trying Pipetower would, and look at the processes it leaves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.core._ops import (
    alive,
    descendants,
    embedded_env,
    free_port,
    get_json,
    pipetower_argv,
    process_group_members,
    run_pipetower,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.embedded_only]

START_TIMEOUT = 120  # first answer from /healthz: migrations on a fresh database included
WORKER_OK_TIMEOUT = 45  # from the first /healthz answer to "worker ok"
STOP_TIMEOUT = 60


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float  # time.monotonic() when the command was started

    @property
    def healthz_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> dict[int, str]:
        """The supervised processes: each is a `pipetower <name>` command."""
        return {
            pid: cmd
            for pid, cmd in descendants(self.process.pid).items()
            if os.getpgid(pid) == pid  # each child leads its own process group
        }

    def child(self, name: str) -> int:
        """The child whose command line holds `pipetower.cli <name>` ("worker --queues runs ")."""
        matches = [pid for pid, cmd in self.children().items() if f"pipetower.cli {name}" in cmd]
        assert len(matches) == 1, (name, self.children())
        return matches[0]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    port = free_port()
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            pipetower_argv("serve", "--port", str(port)),
            env=embedded_env(tmp_path / "data"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal: Ctrl-C goes to this group
        )
    running = Serve(process, port, log, started)
    try:
        yield running
    finally:
        if process.poll() is None:
            leftovers = list(descendants(process.pid))
            process.kill()
            process.wait()
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def wait_for_healthz(serve: Serve) -> tuple[dict[str, object], float]:
    """The first answer from /healthz, and how long after the start it came."""

    def answer() -> dict[str, object] | None:
        assert serve.process.poll() is None, f"serve exited early:\n{serve.output()}"
        return get_json(serve.healthz_url)

    try:
        body = wait_until(answer, timeout=START_TIMEOUT, interval=0.1, what="/healthz")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{serve.output()}") from None
    return body, time.monotonic() - serve.started


def no_process_left(processes: dict[int, str], *, groups: list[int]) -> bool:
    """True once none of `processes` and no member of `groups` runs (SIGKILL is not instant)."""

    def gone() -> bool:
        return not any(alive(pid) for pid in processes) and not any(
            process_group_members(group) for group in groups
        )

    try:
        return bool(wait_until(gone, timeout=5, what="the processes to end"))
    except AssertionError:
        left = {pid: cmd for pid, cmd in processes.items() if alive(pid)}
        raise AssertionError(f"still running after serve exited: {left}") from None


def ctrl_c(serve: Serve) -> None:
    """What the terminal does on Ctrl-C: SIGINT to the foreground process group."""
    os.killpg(serve.process.pid, signal.SIGINT)


def test_serve_runs_web_worker_and_scheduler_and_ctrl_c_stops_them_all(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    first, seconds_to_first = wait_for_healthz(serve)
    assert first["database"] == {"status": "ok", "vendor": "sqlite"}

    worker_ok = wait_until(
        lambda: (get_json(serve.healthz_url) or {}).get("worker", {}).get("status") == "ok",
        timeout=WORKER_OK_TIMEOUT,
        interval=0.2,
        what="/healthz to report the worker ok",
    )
    assert worker_ok
    seconds_to_worker = time.monotonic() - serve.started
    with capsys.disabled():
        print(
            f"\n[pipetower serve] first /healthz answer after {seconds_to_first:.1f} s, "
            f"worker ok {seconds_to_worker:.1f} s after start"
        )

    web, scheduler = serve.child("web"), serve.child("scheduler")
    # Two workers: one for runs, one for mail and housekeeping (separate queues).
    runs_worker = serve.child("worker --queues runs ")
    worker = serve.child("worker --queues mail,housekeeping ")
    everything = descendants(serve.process.pid)
    assert len(everything) > 3, "granian and Celery run processes of their own"
    output = serve.output()
    assert f"Pipetower is running at http://localhost:{serve.port}" in output
    assert "Email is not sent in this mode" in output

    ctrl_c(serve)

    assert serve.process.wait(timeout=STOP_TIMEOUT) == 0, serve.output()
    assert "Pipetower stopped." in serve.output()
    assert no_process_left(everything, groups=[web, runs_worker, worker, scheduler])


def test_when_a_worker_dies_serve_restarts_it_and_says_so(serve: Serve) -> None:
    wait_for_healthz(serve)
    worker = serve.child("worker --queues mail,housekeeping ")
    pool = list(descendants(worker))
    web = serve.child("web")

    os.killpg(worker, signal.SIGKILL)

    restarted = wait_until(
        lambda: next(
            (
                pid
                for pid, cmd in serve.children().items()
                if "worker --queues mail,housekeeping " in cmd and pid != worker
            ),
            None,
        ),
        timeout=30,
        interval=0.2,
        what=f"the worker to be started again\n{serve.output()}",
    )
    assert serve.process.poll() is None
    assert (
        "Pipetower: the worker stopped unexpectedly (killed by SIGKILL); restarting it in 1 s "
        "(restart 1 of at most 5 within 10 minutes)." in serve.output()
    )
    assert serve.child("web") == web, "the others keep running"
    assert no_process_left(dict.fromkeys(pool, ""), groups=[worker])
    # The new worker comes up with its pool of task processes, and /healthz is ok.
    wait_until(lambda: descendants(restarted), timeout=WORKER_OK_TIMEOUT, what="its pool")
    assert wait_until(
        lambda: (get_json(serve.healthz_url) or {}).get("worker", {}).get("status") == "ok",
        timeout=WORKER_OK_TIMEOUT,
        interval=0.5,
    )

    ctrl_c(serve)
    assert serve.process.wait(timeout=STOP_TIMEOUT) == 0, serve.output()


def test_serve_refuses_a_port_that_is_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_pipetower("serve", "--port", str(port), env=embedded_env(tmp_path))

    assert result.returncode != 0
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def data_dir_with_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated data directory holding one data key, wrapped with its generated master key."""
    data = tmp_path_factory.mktemp("data")
    env = embedded_env(data)
    assert run_pipetower("migrate", "--verbosity", "0", env=env).returncode == 0
    made = run_pipetower(
        "manage",
        "shell",
        "--no-imports",
        "--command",
        "from pipetower.core import crypto; crypto.data_key_create(purpose='test')",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    return data


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ("serve", "web server, worker and scheduler"),
        ("web", "web server"),
        ("worker", "worker"),
        ("scheduler", "scheduler"),
    ],
)
def test_processes_refuse_to_start_with_a_wrong_master_key(
    data_dir_with_secrets: Path, command: str, what: str
) -> None:
    from pipetower.config.env import new_master_key

    env = embedded_env(data_dir_with_secrets, PIPETOWER_MASTER_KEYS=new_master_key())

    result = (
        run_pipetower(command, "--port", str(free_port()), env=env)
        if command
        in {
            "serve",
            "web",
        }
        else run_pipetower(command, env=env)
    )

    assert result.returncode == 1
    assert f"Pipetower will not start the {what} until this is fixed:" in result.stderr
    assert "which is not in PIPETOWER_MASTER_KEYS" in result.stderr
    assert "[pipetower.E001]" in result.stderr
    assert "Traceback" not in result.stderr
