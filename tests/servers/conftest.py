from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipetower.accounts.models import User
from pipetower.servers import services
from pipetower.servers.models import Server, TeamSshKey
from pipetower.teams.models import Role, Team
from tests.sshd import SshdServer


@pytest.fixture
def admin(make_member: Callable[..., User]) -> User:
    return make_member(Role.ADMIN)


@pytest.fixture
def operator(make_member: Callable[..., User]) -> User:
    return make_member(Role.OPERATOR)


@pytest.fixture
def viewer(make_member: Callable[..., User]) -> User:
    return make_member(Role.VIEWER)


@pytest.fixture
def team_key(team: Team, user: User) -> TeamSshKey:
    return services.team_ssh_key_ensure(team=team, actor=user)


@pytest.fixture
def make_server(team: Team, user: User) -> Callable[..., Server]:
    """A server added by the team's owner through the service (defaults: team key)."""

    def make(**fields: Any) -> Server:
        values: dict[str, Any] = {
            "name": "web-1",
            "host": "web-1.example.com",
            "port": 22,
            "username": "deploy",
            "tags": (),
        }
        values.update(fields)
        return services.server_create(team=team, actor=user, **values)

    return make


@pytest.fixture
def pinned_server(
    sshd: SshdServer, team_key: TeamSshKey, make_server: Callable[..., Server], user: User
) -> Server:
    """A server on the real sshd, logging in with the team key, its host key pinned."""
    sshd.authorize(team_key.public_key)
    server = make_server(name="live", host=sshd.host, port=sshd.port, username=sshd.user)
    return services.server_host_key_paste(server=server, actor=user, text=sshd.host_key_line)


@pytest.fixture
def keyfiles(tmp_path: Path) -> Callable[..., str]:
    """Private key files made by the real ssh-keygen: keyfiles("ed25519", passphrase="x")."""

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed.")

    def make(kind: str = "ed25519", *, passphrase: str = "", pem: bool = False) -> str:
        path = tmp_path / f"key-{kind}-{len(list(tmp_path.iterdir()))}"
        command = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path)]
        if kind == "rsa":
            command += ["-b", "2048"]
        if pem:
            command += ["-m", "PEM"]
        subprocess.run(command, check=True, capture_output=True)
        return path.read_text()

    return make


@pytest.fixture
def checked(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Any]], Any]:
    """Makes a "Test connection" request and runs the task it queues (eagerly, as the
    test settings run tasks) once the request's transaction commits."""

    def make(request: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return request()

    return make
