"""Warm connections: a worker keeps its SSH connection to a server open after a run
and the next run on that server uses it, unless anything it was opened with changed.

Whether a run reused a connection is read on the server: the script prints
`$SSH_CONNECTION`, whose client port is the TCP connection's own; and the sshd
listener has one child process per open connection."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from pipetower.actions import services
from pipetower.actions.models import RunStatus
from pipetower.servers.services import server_host_key_paste, team_ssh_key_rotation_start
from pipetower.servers.ssh import ConnectionSpec
from pipetower.servers.warm import identity_of, warm_close_all, warm_connections
from tests.actions.conftest import add_server, execute, output_of
from tests.sshd import SshdServer

pytestmark = pytest.mark.django_db

PRINT_CLIENT_PORT = 'set -- $SSH_CONNECTION; echo "port=$2"'


@pytest.fixture
def warm(settings):
    settings.ACTIONS_SSH_IDLE_SECONDS = 30
    settings.ACTIONS_SSH_WARM_PER_HOST = 4
    settings.ACTIONS_SSH_WARM_PER_WORKER = 500
    warm_close_all()
    yield settings
    warm_close_all()


def client_port(user, action, server) -> str:
    run = execute(services.run_start(action=action, actor=user, server_ids=[server.pk], values={}))
    assert run.status == RunStatus.SUCCEEDED, [t.error for t in run.targets.all()]
    return output_of(run.targets.get()).strip()


def connections_open(sshd: SshdServer) -> int:
    """Connections the sshd holds: its listener forks one child per connection."""
    found = subprocess.run(["pgrep", "-P", str(sshd.pid)], capture_output=True, text=True)
    return len(found.stdout.split())


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_next_run_on_a_server_uses_the_open_connection(warm, user, ssh_server, make_action):
    action = make_action(PRINT_CLIENT_PORT)
    first = client_port(user, action, ssh_server)
    second = client_port(user, action, ssh_server)
    third = client_port(user, action, ssh_server)
    assert first.startswith("port=")
    assert first == second == third
    assert len(warm_connections()) == 1


def test_with_warm_connections_off_every_run_connects_afresh(
    settings, user, ssh_server, make_action, sshd
):
    settings.ACTIONS_SSH_IDLE_SECONDS = 0
    action = make_action(PRINT_CLIENT_PORT)
    assert client_port(user, action, ssh_server) != client_port(user, action, ssh_server)
    assert wait_for(lambda: connections_open(sshd) == 0)


def test_an_idle_connection_is_closed_after_the_idle_time(
    warm, user, ssh_server, make_action, sshd
):
    warm.ACTIONS_SSH_IDLE_SECONDS = 1
    client_port(user, make_action(PRINT_CLIENT_PORT), ssh_server)
    assert connections_open(sshd) == 1
    assert wait_for(lambda: connections_open(sshd) == 0, timeout=5)
    assert len(warm_connections()) == 0


def test_re_pinning_the_host_key_closes_the_old_connection_and_opens_a_new_one(
    warm, team, user, make_action
):
    sshd = SshdServer(host_key_types=("ed25519", "ecdsa")).start()
    try:
        server = add_server(team, user, sshd, name="two-keys")
        action = make_action(PRINT_CLIENT_PORT)
        before = client_port(user, action, server)
        server_host_key_paste(
            server=server, actor=user, text=sshd.host_key_line_of("ecdsa"), replace=True
        )
        server.refresh_from_db()
        after = client_port(user, action, server)
        assert after != before
        assert wait_for(lambda: connections_open(sshd) == 1)
        assert len(warm_connections()) == 1
    finally:
        warm_close_all()
        sshd.stop()


def test_a_credential_change_means_a_new_connection(warm, team, user, ssh_server, make_action):
    action = make_action(PRINT_CLIENT_PORT)
    before = client_port(user, action, ssh_server)
    team_ssh_key_rotation_start(team=team, actor=user)  # the team now offers two keys
    assert client_port(user, action, ssh_server) != before


def test_a_connection_the_server_dropped_while_idle_is_replaced(
    warm, user, ssh_server, make_action, sshd
):
    action = make_action(PRINT_CLIENT_PORT)
    before = client_port(user, action, ssh_server)
    for pid in subprocess.run(
        ["pgrep", "-P", str(sshd.pid)], capture_output=True, text=True
    ).stdout.split():
        os.kill(int(pid), signal.SIGTERM)
    assert wait_for(lambda: connections_open(sshd) == 0)
    assert client_port(user, action, ssh_server) != before


def test_at_most_per_host_idle_connections_to_one_address(warm, team, user, sshd, make_action):
    warm.ACTIONS_SSH_WARM_PER_HOST = 1
    servers = [add_server(team, user, sshd, name=f"alias-{n}") for n in range(3)]
    run = execute(
        services.run_start(
            action=make_action("sleep 0.5"),
            actor=user,
            server_ids=[s.pk for s in servers],
            values={},
        )
    )
    assert run.status == RunStatus.SUCCEEDED
    assert len(warm_connections()) == 1
    assert wait_for(lambda: connections_open(sshd) == 1)


def test_at_most_per_worker_idle_connections_the_oldest_closing_first(
    warm, team, user, sshd_fleet, make_action
):
    warm.ACTIONS_SSH_WARM_PER_WORKER = 1
    first, second = sshd_fleet(2)
    action = make_action(PRINT_CLIENT_PORT)
    client_port(user, action, add_server(team, user, first, name="first"))
    client_port(user, action, add_server(team, user, second, name="second"))
    assert len(warm_connections()) == 1
    assert wait_for(lambda: connections_open(first) == 0)
    assert connections_open(second) == 1


def test_a_script_that_exited_non_zero_leaves_its_connection_warm(
    warm, user, ssh_server, make_action
):
    failed = execute(
        services.run_start(
            action=make_action("exit 4"), actor=user, server_ids=[ssh_server.pk], values={}
        )
    )
    assert failed.status == RunStatus.FAILED
    assert len(warm_connections()) == 1


def test_a_script_stopped_at_its_timeout_does_not_leave_its_connection_open(
    warm, fast_engine, user, ssh_server, make_action, sshd
):
    run = execute(
        services.run_start(
            action=make_action("sleep 30", timeout_seconds=1),
            actor=user,
            server_ids=[ssh_server.pk],
            values={},
        )
    )
    assert run.targets.get().status == "timed_out"
    assert len(warm_connections()) == 0
    assert wait_for(lambda: connections_open(sshd) == 0)


def identity(**changes) -> tuple:
    fields = {
        "server_id": 1,
        "host": "127.0.0.1",
        "port": 22,
        "username": "deploy",
        "password": "old secret",
        "pinned_host_keys": ("ssh-ed25519 AAAA",),
    }
    return identity_of(ConnectionSpec(**(fields | changes)))


@pytest.mark.parametrize(
    "change",
    [
        {"server_id": 2},
        {"host": "127.0.0.2"},
        {"port": 2222},
        {"username": "root"},
        {"password": "new secret"},
        {"pinned_host_keys": ("ssh-ed25519 BBBB",)},
    ],
)
def test_any_change_to_what_a_connection_was_opened_with_changes_its_identity(change):
    assert identity(**change) != identity()
