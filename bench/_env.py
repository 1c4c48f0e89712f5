"""Shared set-up for the benchmarks: a throwaway data directory, a migrated database,
and helpers to start Pipetower's own processes (granian web server, Celery worker).

Benchmarks are not tests: run them by hand (see RESULTS.md); they only ever talk
to loopback addresses and stop everything they started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def _throwaway_postgres(url: str) -> str:
    """With DATABASE_URL on PostgreSQL, a fresh database next to it (dropped at exit),
    so a benchmark never writes into the database it was pointed at."""
    import atexit
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'pipetower'}_bench_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # best effort at exit
            pass
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    return urlunsplit(parts._replace(path=f"/{name}"))


def prepare(prefix: str) -> dict[str, str]:
    """Point this process (and the children it starts) at a fresh data directory
    (and, on PostgreSQL, a fresh database)."""
    data = tempfile.mkdtemp(prefix=f"pipetower-bench-{prefix}-")
    os.environ["PIPETOWER_DATA_DIR"] = data
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        os.environ["DATABASE_URL"] = _throwaway_postgres(url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "pipetower.config.settings"
    os.environ.setdefault("PIPETOWER_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return dict(os.environ)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving_port() -> int:
    """A free loopback port for a Pipetower about to start, made its public address.

    Set before the process starts: with the default (http://localhost:<port>) a
    local Pipetower sends browser requests on 127.0.0.1 to that name with a 301,
    and a benchmark would measure redirects instead of pages.
    """
    port = free_port()
    os.environ["PIPETOWER_BASE_URL"] = f"http://127.0.0.1:{port}"
    return port


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def start_web(port: int, threads: int = 5) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--blocking-threads",
            str(threads),
            "--log-level",
            "warning",
            "pipetower.config.wsgi:application",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        start_new_session=True,
    )
    wait_port(port)
    return process


def start_pipetower_web(port: int) -> subprocess.Popen[bytes]:
    """`pipetower web` as deployed: granian's ASGI router with its defaults (one
    process per core), live output held on the event loop."""
    process = subprocess.Popen(
        [PYTHON, "-m", "pipetower.cli", "web", "--port", str(port), "--skip-checks"],
        cwd=ROOT,
        env=dict(os.environ),
        start_new_session=True,
    )
    wait_port(port)
    return process


def start_worker(concurrency: int = 1) -> subprocess.Popen[bytes]:
    pool = (
        ["--pool=solo"] if concurrency == 1 else ["--pool=prefork", f"--concurrency={concurrency}"]
    )
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "pipetower.config.celery",
            "worker",
            *pool,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        start_new_session=True,
    )
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the main process (it stops its own children: a Celery worker whose
    idle pool children got the signal too can wait forever on their queue lock), then
    kill whatever is left of the group."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += [child for child, parent in parents.items() if parent == current]
    return total


def machine_cpu_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores, not idle), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    busy = sum(values) - values[3] - values[4]  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def tree_peak_rss_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM, since it started) of a process and its descendants, MB."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    peak, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            status = ""
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
        todo += [child for child, parent in parents.items() if parent == current]
    return peak
