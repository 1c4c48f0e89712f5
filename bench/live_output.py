"""Benchmark: how the run page should receive live output under granian (WSGI).

    .venv/bin/python bench/live_output.py

A writer appends one output chunk every 100 ms to a running target (what a
worker does when it flushes). V viewers follow it over real HTTP to granian
with Pipetower's default 5 request threads, in one of these modes:

- sse:               one Server-Sent Events stream per viewer (`runs:stream`)
- longpoll-10s/0.2s: `runs:live?wait=10`, asked again 200 ms after each answer
- longpoll-2s/0.5s:  `runs:live?wait=2`, asked again 500 ms after each answer
- poll-1s:           `runs:live?wait=0` once a second

Then the same with an idle run (no output at all), where a long wait holds a
request thread for the whole wait.

Measured: delivery latency (chunk written → viewer has it), the web server's
CPU, and how long an unrelated page (/healthz) takes meanwhile, which shows
request threads held by viewers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

DURATION = 10.0
WRITE_EVERY = 0.1
MODES = {  # name: (server wait s, pause between answers s); None = SSE
    "sse": None,
    "longpoll-10s/0.2s": (10, 0.2),
    "longpoll-2s/0.5s": (2, 0.5),
    "poll-1s": (0, 1.0),
    # What the run page does: wait 10 s within the waiting budget
    # (PIPETOWER_LIVE_WAITERS), else answer at once; pause as the answer says.
    "page": (10, None),
}


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    _env.prepare("live")
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from pipetower.actions import services
    from pipetower.actions.models import Run, RunTarget
    from pipetower.teams.models import Membership, Role
    from tests.factories import TeamFactory, UserFactory

    user = UserFactory(email="viewer@example.com")
    team = TeamFactory(slug="live")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    cookie = {settings.SESSION_COOKIE_NAME: session.session_key}

    port = _env.free_port()
    web = _env.start_web(port, threads=5)
    base = f"http://127.0.0.1:{port}/teams/{team.slug}/runs"
    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
    results = []
    try:
        plan = [(v, m, True) for v in (1, 4, 16) for m in MODES]
        plan += [(16, m, False) for m in MODES]
        for viewers, mode, writing in plan:
            if True:
                run = Run.objects.create(
                    team=team,
                    action_name="bench",
                    script="true",
                    timeout_seconds=60,
                    concurrency=1,
                    status="running",
                )
                target = RunTarget.objects.create(run=run, server_name="s", status="running")
                results.append(
                    measure(
                        mode, viewers, base, cookie, run.pk, target.pk, web.pid, services, writing
                    )
                )
                print(format_row(results[-1]), flush=True)
    finally:
        _env.stop(web)
    print(
        "\n| viewers | mode | latency p50 / p95 / max (ms) | chunks seen | web CPU % "
        "| /healthz p50 / max (ms) |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['viewers']} | {r['mode']} | {r['p50']:.0f} / {r['p95']:.0f} / {r['max']:.0f} | "
            f"{r['seen']:.0%} | {r['cpu']:.1f} | {r['probe50']:.0f} / {r['probemax']:.0f} |"
        )


def settle(healthz: str) -> None:
    """Wait until requests held by the last scenario are gone (the page answers quickly)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        began = time.monotonic()
        requests.get(healthz, timeout=60)
        if time.monotonic() - began < 0.1:
            return
        time.sleep(0.5)


def format_row(r: dict) -> str:
    return (
        f"{r['viewers']:2d} viewers {r['mode']:30s} latency p50 {r['p50']:6.0f} ms p95 "
        f"{r['p95']:6.0f} ms max {r['max']:6.0f} ms, chunks seen {r['seen']:.0%}, web CPU "
        f"{r['cpu']:5.1f} %, /healthz p50 {r['probe50']:.0f} ms max {r['probemax']:.0f} ms"
    )


def measure(mode, viewers, base, cookie, run_id, target_id, web_pid, services, writing) -> dict:
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(viewers)]
    seen: list[set[int]] = [set() for _ in range(viewers)]
    written: list[int] = []

    def writer() -> None:
        from django.db import connection

        while writing and not stop.is_set():
            seq = services.output_chunks_store(
                target_id=target_id, chunks=[("stdout", f"{time.time():.6f}\n")]
            )
            written.append(seq)
            time.sleep(WRITE_EVERY)
        connection.close()

    def take(index: int, chunks: list[dict]) -> None:
        now = time.time()
        for chunk in chunks:
            if chunk["seq"] in seen[index]:
                continue
            seen[index].add(chunk["seq"])
            latencies[index].append((now - float(chunk["data"])) * 1000)

    def viewer(index: int) -> None:
        http = requests.Session()
        http.cookies.update(cookie)
        cursor, rev = 0, 0
        if mode == "sse":
            url = f"{base}/{run_id}/stream?after={target_id}:0&wait={DURATION + 5}"
            with http.get(url, stream=True, timeout=DURATION + 30) as answer:
                for line in answer.iter_lines(decode_unicode=True):
                    if stop.is_set():
                        break
                    if line and line.startswith("data: "):
                        take(index, json.loads(line[6:])["chunks"])
            return
        wait, pause = MODES[mode]
        while not stop.is_set():
            body = http.get(
                f"{base}/{run_id}/live",
                params={"rev": rev, "after": f"{target_id}:{cursor}", "wait": wait},
                timeout=60,
            ).json()
            rev = body["revision"]
            take(index, body["chunks"])
            if body["chunks"]:
                cursor = body["chunks"][-1]["seq"]
            if not body["more"]:
                time.sleep(pause if pause is not None else body["retry_ms"] / 1000)

    probe_times: list[float] = []

    def prober() -> None:
        while not stop.is_set():
            began = time.monotonic()
            requests.get(base.split("/teams/")[0] + "/healthz", timeout=60)
            probe_times.append((time.monotonic() - began) * 1000)
            time.sleep(0.5)

    threads = [threading.Thread(target=viewer, args=(i,), daemon=True) for i in range(viewers)]
    threads += [
        threading.Thread(target=writer, daemon=True),
        threading.Thread(target=prober, daemon=True),
    ]
    cpu_before = _env.tree_cpu_seconds(web_pid)
    began = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(DURATION)
    stop.set()
    cpu = _env.tree_cpu_seconds(web_pid) - cpu_before
    elapsed = time.monotonic() - began
    for thread in threads:
        thread.join(timeout=15)
    settle(base.split("/teams/")[0] + "/healthz")
    flat = [v for per in latencies for v in per]
    total = max(1, len(written) * viewers)
    return {
        "mode": mode + ("" if writing else " (idle run)"),
        "viewers": viewers,
        "p50": percentile(flat, 50),
        "p95": percentile(flat, 95),
        "max": max(flat) if flat else float("nan"),
        "seen": sum(len(s) for s in seen) / total if writing else float("nan"),
        "cpu": cpu / elapsed * 100,
        "probe50": percentile(probe_times, 50),
        "probemax": max(probe_times) if probe_times else float("nan"),
    }


if __name__ == "__main__":
    main()
