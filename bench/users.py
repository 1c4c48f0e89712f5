"""Benchmark: many people using Pipetower while a big run streams its output.

    make bench-users
    .venv/bin/python bench/users.py [--servers 200] [--users 50] [--followers 10] [--lines 40]

Starts `pipetower serve` with its defaults on a fresh data directory holding a
history of 200 runs (bench/_seed.py), N real sshd servers on loopback
(tests/sshd.py, needs root like the SSH tests), and an action that prints
`--lines` numbered lines, one every 0.2 s. Then, at the same time:

- the run is started through the API on all N servers;
- `--users` simulated people, each in a loop with a think time of 0.2-1 s
  (`--think 0` for none): half browse the pages with a signed-in session (runs
  list, the streaming run's page, servers, actions, the team overview), half
  call the API with a token (runs, the streaming run, actions, servers);
- for `--seconds` at least (30), and until the run has finished;
- `--followers` follow the streaming run's output as the run page does (the
  `changes` long-poll, each following its own slice of the servers) until the
  run has finished. Each line carries the time it was printed on its server
  (same clock: loopback), so a follower measures each line's delivery: from
  `echo` on the server to the moment the `changes` answer holding it arrived.

Reported: requests, errors (anything but 2xx, and socket errors), p50/p95/p99
per kind of request and for /healthz (asked every 100 ms meanwhile), the
live delivery p50/p95/p99 of every line the followers received, and lost
lines: every server's stored output must be exactly the lines printed, and what
each follower received exactly the stored output of the servers it followed.
Exit status 1 when there was an error or a lost line. Loopback only; everything
started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env
from load import HealthProbe, percentile, wait_healthy

LINE_EVERY = 0.2
LINE = re.compile(r"line (\d+) (\d+\.\d+)")


class Tally:
    """Latencies (ms) and errors per kind of request, shared by the user threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def get(self, session: requests.Session, kind: str, url: str) -> requests.Response | None:
        started = time.perf_counter()
        try:
            answer = session.get(url, timeout=30)
        except requests.RequestException as error:
            with self.lock:
                self.errors[kind].append(type(error).__name__)
            return None
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latencies[kind].append(elapsed)
            if not 200 <= answer.status_code < 300:
                self.errors[kind].append(str(answer.status_code))
        return answer


def user_loop(
    tally: Tally, session: requests.Session, urls: list[tuple[str, str]], think: float, stop
) -> None:
    rng = random.Random()
    while not stop.is_set():
        kind, url = rng.choice(urls)
        tally.get(session, kind, url)
        if think:
            stop.wait(rng.uniform(0.2, think))


