"""Benchmark: `uname -a` on N loopback sshd servers through Pipetower's full path,
beside three baselines on the same servers in the same run: a plain asyncssh
script, parallel-ssh and `ansible -m raw` (ansible-core).

    make bench-fanout                                 (N = 10 50 200; BENCH_ARGS="10 50")
    .venv/bin/python bench/fanout.py 10 50 200        (BENCH_REPEATS=3 by default)

For each N the four are run in turn BENCH_REPEATS times (interleaved; the order
rotates with each repeat) and the medians are reported, with the ratio to
plain asyncssh, success per tool, the CPU each spent per host (Pipetower: its
worker and web processes; a baseline: its process and everything it started and
waited for, e.g. ansible's forks and their ssh clients) and the peak RSS
(Pipetower: the largest worker process's high-water mark; a baseline: its
largest process, from wait4). parallel-ssh and ansible come with `make bench`
(the `bench` extra); when one is not installed the bench says so and goes on
without it.

For each N: start N real sshd processes (tests/sshd.py), add them as servers
(team key authorized, host key pinned), then POST a run to the API served by
`pipetower web` (its defaults), let a Celery worker (2 prefork processes) execute
it, and follow it through the API's live path until it has finished, as
`pipetower run --follow` does (`changes?wait=`, every target's output). Pipetower's
time is from the POST to the follower seeing the run finished; success is status
succeeded and "Linux" in the stored output. (Until 2026-12-06 the bench read the
whole run, with its N targets, every 50 ms from granian in WSGI mode instead.)
- plain asyncssh (bench/plain_asyncssh.py) and parallel-ssh (bench/plain_pssh.py)
  time themselves from their first connection to the last answer (interpreter
  start-up and imports not included);
- ansible is timed from outside: the whole `ansible all -i INV -m raw -a
  'uname -a' -f N` command, start-up and inventory parsing included. Its temp
  directory holds an INI inventory, a known_hosts file with the pinned keys
  (ANSIBLE_HOST_KEY_CHECKING=True, StrictHostKeyChecking=yes) and the team's
  private key (0600); no ControlMaster, so every repeat is cold like the others.
  A host is ok when its line says rc=0 and "Linux".

"Pipetower warm" is the same run again right after WARM_PRIMES untimed ones,
so the worker's SSH connections are still open (warm connections,
docs/actions.md). Each of the worker's 2 processes keeps its own connections
and Celery gives a shard to either, so one untimed run warms only the process
that ran each shard; after 3 (if Celery chose at random) a shard would find
its process warm 7 times in 8. The worker keeps them for
WARM_IDLE_SECONDS, and before each cold Pipetower
sample the bench waits until that has passed since the last run, so "Pipetower"
stays cold. The warm ratio is to a cold plain asyncssh run (the issue's target:
within 0.3x). "plain asyncssh warm" is the floor for it: the plain script
connects to every host first and times only the `uname -a` runs on the open
connections (its CPU and RSS include the connecting).
Needs root (sshd) like the SSH tests. Loopback only.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

HERE = Path(__file__).resolve().parent
WARM_IDLE_SECONDS = 10
WARM_PRIMES = 3
TOOLS = ("pipetower", "warm", "plain", "plainwarm", "pssh", "ansible")
NAMES = {
    "pipetower": "Pipetower",
    "warm": "Pipetower warm",
    "plain": "plain asyncssh",
    "plainwarm": "plain asyncssh warm",
    "pssh": "parallel-ssh",
    "ansible": "ansible",
}


def main(sizes: list[int]) -> None:
    _env.prepare("fanout")
    from pipetower.actions import services
    from pipetower.api.services import api_token_create
    from pipetower.servers.services import (
        server_create,
        server_host_key_paste,
        team_ssh_key_ensure,
    )
    from pipetower.teams.models import Membership, Role
    from tests.factories import TeamFactory, UserFactory
    from tests.sshd import ensure_test_user, start_fleet

    available = _available_tools()
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    print(
        f"fan-out: N = {sizes}, {repeats} repeats, tools: {', '.join(available)}; "
        f"load average {_loadavg()}",
        flush=True,
    )
    ensure_test_user()
    user = UserFactory(email="bench@example.com")
    team = TeamFactory(slug="bench")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    token = api_token_create(user=user, name="bench", scope="write")[1]
    action = services.action_create(
        team=team, actor=user, name="uname", script="uname -a", concurrency=1000
    )
    port = _env.serving_port()
    web = _env.start_pipetower_web(port)
    os.environ["PIPETOWER_SSH_IDLE_SECONDS"] = str(WARM_IDLE_SECONDS)
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
                spec = _plain_spec(team, fleet)
                ansible_dir = _ansible_dir(spec) if "ansible" in available else None
                runners = {
                    "pipetower": partial(
                        _pipetower, session, api, action.pk, tag, worker, web, warm=False
                    ),
                    "warm": partial(
                        _pipetower, session, api, action.pk, tag, worker, web, warm=True
                    ),
                    "plain": partial(_script, "plain_asyncssh.py", spec),
                    "plainwarm": partial(_script, "plain_asyncssh.py", spec, "--warm"),
                    "pssh": partial(_script, "plain_pssh.py", spec),
                    "ansible": partial(_ansible, ansible_dir, count),
                }
                samples: list[dict[str, dict[str, float]]] = []
                try:
                    for repeat in range(repeats):
                        order = available[repeat % len(available) :]
                        order += available[: repeat % len(available)]
                        sample = {tool: runners[tool]() for tool in order}
                        samples.append(sample)
                        print(
                            f"  N={count} repeat {repeat + 1} (load {_loadavg()}): "
                            + ", ".join(
                                f"{NAMES[t]} {sample[t]['seconds']:.2f} s "
                                f"({sample[t]['ok']:.0f} ok)"
                                for t in order
                            ),
                            flush=True,
                        )
                finally:
                    Path(spec).unlink(missing_ok=True)
                    if ansible_dir:
                        shutil.rmtree(ansible_dir, ignore_errors=True)
                row: dict[str, dict[str, float]] = {"n": {"n": count}}
                for tool in available:
                    keys = samples[0][tool]
                    row[tool] = {k: statistics.median(s[tool][k] for s in samples) for k in keys}
                    row[tool]["ok"] = min(s[tool]["ok"] for s in samples)
                row["n"]["load"] = float(_loadavg().split()[0])
                rows.append(row)
                p = row["pipetower"]
                print(
                    f"N={count:4d}  Pipetower {p['seconds']:6.2f} s  (POST answered "
                    f"{p['post']:.2f} s, first target started {p['first']:.2f} s, median target "
                    f"{p['median_target']:.2f} s, shards {p['shards']:.0f})  "
                    f"success {p['ok']:.0f}/{count}; CPU s: worker {p['worker_cpu']:.1f}, "
                    f"web {p['web_cpu']:.1f}, whole machine {p['machine_cpu']:.1f}",
                    flush=True,
                )
            finally:
                for sshd in fleet:
                    sshd.stop()
    finally:
        _env.stop(worker)
        _env.stop(web)
    _table(rows, available)


_last_pipetower_run = [0.0]


def _available_tools() -> list[str]:
    tools = ["pipetower", "warm", "plain", "plainwarm"]
    try:
        import pssh.clients  # noqa: F401
    except ImportError:
        print("skip parallel-ssh: not installed (make bench installs the bench extra)")
    else:
        tools.append("pssh")
    if _ansible_bin():
        tools.append("ansible")
    else:
        print("skip ansible: ansible-core not installed (make bench installs the bench extra)")
    return tools


def _ansible_bin() -> str | None:
    beside = Path(sys.executable).with_name("ansible")
    return str(beside) if beside.exists() else shutil.which("ansible")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _table(rows: list[dict[str, dict[str, float]]], tools: list[str]) -> None:
    base = [t for t in tools if t != "plain"]
    print(
        "\n| N | "
        + " | ".join(f"{NAMES[t]} (s)" for t in tools)
        + " | "
        + " | ".join(f"{NAMES[t]} ÷ plain" for t in base)
        + " | success: "
        + " / ".join(NAMES[t] for t in tools)
        + " | CPU ms/host: "
        + " / ".join(NAMES[t] for t in tools)
        + " | peak RSS MB: Pipetower worker / "
        + " / ".join(NAMES[t] for t in tools if t != "pipetower")
        + " | load |"
    )
    print("|---" * (1 + len(tools) + len(base) + 4) + "|")
    for row in rows:
        n = row["n"]["n"]
        plain = row["plain"]["seconds"]
        print(
            f"| {n:.0f} | "
            + " | ".join(f"{row[t]['seconds']:.2f}" for t in tools)
            + " | "
            + " | ".join(f"{row[t]['seconds'] / plain:.2f}x" for t in base)
            + " | "
            + " / ".join(f"{row[t]['ok']:.0f}" for t in tools)
            + f" of {n:.0f} | "
            + " / ".join(f"{1000 * row[t]['cpu'] / n:.0f}" for t in tools)
            + " | "
            + " / ".join(f"{row[t]['rss']:.0f}" for t in tools)
            + f" | {row['n']['load']:.2f} |"
        )


def _pipetower(session, api, action_id, tag, worker, web, *, warm: bool) -> dict[str, float]:
    from pipetower.actions.models import OutputChunk, Run

    if warm:
        for _ in range(WARM_PRIMES):  # open the connections in both processes, untimed
            _pipetower_run(session, api, action_id, tag)
    else:
        idle = time.monotonic() - _last_pipetower_run[0]
        if idle < WARM_IDLE_SECONDS + 1:
            time.sleep(WARM_IDLE_SECONDS + 1 - idle)  # the worker closed them: cold
    worker_cpu = _env.tree_cpu_seconds(worker.pid)
    web_cpu = _env.tree_cpu_seconds(web.pid)
    machine_cpu = _env.machine_cpu_seconds()
    began = time.monotonic()
    run_id, posted, first_running = _pipetower_run(session, api, action_id, tag)
    elapsed = time.monotonic() - began
    worker_cpu = _env.tree_cpu_seconds(worker.pid) - worker_cpu
    web_cpu = _env.tree_cpu_seconds(web.pid) - web_cpu
    machine_cpu = _env.machine_cpu_seconds() - machine_cpu
    run = Run.objects.get(pk=run_id)
    ok = 0
    durations = []
    for target in run.targets.all():
        text = "".join(OutputChunk.objects.filter(run_target=target).values_list("data", flat=True))
        if target.status == "succeeded" and text.startswith("Linux"):
            ok += 1
        if target.duration is not None:
            durations.append(target.duration.total_seconds())
    return {
        "seconds": elapsed,
        "post": posted,
        "first": first_running or 0.0,
        "ok": ok,
        "shards": run.shard_count,
        "median_target": statistics.median(durations) if durations else 0.0,
        "worker_cpu": worker_cpu,
        "web_cpu": web_cpu,
        "machine_cpu": machine_cpu,
        "cpu": worker_cpu + web_cpu,
        "rss": _env.tree_peak_rss_mb(worker.pid),
    }


def _pipetower_run(session, api, action_id, tag) -> tuple[int, float, float | None]:
    """POST a run and follow it until it is finished, as `pipetower run --follow` does
    (the live path: `changes?wait=`, every target's output): its id, when the POST was
    answered and when the first target left the queue (seconds from the POST)."""
    began = time.monotonic()
    answer = session.post(f"{api}/actions/{action_id}/runs", json={"targets": [f"tag:{tag}"]})
    answer.raise_for_status()
    run = answer.json()
    posted = time.monotonic() - began
    cursor = {target["id"]: 0 for target in run["targets"]}
    revision = 0
    first_running = None
    while True:
        changes = session.get(
            f"{api}/runs/{run['id']}/changes",
            params={
                "rev": revision,
                "after": ",".join(f"{t}:{s}" for t, s in cursor.items()),
                "wait": 20,
            },
        )
        changes.raise_for_status()
        body = changes.json()
        revision = body["revision"]
        for chunk in body["chunks"]:
            cursor[chunk["target"]] = max(cursor[chunk["target"]], chunk["seq"])
        if first_running is None and any(t["status"] != "queued" for t in body["targets"]):
            first_running = time.monotonic() - began
        if body["run"]["finished"] and not body["more"]:
            break
    _last_pipetower_run[0] = time.monotonic()
    return run["id"], posted, first_running


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


# Runs a command and writes its wall time and wait4 rusage as JSON to the file argv[1]. A
# fork from this small interpreter, not from the bench (hundreds of MB with Django): on
# Linux a process's peak RSS starts at its parent's when it is spawned with the parent's
# memory (vfork, posix_spawn), so measured from here every baseline would "peak" at the
# bench's own size. With this helper the floor is its own ~10 MB.
_RUSAGE_HELPER = """
import json, os, sys, time
began = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"wall": time.monotonic() - began, "status": os.waitstatus_to_exitcode(status),
               "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}, out)
"""


def _measured(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float | str]:
    """Run a command to its end: its stdout, wall seconds, CPU seconds (it and every
    descendant it waited for) and peak RSS in MB (its largest such process), from wait4."""
    handle, report = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _RUSAGE_HELPER, report, *argv],
            capture_output=True,
            env=env,
        )
        usage = json.loads(Path(report).read_text())
    finally:
        Path(report).unlink(missing_ok=True)
    if usage["status"] != 0 and not done.stdout:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode()[-2000:]}")
    return {"stdout": done.stdout.decode(errors="replace"), **usage}


def _script(name: str, spec_path: str, *options: str) -> dict[str, float]:
    """A baseline script (bench/plain_*.py): the time it measured itself, hosts ok, CPU, RSS."""
    done = _measured([sys.executable, str(HERE / name), spec_path, *options])
    answer = json.loads(str(done["stdout"]))
    return {
        "seconds": float(answer["seconds"]),
        "ok": int(answer["ok"]),
        "cpu": float(done["cpu"]),
        "rss": float(done["rss"]),
    }


def _ansible_dir(spec_path: str) -> str:
    """A temp directory for ansible: inventory, known_hosts with the pinned keys, the key."""
    spec = json.loads(Path(spec_path).read_text())
    directory = Path(tempfile.mkdtemp(prefix="pipetower-bench-ansible-"))
    key = directory / "id_team"
    key.touch(mode=0o600)
    key.write_text(spec["key"])
    known = directory / "known_hosts"
    known.write_text("".join(f"[{h}]:{p} {pin}\n" for h, p, pin in spec["hosts"]))
    common = (
        f"-o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    )
    lines = ["[all]"]
    lines += [
        f"h{i:03d} ansible_host={h} ansible_port={p} ansible_user={spec['user']}"
        for i, (h, p, _pin) in enumerate(spec["hosts"])
    ]
    lines += [
        "",
        "[all:vars]",
        f"ansible_ssh_private_key_file={key}",
        f"ansible_ssh_common_args='{common}'",
        "",
    ]
    (directory / "inventory.ini").write_text("\n".join(lines))
    (directory / "home").mkdir()
    (directory / "ansible.cfg").write_text("[defaults]\n")
    return str(directory)


def _ansible(directory: str | None, count: int) -> dict[str, float]:
    assert directory is not None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_CONFIG": f"{directory}/ansible.cfg",  # empty: no ansible.cfg from cwd or ~
        "ANSIBLE_HOME": f"{directory}/home",
        "ANSIBLE_LOCAL_TEMP": f"{directory}/home/tmp",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no",  # cold: no connection kept between repeats
        "ANSIBLE_STDOUT_CALLBACK": "oneline",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "True",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_TIMEOUT": "60",
    }
    done = _measured(
        [
            str(_ansible_bin()),
            "all",
            "-i",
            f"{directory}/inventory.ini",
            "-m",
            "raw",
            "-a",
            "uname -a",
            "-f",
            str(count),
        ],
        env=env,
    )
    ok = {
        line.split(" | ", 1)[0]
        for line in str(done["stdout"]).splitlines()
        if " | rc=0 | " in line and "(stdout) Linux" in line
    }
    return {
        "seconds": float(done["wall"]),
        "ok": len(ok),
        "cpu": float(done["cpu"]),
        "rss": float(done["rss"]),
    }


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 50, 200])
