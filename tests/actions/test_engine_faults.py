"""The engine when things go wrong mid-run: a host that stops answering, a dropped
connection, a cancel while connecting, a host key pinned meanwhile, the database
going away. Real sshd, real PostgreSQL; the slow network is a real loopback proxy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from pipetower.actions import services
from pipetower.actions.models import OutputChunk, Run, RunStatus, RunTarget, TargetStatus
from pipetower.servers.models import Server
from pipetower.servers.services import team_server_settings_update
from tests.actions.conftest import ANY_HOST_KEY, add_server, execute, output_of
from tests.actions.test_worker import purge_filesystem_queue
from tests.core._ops import kill_all

pytestmark = pytest.mark.django_db(transaction=True)


def start(action, user, servers):
    return services.run_start(action=action, actor=user, server_ids=[s.pk for s in servers])


def in_thread(run: Run) -> threading.Thread:
    def work() -> None:
        try:
            execute(run)
        finally:
            connection.close()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    return worker


def wait_for_output(run: Run, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not OutputChunk.objects.filter(run_target__run=run, data__contains=text).exists():
        assert time.monotonic() < deadline, f"no output {text!r}"
        time.sleep(0.05)


def session_processes(listener_pid: int) -> list[int]:
    """The per-connection sshd processes below a listening sshd (not the scripts)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            names[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(listener_pid, []))
    while todo:
        pid = todo.pop()
        if names.get(pid, "").startswith("sshd"):
            found.append(pid)
            todo += children.get(pid, [])
    return found


class DelayProxy:
    """A loopback TCP proxy that waits `delay` seconds before connecting a client
    through: a slow network, so the test can act while a target is connecting."""

    def __init__(self, port: int, delay: float) -> None:
        self.upstream, self.delay = port, delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        time.sleep(self.delay)
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def delay_proxy() -> Iterator[type[DelayProxy]]:
    made: list[DelayProxy] = []

    def make(port: int, delay: float) -> DelayProxy:
        made.append(DelayProxy(port, delay))
        return made[-1]

    yield make  # type: ignore[misc]
    for proxy in made:
        proxy.close()


def test_a_host_that_stops_answering_mid_script_fails_within_the_keepalive_bound(
    team, user, sshd, make_action, fast_engine, settings, tasks_queued
):
    """SIGSTOP the sshd session: with keepalives every 0.5 s (3 unanswered end the
    connection) the target fails in seconds, not at the action's 60 s timeout."""
    settings.ACTIONS_KEEPALIVE_SECONDS = 0.5
    server = add_server(team, user, sshd, name="frozen")
    run = start(make_action("echo started; sleep 60", timeout_seconds=60), user, [server])
    worker = in_thread(run)
    wait_for_output(run, "started")
    stopped = session_processes(sshd.pid)
    assert stopped
    frozen_at = time.monotonic()
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        worker.join(timeout=30)
        elapsed = time.monotonic() - frozen_at
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert not worker.is_alive()
    assert elapsed < 15
    target = RunTarget.objects.get(run=run)
    assert target.status == TargetStatus.UNREACHABLE
    assert "connection to frozen was lost while the script ran" in target.error
    assert output_of(target, "stdout") == "started\n"


def test_a_connection_lost_mid_script_is_unreachable_as_documented(
    team, user, sshd, make_action, fast_engine, tasks_queued
):
    server = add_server(team, user, sshd, name="dropped")
    run = start(make_action("echo started; sleep 60", timeout_seconds=60), user, [server])
    worker = in_thread(run)
    wait_for_output(run, "started")
    kill_all(session_processes(sshd.pid))
    worker.join(timeout=30)
    assert not worker.is_alive()
    target = RunTarget.objects.get(run=run)
    assert target.status == TargetStatus.UNREACHABLE
    assert "was lost while the script ran" in target.error
    assert "whether the script finished is unknown" in target.error
    assert output_of(target, "stdout") == "started\n"
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED


