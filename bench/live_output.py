"""Benchmark: live output for many viewers, and what the serving path costs pages.

    .venv/bin/python bench/live_output.py [followers] [seconds]

The configuration comes from the environment as for Pipetower itself: nothing
set is the embedded default (SQLite); DATABASE_URL, BROKER_URL and CACHE_URL
make it PostgreSQL + Redis.

1. Page cost: the same pages (`/healthz`, a run page, the runs list) asked 300
   times one after another, served by granian in WSGI mode (Django alone, what
   `pipetower web` ran before) and by `pipetower web` (granian ASGI: Django on a
   thread pool behind the live-output router). Web CPU per request.
2. Followers: `pipetower web` with its defaults (one process per core). A writer
   stores a chunk of 5 timestamped lines every 100 ms (what a worker's flush
   does) into one running target; F followers stream the run page's live
   output (`live?stream=1`, Server-Sent Events) over plain asyncio sockets;
   meanwhile a prober asks an unrelated page (the runs list) and /healthz.
   Measured: delivery latency (line written → follower has it), lines
   received / lines written per follower, the unrelated page's latency.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

WRITE_EVERY = 0.1
NUMBERS = itertools.count(1)  # line numbers, unique across scenarios
LINES_PER_CHUNK = 5


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def get(url: str, cookie: str) -> float:
    began = time.monotonic()
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
        assert answer.status == 200, answer.status
    return (time.monotonic() - began) * 1000


def page_cost(port: int, pid: int, urls: list[str], cookie: str, n: int = 300) -> dict:
    for url in urls:
        for _ in range(20):  # warm up
            get(f"http://127.0.0.1:{port}{url}", cookie)
    out = {}
    for url in urls:
        before = _env.tree_cpu_seconds(pid)
        times = [get(f"http://127.0.0.1:{port}{url}", cookie) for _ in range(n)]
        out[url] = ((_env.tree_cpu_seconds(pid) - before) / n * 1000, statistics.median(times))
    return out


async def follower(port: int, path: str, cookie: str, got: dict[int, float], stop: asyncio.Event):
    """Reads a Server-Sent Events stream over HTTP/1.1 (chunked) and notes arrival times."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head[:200]
    chunked = b"transfer-encoding: chunked" in head.lower()
    buffer = b""
    try:
        while not stop.is_set():
            if chunked:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    break
                data = await reader.readexactly(size + 2)
                buffer += data[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    break
                buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if line.startswith(b"data: "):
                        now = time.time()
                        for chunk in json.loads(line[6:]).get("chunks", []):
                            for text in chunk["data"].splitlines():
                                stamp, _, number = text.partition(" ")
                                got.setdefault(int(number), now - float(stamp))
    finally:
        writer.close()


def run_followers(
    port: int, pid: int, path: str, cookie: str, count: int, seconds: float, store
) -> dict:
    results: list[dict[int, float]] = [{} for _ in range(count)]
    written: list[int] = []
    probe: dict[str, list[float]] = {"list": [], "healthz": []}
    done = threading.Event()

    def writer() -> None:
        from django.db import connection

        while not done.is_set():
            lines = []
            for _ in range(LINES_PER_CHUNK):
                n = next(NUMBERS)
                lines.append(f"{time.time():.6f} {n}\n")
                written.append(n)
            store("".join(lines))
            time.sleep(WRITE_EVERY)
        connection.close()

    def prober(url: str, key: str) -> None:
        while not done.is_set():
            probe[key].append(get(url, cookie))
            time.sleep(0.05)

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(follower(port, path, cookie, results[i], stop))
            for i in range(count)
        ]
        await asyncio.sleep(2.0)  # every follower connected
        threads = [
            threading.Thread(target=writer, daemon=True),
            threading.Thread(
                target=prober, args=(f"http://127.0.0.1:{port}{probe_url}", "list"), daemon=True
            ),
            threading.Thread(
                target=prober, args=(f"http://127.0.0.1:{port}/healthz", "healthz"), daemon=True
            ),
        ]
        cpu_before = _env.tree_cpu_seconds(pid)
        for thread in threads:
            thread.start()
        await asyncio.sleep(seconds)
        cpu.append((_env.tree_cpu_seconds(pid) - cpu_before) / seconds * 100)
        done.set()
        for thread in threads:
            thread.join()
        await asyncio.sleep(1.5)  # the last lines arrive
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    cpu: list[float] = []
    probe_url = path.split("/runs/")[0] + "/runs/"
    asyncio.run(main())
    mine = set(written)
    latencies = [v * 1000 for per in results for n, v in per.items() if n in mine]
    complete = sum(1 for per in results if set(written) <= set(per))
    return {
        "followers": count,
        "lines": len(written),
        "complete": complete,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "max": max(latencies) if latencies else float("nan"),
        "list50": percentile(probe["list"], 50),
        "list99": percentile(probe["list"], 99),
        "list_n": len(probe["list"]),
        "healthz99": percentile(probe["healthz"], 99),
        "cpu": cpu[0],
    }


