"""After a full scenario, no plaintext secret is anywhere it could leak from.

The scenario stores every kind of secret Pipetower keeps: a generated team SSH
key, an uploaded key and its passphrase, a server password, a secret action
parameter (default and run value), a TOTP secret activated through the real
pages, an API token, a webhook's secret (used by one accepted and one
refused delivery) and a notification rule's signing secret. Then the
committed database (the SQLite file with its WAL, or `pg_dump` on PostgreSQL),
everything logged meanwhile and the broker's messages are searched for each
planted secret.

Each place also gets a canary, a marker stored in the clear on purpose (a
server's name, a log line, a task argument): the scan must find it, so a scan
that cannot see the data would fail instead of passing.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from pipetower.actions import services as action_services
from pipetower.actions import webhooks
from pipetower.actions.models import ParamKind
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.config.celery import app
from pipetower.notifications.services import notification_rule_create
from pipetower.privacy.residue import read_bytes
from pipetower.servers.models import Server
from pipetower.servers.services import Credentials, server_create, team_ssh_key_ensure
from pipetower.teams.models import Role
from tests.accounts.mfa.helpers import activate_totp, sign_in_with_password
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "Scan-passphrase-4f0c2a9e"
SERVER_PASSWORD = "Scan-server-password-91be7d"
SECRET_DEFAULT = "Scan-secret-default-3a7c55"
SECRET_RUN_VALUE = "Scan-secret-run-value-c09d1e"
DB_CANARY = "scan-canary-in-the-clear-db-77e1"
LOG_CANARY = "scan-canary-in-the-clear-log-5d2f"
BROKER_CANARY = "scan-canary-in-the-clear-broker-a3b9"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKo2Ovs1Tc2Jh9bNqXuO2rqXgA2ReFdWR2mH0TJ2bqPM"


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def all_logs() -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


def _key_body_line(pem: str) -> str:
    """A line from the middle of a PEM key: unique to this key, and secret."""
    lines = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return lines[len(lines) // 2]


def _database_bytes() -> bytes:
    if connection.vendor == "sqlite":
        name = Path(connection.settings_dict["NAME"])
        parts = [name, Path(f"{name}-wal"), Path(f"{name}-journal")]
        return b"".join(read_bytes(p) for p in parts if p.exists())
    settings_dict = connection.settings_dict
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            settings_dict["HOST"] or "127.0.0.1",
            "-p",
            str(settings_dict["PORT"] or 5432),
            "-U",
            settings_dict["USER"],
            settings_dict["NAME"],
        ],
        capture_output=True,
        check=True,
        timeout=120,
        env={"PGPASSWORD": settings_dict.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"},
    )
    return dump.stdout


def _broker_bytes() -> bytes:
    if not settings.BROKER_URL:
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())
    import redis

    client = redis.Redis.from_url(settings.BROKER_URL)
    chunks = []
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"list":
            chunks += client.lrange(key, 0, -1)
        elif kind == b"string":
            chunks.append(client.get(key) or b"")
        elif kind == b"hash":
            chunks += list(client.hgetall(key).values())
    return b"".join(chunks)


def _scenario(client: Client) -> dict[str, str]:
    """Store one of each kind of secret; returns them by name."""
    owner = UserFactory()
    sign_in_with_password(client, owner.email)
    secrets = {"totp secret": activate_totp(client)}

    team = TeamFactory()
    team.memberships.create(user=owner, role=Role.OWNER)
    team_key = team_ssh_key_ensure(team=team, actor=owner)
    secrets["generated team key"] = _key_body_line(team_key.private_key)

    uploaded = asyncssh.generate_private_key("ssh-ed25519")
    uploaded_pem = uploaded.export_private_key("openssh", PASSPHRASE).decode()
    secrets["uploaded key"] = _key_body_line(uploaded_pem)
    secrets["passphrase"] = PASSPHRASE
    server_create(
        team=team,
        actor=owner,
        name="uploaded-key-host",
        host="127.0.0.1",
        port=1,
        username="deploy",
        credentials=Credentials(
            auth_method=Server.AuthMethod.PRIVATE_KEY,
            private_key=uploaded_pem,
            passphrase=PASSPHRASE,
        ),
    )
    password_server = server_create(
        team=team,
        actor=owner,
        name=DB_CANARY,
        host="127.0.0.1",
        port=1,
        username="deploy",
        credentials=Credentials(auth_method=Server.AuthMethod.PASSWORD, password=SERVER_PASSWORD),
    )
    secrets["server password"] = SERVER_PASSWORD
    Server.objects.filter(pk=password_server.pk).update(host_keys=HOST_KEY)

    action = action_services.action_create(
        team=team,
        actor=owner,
        name="deploy",
        script="echo deploying",
        parameters=[{"name": "TOKEN", "kind": ParamKind.SECRET, "default": SECRET_DEFAULT}],
    )
    secrets["secret parameter default"] = SECRET_DEFAULT
    action_services.run_start(
        action=action,
        actor=owner,
        server_ids=[password_server.pk],
        values={"TOKEN": SECRET_RUN_VALUE},
    )
    secrets["secret parameter value"] = SECRET_RUN_VALUE

    hook, hook_secret = webhooks.webhook_create(
        action=action,
        actor=owner,
        name="on push",
        server_ids=[password_server.pk],
        values={"TOKEN": SECRET_RUN_VALUE},
    )
    secrets["webhook secret"] = hook_secret
    body = b'{"ref": "main"}'
    for delivery, key in (("scan-1", hook_secret), ("scan-2", "a-wrong-secret")):
        answer = Client().post(
            f"/hooks/{hook.token}/",
            data=body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=webhooks.signature_for(key, body),
            HTTP_X_GITHUB_DELIVERY=delivery,
        )
        assert answer.status_code == (202 if key == hook_secret else 401)

    _, notification_secret = notification_rule_create(
        team=team,
        actor=owner,
        name="ops",
        channel="webhook",
        url="https://hooks.example.com/scan",
        action=action,
    )
    secrets["notification webhook secret"] = notification_secret

    _, raw_token = api_token_create(user=owner, name="ci", scope=ApiToken.Scope.WRITE)
    secrets["api token"] = raw_token
    # Use the token once, so its use is logged and recorded too.
    response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    assert response.status_code == 200
    return secrets


@pytest.fixture
def queued_tasks() -> Iterator[None]:
    """Tasks go to the real broker instead of running inline, so its messages can be read."""
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def test_no_plaintext_secret_in_database_logs_or_broker(
    client: Client, all_logs: _Everything, queued_tasks: None
) -> None:
    secrets = _scenario(client)
    logging.getLogger("pipetower").warning("canary: %s", LOG_CANARY)
    app.send_task("pipetower.scan.canary", args=[BROKER_CANARY], queue="scan-canary")

    places = {
        "database": _database_bytes(),
        "logs": "\n".join(all_logs.lines).encode(),
        "broker": _broker_bytes(),
    }
    # Prove each search can fail: the canaries stored in the clear are found.
    assert DB_CANARY.encode() in places["database"]
    assert LOG_CANARY.encode() in places["logs"]
    assert BROKER_CANARY.encode() in places["broker"]

    leaks = [
        f"{what} found in the {place}"
        for place, data in places.items()
        for what, secret in secrets.items()
        if secret.encode() in data
    ]
    assert not leaks, leaks
    assert len(secrets) == 10