def follower_loop(
    tally: Tally,
    session: requests.Session,
    changes_url: str,
    targets: list[int],
    got: dict,
    delivery: list[float],
) -> None:
    """Follow some servers' output as the run page does until the run is over,
    noting how long after its `echo` each complete line arrived (ms)."""
    seqs = dict.fromkeys(targets, 0)
    partial = dict.fromkeys(targets, "")
    revision = 0
    while True:
        after = ",".join(f"{t}:{s}" for t, s in seqs.items())
        answer = tally.get(
            session, "follow (changes)", f"{changes_url}?rev={revision}&after={after}&wait=10"
        )
        if answer is None or answer.status_code != 200:
            time.sleep(1)
            continue
        arrived = time.time()
        body = answer.json()
        revision = body["revision"]
        for chunk in body["chunks"]:
            target = chunk["target"]
            if target in seqs and chunk["seq"] > seqs[target]:
                seqs[target] = chunk["seq"]
                got[target].append(chunk["data"])
                *lines, partial[target] = (partial[target] + chunk["data"]).split("\n")
                for line in lines:
                    if match := LINE.fullmatch(line):
                        delivery.append((arrived - float(match[2])) * 1000)
        if body["run"]["finished"] and not body["more"] and not body["chunks"]:
            return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30, help="browse at least this long")
    parser.add_argument("--think", type=float, default=1.0, help="longest think time, s")
    args = parser.parse_args()
    # One token for the API users: the per-token limit exists to refuse exactly that.
    os.environ["PIPETOWER_API_RATE_LIMIT"] = "100000000/m"
    _env.prepare("users")
    import _seed
    from django.contrib.auth import get_user_model
    from django.db import connections

    from pipetower.actions import services
    from pipetower.actions.models import OutputChunk, Run
    from pipetower.api.services import api_token_create
    from pipetower.servers.services import server_create, server_host_key_paste, team_ssh_key_ensure
    from pipetower.teams.models import Team
    from tests.sshd import ensure_test_user, start_fleet

    User = get_user_model()
    seeded = _seed.seed()
    team = Team.objects.get(slug=seeded.team)
    owner = User.objects.get(pk=seeded.user_id)
    write_token = api_token_create(user=owner, name="bench users", scope="write")[1]
    script = (
        f'for i in $(seq 1 {args.lines}); do echo "line $i $EPOCHREALTIME"; '
        f"sleep {LINE_EVERY}; done"
    )
    action = services.action_create(
        team=team, actor=owner, name="stream", script=script, concurrency=1000
    )
    ensure_test_user()
    print(f"starting {args.servers} sshd servers…", flush=True)
    fleet = start_fleet(args.servers)
    serve = None
    try:
        key = team_ssh_key_ensure(team=team, actor=owner)
        for index, sshd in enumerate(fleet):
            sshd.authorize(key.public_key)
            server = server_create(
                team=team,
                actor=owner,
                name=f"fleet-{index:03d}",
                host=sshd.host,
                port=sshd.port,
                username=sshd.user,
                tags=["fleet"],
            )
            server_host_key_paste(server=server, actor=owner, text=sshd.host_key_line)
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
        wait_healthy(f"{base}/healthz")
        time.sleep(3)  # the workers connect to their queues
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {write_token}"
        team_api = f"{base}/api/v1/teams/{team.slug}"
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)

        stop = threading.Event()
        tally = Tally()
        probe = HealthProbe(f"{base}/healthz")
        probe.start()
        started = time.monotonic()
        answer = api.post(f"{team_api}/actions/{action.pk}/runs", json={"targets": ["tag:fleet"]})
        answer.raise_for_status()
        run = answer.json()
        run_id, target_ids = run["id"], [t["id"] for t in run["targets"]]
        page = f"{base}/teams/{team.slug}"
        html = [
            ("HTML runs list", f"{page}/runs/"),
            ("HTML run page (streaming)", f"{page}/runs/{run_id}/"),
            ("HTML servers list", f"{page}/servers/"),
            ("HTML actions list", f"{page}/actions/"),
            ("HTML team overview", f"{page}/"),
        ]
        json_api = [
            ("API runs list", f"{team_api}/runs"),
            ("API run (streaming)", f"{team_api}/runs/{run_id}"),
            ("API actions list", f"{team_api}/actions"),
            ("API servers list", f"{team_api}/servers"),
        ]
        threads = []
        for number in range(args.users):
            session = requests.Session()
            if number % 2:
                session.headers["Authorization"] = f"Bearer {seeded.token}"
                urls = json_api
            else:
                session.headers["Cookie"] = seeded.session_cookie
                urls = html
            threads.append(
                threading.Thread(
                    target=user_loop, args=(tally, session, urls, args.think, stop), daemon=True
                )
            )
        received: list[dict[int, list[str]]] = []
        delivery: list[float] = []
        followers = []
        slices = [target_ids[i :: max(args.followers, 1)] for i in range(args.followers)]
        for part in slices:
            got: dict[int, list[str]] = defaultdict(list)
            received.append(got)
            session = requests.Session()
            session.headers["Cookie"] = seeded.session_cookie
            followers.append(
                threading.Thread(
                    target=follower_loop,
                    args=(
                        tally,
                        session,
                        f"{team_api}/runs/{run_id}/changes",
                        part,
                        got,
                        delivery,
                    ),
                    daemon=True,
                )
            )
        for thread in threads + followers:
            thread.start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if api.get(f"{team_api}/runs/{run_id}", timeout=30).json()["finished"]:
                break
            time.sleep(0.5)
        finished_after = time.monotonic() - started
        for thread in followers:
            thread.join(timeout=60)
        stop.wait(max(0.0, args.seconds - (time.monotonic() - started)))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        probe.stopping.set()
        probe.join()

        def complete(text: str) -> bool:
            numbers = [m[1] for m in map(LINE.fullmatch, text.split("\n")[:-1]) if m]
            return numbers == [str(i) for i in range(1, args.lines + 1)] and text.endswith("\n")

        stored: dict[int, str] = {}
        for target in Run.objects.get(pk=run_id).targets.all():
            stored[target.pk] = "".join(
                OutputChunk.objects.filter(run_target=target, stream="stdout")
                .order_by("seq")
                .values_list("data", flat=True)
            )
        statuses = Run.objects.get(pk=run_id).targets.values_list("status", flat=True)
        lost_stored = sum(
            max(1, args.lines - text.count("\n")) for text in stored.values() if not complete(text)
        )
        bad_stored = [t for t, text in stored.items() if not complete(text)]
        lost_live = 0
        for part, got in zip(slices, received, strict=True):
            for target in part:
                text = "".join(got.get(target, []))
                if text != "".join(
                    OutputChunk.objects.filter(run_target_id=target)
                    .order_by("seq")
                    .values_list("data", flat=True)
                ):
                    lost_live += max(1, args.lines - text.count("line "))
        vendor = "PostgreSQL + Redis" if os.environ.get("DATABASE_URL") else "SQLite, files"
        print(
            f"\n{vendor}: {args.servers} servers x {args.lines} lines, {args.users} users "
            f"(think 0.2-{args.think} s), {args.followers} followers; run finished after "
            f"{finished_after:.1f} s; targets: "
            + ", ".join(f"{s} {n}" for s, n in sorted(_count(statuses).items()))
        )
        print("\n| requests | count | errors | p50 ms | p95 ms | p99 ms |")
        print("|---|---|---|---|---|---|")
        errors = 0
        for kind in sorted(tally.latencies.keys() | tally.errors.keys()):
            values = tally.latencies[kind]
            errors += len(tally.errors[kind])
            print(
                f"| {kind} | {len(values)} | {len(tally.errors[kind])} "
                f"{_summary(tally.errors[kind])}| {percentile(values, 50):.0f} "
                f"| {percentile(values, 95):.0f} | {percentile(values, 99):.0f} |"
            )
        print(
            f"| /healthz (every 100 ms) | {len(probe.latencies)} | {probe.failures} | "
            f"{percentile(probe.latencies, 50):.0f} | {percentile(probe.latencies, 95):.0f} "
            f"| {percentile(probe.latencies, 99):.0f} |"
        )
        errors += probe.failures
        print(
            f"| live delivery, echo to follower ({len(delivery)} lines) | {len(delivery)} | - "
            f"| {percentile(delivery, 50):.0f} | {percentile(delivery, 95):.0f} "
            f"| {percentile(delivery, 99):.0f} |"
        )
        all_values = [v for values in tally.latencies.values() for v in values]
        print(
            f"\nall requests: {len(all_values)}, median {statistics.median(all_values):.0f} ms; "
            f"errors {errors}; lines lost in storage {lost_stored} "
            f"(servers with other output: {len(bad_stored)}); lines lost on the live path "
            f"{lost_live}; load average after: {os.getloadavg()[0]:.2f}"
        )
        if errors or lost_stored or lost_live or bad_stored:
            sys.exit(1)
    finally:
        if serve is not None and serve.poll() is None:
            os.kill(serve.pid, signal.SIGINT)
            try:
                serve.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
        for sshd in fleet:
            sshd.stop()


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return counts


def _summary(errors: list[str]) -> str:
    if not errors:
        return ""
    counts = _count(errors)
    return "(" + ", ".join(f"{n} x {e}" for e, n in sorted(counts.items())) + ") "


if __name__ == "__main__":
    main()
