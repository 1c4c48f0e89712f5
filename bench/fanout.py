"""Benchmark: `uname -a` on N loopback sshd servers through Pipetower's full path,
beside a plain asyncssh script on the same servers in the same run.

    .venv/bin/python bench/fanout.py 10 50 200      (BENCH_REPEATS=3 by default)

For each N the two are run in turn BENCH_REPEATS times (interleaved) and the
medians are reported, with the ratio and the CPU each spent per host (Pipetower:
its worker and web processes; plain: the script's process).

For each N: start N real sshd processes (tests/sshd.py), add them as servers
(team key authorized, host key pinned), then POST a run to the API served by
granian, let a Celery worker (embedded filesystem transport) execute it, and
poll the API until the run has finished. Prints the wall time from the POST to
the last stored result, and per-host success (status succeeded and "Linux" in
the stored output). Needs root (sshd) like the SSH tests.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env


def main(sizes: list[int]) -> None:
    _env.prepare("fanout")
    from pipetower.actions import services
    from pipetower.actions.models import OutputChunk, Run
    from pipetower.api.services import api_token_create
    from pipetower.servers.services import (
        server_create,
        server_host_key_paste,
        team_ssh_key_ensure,
    )
    from pipetower.teams.models import Membership, Role
    from tests.factories import TeamFactory, UserFactory
    from tests.sshd import ensure_test_user, start_fleet

    ensure_test_user()
    user = UserFactory(email="bench@example.com")
    team = TeamFactory(slug="bench")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    token = api_token_create(user=user, name="bench", scope="write")[1]
    action = services.action_create(
        team=team, actor=user, name="uname", script="uname -a", concurrency=1000
    )
    port = _env.serving_port()
    web = _env.start_web(port)
    worker = _env.start_worker(concurrency=2)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"http://127.0.0.1:{port}/api/v1/teams/{team.slug}"
    rows = []
    try:
        time.sleep(3)  # let the worker connect to the queue
        session.get(f"{api}/actions").raise_for_status()  # warm the web process up
        for count in sizes:
            fleet = start_fleet(count)
            try:
                key = team_ssh_key_ensure(team=team, actor=user)
                tag = f"bench{count}"
                for index, sshd in enumerate(fleet):
                    sshd.authorize(key.public_key)
                    server = server_create(
                        team=team,
                        actor=user,
                        name=f"{tag}-{index:03d}",
                        host=sshd.host,
                        port=sshd.port,
                        username=sshd.user,
                        tags=[tag],
                    )
                    server_host_key_paste(server=server, actor=user, text=sshd.host_key_line)
                plain_spec = _plain_spec(team, fleet)
                samples = []
                for _ in range(int(os.environ.get("BENCH_REPEATS", "3"))):
                    plain = _plain(plain_spec)
                    worker_cpu = _env.tree_cpu_seconds(worker.pid)
                    web_cpu = _env.tree_cpu_seconds(web.pid)
                    machine_cpu = _env.machine_cpu_seconds()
                    began = time.monotonic()
                    answer = session.post(
                        f"{api}/actions/{action.pk}/runs", json={"targets": [f"tag:{tag}"]}
                    )
                    answer.raise_for_status()
                    run_id = answer.json()["id"]
                    posted = time.monotonic() - began
                    first_running = None
                    while True:
                        detail = session.get(f"{api}/runs/{run_id}").json()
                        if first_running is None and any(
                            t["status"] != "queued" for t in detail["targets"]
                        ):
                            first_running = time.monotonic() - began
                        if detail["finished"]:
                            break
                        time.sleep(0.05)
                    elapsed = time.monotonic() - began
                    worker_cpu = _env.tree_cpu_seconds(worker.pid) - worker_cpu
                    web_cpu = _env.tree_cpu_seconds(web.pid) - web_cpu
                    machine_cpu = _env.machine_cpu_seconds() - machine_cpu
                    run = Run.objects.get(pk=run_id)
                    ok = 0
                    durations = []
                    for target in run.targets.all():
                        text = "".join(
                            OutputChunk.objects.filter(run_target=target).values_list(
                                "data", flat=True
                            )
                        )
                        if target.status == "succeeded" and text.startswith("Linux"):
                            ok += 1
                        if target.duration is not None:
                            durations.append(target.duration.total_seconds())
                    row = {
                        "n": count,
                        "seconds": elapsed,
                        "post": posted,
                        "first": first_running or 0.0,
                        "ok": ok,
                        "shards": run.shard_count,
                        "median_target": statistics.median(durations) if durations else 0.0,
                        "worker_cpu": worker_cpu,
                        "web_cpu": web_cpu,
                        "machine_cpu": machine_cpu,
                    }
                    row["plain"], row["plain_ok"], row["plain_cpu"] = plain
                    samples.append(row)
                    print(
                        f"  N={count}: Pipetower {row['seconds']:.2f} s, "
                        f"plain asyncssh {row['plain']:.2f} s",
                        flush=True,
                    )
                row = {
                    key: statistics.median(sample[key] for sample in samples) for key in samples[0]
                }
                row["ok"] = min(sample["ok"] for sample in samples)
                row["plain_ok"] = min(sample["plain_ok"] for sample in samples)
                rows.append(row)
                print(
                    f"N={count:4d}  total {elapsed:6.2f} s  (POST answered {posted:.2f} s, "
                    f"first target started {row['first']:.2f} s, median target "
                    f"{row['median_target']:.2f} s, shards {run.shard_count})  "
                    f"success {ok}/{count}; CPU s: worker {worker_cpu:.1f}, web {web_cpu:.1f}, "
                    f"whole machine {machine_cpu:.1f}",
                    flush=True,
                )
            finally:
                for sshd in fleet:
                    sshd.stop()
    finally:
        _env.stop(worker)
        _env.stop(web)
    print(
        "\n| N | Pipetower (s) | plain asyncssh (s) | ratio | first target started (s) | "
        "success | CPU ms/host: Pipetower (worker + web) / plain |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['seconds']:.2f} | {r['plain']:.2f} | "
            f"{r['seconds'] / r['plain']:.2f}x | {r['first']:.2f} | "
            f"{r['ok']:.0f}/{r['n']} (plain {r['plain_ok']:.0f}) | "
            f"{1000 * (r['worker_cpu'] + r['web_cpu']) / r['n']:.0f} / "
            f"{1000 * r['plain_cpu'] / r['n']:.0f} |"
        )


def _plain_spec(team, fleet) -> str:
    from pipetower.servers.keys import load_private_key
    from pipetower.servers.selectors import team_ssh_key_current

    key = team_ssh_key_current(team=team)
    private = load_private_key(key.private_key).export_private_key().decode()
    hosts = [[s.host, s.port, s.host_key_line] for s in fleet]
    handle, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump({"key": private, "user": fleet[0].user, "hosts": hosts}, out)
    return path


def _plain(spec_path: str) -> tuple[float, int, float]:
    """Run the plain asyncssh script: (seconds, hosts ok, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("plain_asyncssh.py")), spec_path],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    answer = json.loads(done.stdout)
    return float(answer["seconds"]), int(answer["ok"]), cpu


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 50, 200])
