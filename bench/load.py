"""Benchmark: the cheap pages under load, with a real load tool, against `pipetower serve`.

    make bench                                  # the fan-out (bench/fanout.py), then this
    DATABASE_URL=postgres://… BROKER_URL=redis://…/8 CACHE_URL=redis://…/9 make bench
    .venv/bin/python bench/load.py --seconds 30 --connections 50     # this alone

`make bench` passes BENCH_ARGS to this script (e.g. BENCH_ARGS="--seconds 10").

Seeds 200 runs (bench/_seed.py) into a fresh data directory (and, on
PostgreSQL, a throwaway database), starts `pipetower serve` with its defaults
on a free loopback port, then for each scenario runs `wrk -t2 -cC -dDs
--latency` while a thread asks /healthz every 100 ms. Needs `wrk` (Debian
package `wrk`). Let the machine settle (load average below 1) before running.

The API scenarios run with `PIPETOWER_API_RATE_LIMIT` raised (one token,
thousands of requests a second, is exactly what the limit exists to refuse);
`--keep-limit` keeps the default and shows the 429s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def to_ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> dict[str, float]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    found: dict[str, float] = {"requests": 0, "rps": 0, "p50": 0, "p99": 0, "errors": 0}
    if m := re.search(r"(\d+) requests in", out):
        found["requests"] = int(m[1])
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        found["rps"] = float(m[1])
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            found[f"p{pct}"] = to_ms(m[1])
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        found["errors"] += int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        found["errors"] += sum(int(x) for x in m.groups())
    return found


class HealthProbe(threading.Thread):
    """Asks /healthz every 100 ms and keeps the latencies (ms)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=30) as answer:
                    answer.read()
                self.latencies.append((time.perf_counter() - start) * 1000)
            except OSError:
                self.failures += 1
            self.stopping.wait(0.1)


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--keep-limit", action="store_true", help="keep the API rate limit")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/load.py needs wrk (Debian: apt-get install wrk).")
    if not args.keep_limit:
        os.environ["PIPETOWER_API_RATE_LIMIT"] = "100000000/m"
    _env.prepare("load")
    import _seed
    from django.db import connections

    seeded = _seed.seed()
    connections.close_all()
    port = _env.serving_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "pipetower.cli", "serve", "--port", str(port)],
        cwd=_env.ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/healthz")
        session = {"Cookie": seeded.session_cookie}
        token = {"Authorization": f"Bearer {seeded.token}"}
        scenarios = [
            ("HTML runs list, 25 rows", f"{base}/teams/{seeded.team}/runs/", session),
            ("API runs list, default page", f"{base}/api/v1/teams/{seeded.team}/runs", token),
            ("run page, 20 servers", f"{base}/teams/{seeded.team}/runs/{seeded.run_id}/", session),
        ]
        vendor = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
        cache = "Redis" if os.environ.get("CACHE_URL", "").startswith("redis") else "files"
        print(
            f"`pipetower serve` defaults, {vendor}, cache {cache}, "
            f"wrk -t2 -c{args.connections} -d{args.seconds}s, "
            f"load average before: {os.getloadavg()[0]:.2f}\n"
        )
        print("| scenario | requests/s | p50 ms | p99 ms | errors | /healthz p50 / p99 ms |")
        print("|---|---|---|---|---|---|")
        for name, url, headers in scenarios:
            for attempt in range(3):  # settle: wait for the load average to drop
                if os.getloadavg()[0] < 1.0:
                    break
                time.sleep(5 * (attempt + 1))
            wrk(url, headers, 2, 5)  # warm the code paths
            probe = HealthProbe(f"{base}/healthz")
            probe.start()
            found = wrk(url, headers, args.seconds, args.connections)
            probe.stopping.set()
            probe.join()
            health = (
                f"{percentile(probe.latencies, 50):.0f} / {percentile(probe.latencies, 99):.0f}"
                + (f" ({probe.failures} failed)" if probe.failures else "")
            )
            print(
                f"| {name} | {found['rps']:.0f} | {found['p50']:.0f} | {found['p99']:.0f} "
                f"| {found['errors']:.0f} of {found['requests']:.0f} | {health} |",
                flush=True,
            )
    finally:
        if serve.poll() is None:
            os.kill(serve.pid, signal.SIGINT)
            try:
                serve.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()


if __name__ == "__main__":
    main()
