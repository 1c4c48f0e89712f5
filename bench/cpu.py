"""Benchmark: CPU and queries per request for the cheap pages, in one process.

    .venv/bin/python bench/cpu.py              # CPU ms and queries per request
    .venv/bin/python bench/cpu.py --profile    # and pyinstrument's top lines for each

Requests go straight into Pipetower's WSGI application (no HTTP server, no
test client: nothing but Django's own request handling is measured), against
the history of bench/_seed.py (200 runs), with the real settings: the file
cache of the embedded default, or Redis and PostgreSQL when CACHE_URL and
DATABASE_URL say so (a throwaway database is created next to the one named).
CPU is this process's CPU time (time.process_time) averaged over the calls.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

CALLS = 200
WARM = 10


def scenarios(seeded: Any) -> list[tuple[str, str, dict[str, str]]]:
    team, run = seeded.team, seeded.run_id
    session = {"HTTP_COOKIE": seeded.session_cookie}
    token = {"HTTP_AUTHORIZATION": f"Bearer {seeded.token}"}
    return [
        ("HTML runs list (25 rows)", f"/teams/{team}/runs/", session),
        ("HTML run page (20 servers)", f"/teams/{team}/runs/{run}/", session),
        ("HTML action list", f"/teams/{team}/actions/", session),
        ("HTML server list (20)", f"/teams/{team}/servers/", session),
        ("API runs list (default page)", f"/api/v1/teams/{team}/runs", token),
        ("API runs list page_size=25", f"/api/v1/teams/{team}/runs?page_size=25", token),
        ("API actions list", f"/api/v1/teams/{team}/actions", token),
        ("/healthz", "/healthz", {}),
    ]


def caller(app: Callable[..., Any], url: str, extra: dict[str, str]) -> Callable[[], int]:
    path, _, query = url.partition("?")

    def call() -> int:
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
            **extra,
        }
        body = app(environ, lambda s, h, *a: status.append(s))
        try:
            for _ in body:
                pass
        finally:
            if hasattr(body, "close"):
                body.close()
        return int(status[0].split()[0])

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's top lines")
    parser.add_argument("--only", default="", help="only scenarios whose name contains this")
    parser.add_argument("--lines", type=int, default=30, help="profile lines per scenario")
    args = parser.parse_args()

    os.environ.setdefault("PIPETOWER_API_RATE_LIMIT", "1000000/m")
    # The requests name 127.0.0.1 as their host: with the default base URL
    # (localhost) a local Pipetower would redirect every page there.
    os.environ.setdefault("PIPETOWER_BASE_URL", "http://127.0.0.1:8000")
    _env.prepare("cpu")
    import _seed
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    seeded = _seed.seed()
    app = get_wsgi_application()
    print(f"database: {connection.vendor}; cache: {os.environ.get('CACHE_URL') or 'files'}")
    print("| scenario | status | CPU ms / request | queries |\n|---|---|---|---|")
    profiles: list[tuple[str, str]] = []
    for name, url, extra in scenarios(seeded):
        if args.only and args.only not in name:
            continue
        call = caller(app, url, extra)
        for _ in range(WARM):
            status = call()
        if not 200 <= status < 300:
            sys.exit(f"{name}: {url} answered {status}, not a page; nothing measured.")
        executed: list[str] = []

        def count(execute: Any, sql: str, *rest: Any, executed: list[str] = executed) -> Any:
            executed.append(sql)
            return execute(sql, *rest)

        with connection.execute_wrapper(count):
            call()
        start = time.process_time()
        for _ in range(CALLS):
            call()
        cpu_ms = (time.process_time() - start) / CALLS * 1000
        print(f"| {name} | {status} | {cpu_ms:.2f} | {len(executed)} |", flush=True)
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(CALLS):
                call()
            profiler.stop()
            text = profiler.output_text(unicode=True, color=False, show_all=False)
            profiles.append((name, "\n".join(text.splitlines()[: args.lines])))
    for name, text in profiles:
        print(f"\n### {name}\n```\n{text}\n```")


if __name__ == "__main__":
    main()