def test_a_run_cancelled_while_connecting_never_runs_the_script(
    team, user, sshd, make_action, fast_engine, tasks_queued, delay_proxy
):
    folder = Path(tempfile.mkdtemp(prefix="pt-cancel-"))
    os.chmod(folder, 0o777)
    server = add_server(team, user, sshd, name="slow")
    proxy = delay_proxy(sshd.port, 1.5)
    Server.objects.filter(pk=server.pk).update(port=proxy.port)
    run = start(make_action(f"touch {folder}/ran; sleep 30"), user, [server])
    worker = in_thread(run)
    deadline = time.monotonic() + 10
    while not RunTarget.objects.filter(run=run, status=TargetStatus.CONNECTING).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled_at = time.monotonic()
    services.run_cancel(run=run, actor=user)
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 5  # the 1.5 s link, not the 30 s script
    target = RunTarget.objects.get(run=run)
    assert target.status == TargetStatus.CANCELLED
    time.sleep(0.3)
    assert not (folder / "ran").exists(), "the script ran after the cancel"


def test_a_key_pinned_by_another_connection_meanwhile_is_compared_before_running(
    team, user, sshd, make_action, fast_engine, tasks_queued, delay_proxy
):
    """Trust on first use: while this connection is being made, another pins a
    different key for the server. The engine compares with that pin and runs nothing."""
    folder = Path(tempfile.mkdtemp(prefix="pt-tofu-"))
    os.chmod(folder, 0o777)
    team_server_settings_update(team=team, actor=user, trust_on_first_use=True)
    server = add_server(team, user, sshd, name="fresh", pin=False)
    proxy = delay_proxy(sshd.port, 1.0)
    Server.objects.filter(pk=server.pk).update(port=proxy.port)
    run = start(make_action(f"touch {folder}/ran"), user, [server])
    worker = in_thread(run)
    deadline = time.monotonic() + 10
    while not RunTarget.objects.filter(run=run, status=TargetStatus.CONNECTING).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    Server.objects.filter(pk=server.pk).update(host_keys=ANY_HOST_KEY)  # the other pin
    worker.join(timeout=20)
    assert not worker.is_alive()
    target = RunTarget.objects.get(run=run)
    assert target.status == TargetStatus.HOST_KEY_MISMATCH
    assert "another connection pinned" in target.error
    assert "Nothing was run" in target.error
    assert not (folder / "ran").exists()
    assert Server.objects.get(pk=server.pk).host_keys == ANY_HOST_KEY  # that pin stays


def test_output_and_the_ending_survive_the_database_dropping_the_workers_connection(
    team, user, sshd, make_action, fast_engine, tasks_queued
):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL; .ci/run runs this on it.")
    server = add_server(team, user, sshd, name="db-blip")
    script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done"
    run = start(make_action(script), user, [server])
    worker = in_thread(run)
    wait_for_output(run, "line 1")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    worker.join(timeout=60)
    assert not worker.is_alive()
    target = RunTarget.objects.get(run=run)
    assert target.status == TargetStatus.SUCCEEDED
    assert output_of(target) == "".join(f"line {i}\n" for i in range(1, 7))
    seqs = list(target.chunks.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_shard_task_is_queued_with_a_time_limit_above_the_action_timeout(
    team, user, sshd, make_action, tasks_queued
):
    from celery.signals import before_task_publish

    published: list[dict] = []

    def record(sender: str = "", headers: dict | None = None, **_: object) -> None:
        if sender.endswith("run_shard_execute_task"):
            published.append(headers or {})

    before_task_publish.connect(record, weak=False)
    try:
        server = add_server(team, user, sshd, name="web-1")
        start(make_action(timeout_seconds=600), user, [server])
    finally:
        before_task_publish.disconnect(record)
        purge_filesystem_queue()
    assert len(published) == 1
    hard, _soft = published[0]["timelimit"]
    assert hard > 600
