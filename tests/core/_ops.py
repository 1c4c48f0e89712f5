"""Helpers for tests that run `pipetower` as real processes (CLI, serve, worker, settings)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Variables that would make a subprocess leave the embedded default.
CONFIG_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "BROKER_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "PIPETOWER_ENV",
    "PIPETOWER_DATA_DIR",
    "PIPETOWER_PORT",
    "PIPETOWER_BASE_URL",
    "PIPETOWER_MASTER_KEYS",
    "PIPETOWER_SIGNUP",
    "PIPETOWER_EMAIL",
    "PIPETOWER_TASKS_EAGER",
    "PIPETOWER_DEBUG",
    "PIPETOWER_LOG_LEVEL",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
)


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of someone running Pipetower with no configuration at all."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env["PIPETOWER_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pipetower_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipetower.cli", *args]


def run_pipetower(
    *args: str,
    env: dict[str, str],
    input: str | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pipetower_argv(*args),
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


def get_json(url: str, timeout: float = 5) -> dict[str, Any] | None:
    """The JSON body at `url` (any status), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read()))
    except (OSError, ValueError):
        return None


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}"
    raise NotImplementedError(engine)


# --- processes, read from /proc ----------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    pid_text, name = raw[: raw.index(" ")], raw[raw.index("(") + 1 : raw.rindex(")")]
    return [pid_text, name, *raw[raw.rindex(")") + 2 :].split()]


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def alive(pid: int) -> bool:
    """Running (a zombie has finished; only its exit status waits to be collected)."""
    stat = _stat(pid)
    return stat is not None and stat[2] != "Z"


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid`, with its command line."""
    children: dict[int, list[int]] = {}
    for other in _all_pids():
        stat = _stat(other)
        if stat is not None:
            children.setdefault(int(stat[3]), []).append(other)
    found: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop()
        if alive(current):
            found[current] = cmdline(current)
        todo.extend(children.get(current, []))
    return found


def kill_all(pids: list[int], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to each process; one that ended meanwhile (say, a session
    closing as its parent dies) is already what the caller wanted."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def process_group_members(pgid: int) -> list[int]:
    members = []
    for other in _all_pids():
        stat = _stat(other)
        if stat is not None and int(stat[4]) == pgid and stat[2] != "Z":
            members.append(other)
    return members


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
