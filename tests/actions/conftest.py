"""Fixtures for actions and runs: servers backed by real sshd processes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pipetower.actions import engine, services
from pipetower.actions.models import Action, Run, RunTarget
from pipetower.servers.models import Server
from pipetower.servers.selectors import team_ssh_key_current
from pipetower.servers.services import (
    server_create,
    server_host_key_paste,
    team_ssh_key_ensure,
)
from pipetower.teams.models import Role, Team
from tests.sshd import SshdServer


def add_server(
    team: Team,
    actor: Any,
    sshd: SshdServer,
    *,
    name: str = "",
    tags: Sequence[str] = (),
    authorize: bool = True,
    pin: bool = True,
) -> Server:
    """A team server pointing at a real sshd: the team key authorized, its host key pinned."""
    server = server_create(
        team=team,
        actor=actor,
        name=name or f"host-{sshd.port}",
        host=sshd.host,
        port=sshd.port,
        username=sshd.user,
        tags=list(tags),
    )
    if authorize:
        key = team_ssh_key_current(team=team)
        assert key is not None
        sshd.authorize(key.public_key)
    if pin:
        server_host_key_paste(server=server, actor=actor, text=sshd.host_key_line)
    server.refresh_from_db()
    return server


def unpinned_server(team: Team, name: str = "fresh", port: int = 22) -> Server:
    return Server.objects.create(team=team, name=name, host="127.0.0.1", port=port, username="x")


ANY_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKo2Ovs1Tc2Jh9bNqXuO2rqXgA2ReFdWR2mH0TJ2bqPM"


def pinned_server(team: Team, name: str, port: int) -> Server:
    """A pinned server (with any key) at a port of the caller's choosing: for failure paths."""
    team_ssh_key_ensure(team=team)
    server = Server.objects.create(
        team=team,
        name=name,
        host="127.0.0.1",
        port=port,
        username="pipetower-test",
        host_keys=ANY_HOST_KEY,
    )
    return server


def running_run(team: Team, user: Any, *, script: str = "true") -> tuple[Run, RunTarget]:
    """A run that is running on one target ("web-1"), written directly: for tests of
    what viewers see while output arrives, without an engine."""
    run = Run.objects.create(
        team=team,
        action_name="busy",
        script=script,
        timeout_seconds=60,
        concurrency=1,
        status="running",
        started_by=user,
    )
    target = RunTarget.objects.create(run=run, server_name="web-1", status="running")
    return run, target


def execute(run: Run) -> Run:
    """Run every shard of the run here and now, as a worker would."""
    shards: dict[int, list[int]] = {}
    for target_id, shard in run.targets.order_by("id").values_list("id", "shard"):
        shards.setdefault(shard, []).append(target_id)
    for target_ids in shards.values():
        engine.shard_execute(run_id=run.pk, target_ids=target_ids, worker="test-worker")
    run.refresh_from_db()
    return run


def output_of(target: RunTarget, stream: str | None = None) -> str:
    chunks = target.chunks.order_by("seq")
    if stream:
        chunks = chunks.filter(stream=stream)
    return "".join(chunks.values_list("data", flat=True))


@pytest.fixture
def fast_engine(settings: Any) -> Any:
    settings.ACTIONS_CANCEL_GRACE_SECONDS = 1.0
    settings.ACTIONS_CONNECT_TIMEOUT = 5.0
    return settings


@pytest.fixture
def tasks_queued() -> Any:
    """Tasks go to the (embedded, filesystem) broker instead of running inline, so
    the test can play the worker itself, e.g. in a thread while it cancels the run."""
    from pipetower.config.celery import app

    app.conf.task_always_eager = False
    yield app
    app.conf.task_always_eager = True


@pytest.fixture
def ssh_server(team: Team, user: Any, sshd: SshdServer) -> Server:
    return add_server(team, user, sshd, name="web-1", tags=["web"])


@pytest.fixture
def make_action(team: Team, user: Any) -> Callable[..., Action]:
    counter = {"n": 0}

    def make(script: str = "echo hello", **fields: Any) -> Action:
        counter["n"] += 1
        fields.setdefault("name", f"action-{counter['n']}")
        return services.action_create(team=team, actor=user, script=script, **fields)

    return make


@pytest.fixture
def operator(make_member: Callable[..., Any]) -> Any:
    return make_member(Role.OPERATOR)


@pytest.fixture
def viewer(make_member: Callable[..., Any]) -> Any:
    return make_member(Role.VIEWER)


@pytest.fixture
def admin(make_member: Callable[..., Any]) -> Any:
    """A second admin beside the owner (`user`): approvals need two people."""
    return make_member(Role.ADMIN, email="bea@example.com", name="Bea Admin")


@pytest.fixture
def web1(team: Team) -> Server:
    """A pinned server that is never reached (port 9): for runs that wait or are refused."""
    return pinned_server(team, "web-1", port=9)