def main() -> None:
    followers = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
    _env.prepare("live")
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from pipetower.actions import services
    from pipetower.actions.models import Run, RunTarget
    from pipetower.teams.models import Membership, Role
    from tests.factories import TeamFactory, UserFactory

    config = "PostgreSQL + Redis" if os.environ.get("DATABASE_URL") else "embedded (SQLite)"
    user = UserFactory(email="viewer@example.com")
    team = TeamFactory(slug="live")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    cookie = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    for n in range(25):  # something for the runs list to show
        done_run = Run.objects.create(
            team=team,
            action_name=f"history {n}",
            script="true",
            timeout_seconds=60,
            concurrency=1,
            status="succeeded",
        )
        RunTarget.objects.create(run=done_run, server_name="s", status="succeeded")
    run = Run.objects.create(
        team=team,
        action_name="busy",
        script="true",
        timeout_seconds=600,
        concurrency=1,
        status="running",
    )
    target = RunTarget.objects.create(run=run, server_name="s", status="running")

    def store(text: str) -> None:
        services.output_chunks_store(target_id=target.pk, chunks=[("stdout", text)])

    pages = ["/healthz", f"/teams/live/runs/{done_run.pk}/", "/teams/live/runs/"]
    print(f"configuration: {config}; {os.cpu_count()} cores", flush=True)
    costs = {}
    servers = (
        (
            "granian WSGI (before)",
            lambda p: _env.start_web(p, threads=2 * (os.cpu_count() or 1) + 1),
        ),
        ("pipetower web: ASGI router (after)", _env.start_pipetower_web),
    )
    for label, starter in () if os.environ.get("BENCH_SKIP_COST") else servers:
        port = _env.serving_port()
        web = starter(port)
        try:
            _env.wait_port(port)
            time.sleep(2)
            costs[label] = page_cost(port, web.pid, pages, cookie)
        finally:
            _env.stop(web)
        for url, (cpu, p50) in costs[label].items():
            print(f"{label:36s} {url:32s} CPU {cpu:5.2f} ms/request, median {p50:5.1f} ms")

    port = _env.serving_port()
    web = _env.start_pipetower_web(port)
    try:
        time.sleep(2)
        path = f"/teams/live/runs/{run.pk}/live?rev=0&after={target.pk}:0&stream=1"
        for count in (0, followers):
            r = run_followers(port, web.pid, path, cookie, count, seconds, store)
            print(
                f"{config}: {r['followers']} followers, {r['lines']} lines written; "
                f"{r['complete']} followers got every line; latency p50 {r['p50']:.0f} ms, "
                f"p95 {r['p95']:.0f} ms, max {r['max']:.0f} ms; runs list p50 "
                f"{r['list50']:.0f} ms, p99 {r['list99']:.0f} ms ({r['list_n']} asked); "
                f"/healthz p99 {r['healthz99']:.0f} ms; web CPU {r['cpu']:.0f} % of one core",
                flush=True,
            )
    finally:
        _env.stop(web)


if __name__ == "__main__":
    main()
