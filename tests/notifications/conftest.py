"""A real HTTP receiver on 127.0.0.1, and runs that end through the real recount."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipetower.actions import services as action_services
from pipetower.actions.models import Action, Run, RunTarget
from pipetower.teams.models import Team

HANG = "hang"
DRIP = "drip"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers POSTs with the next of `answers` (a status, HANG: never answer, or
    DRIP: a byte at a time, never done in time),
    then 200 once they are used up; keeps every request it received."""

    answers: list[Any]
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/pipetower?team=engines"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.received.append(Received(self.path, dict(self.headers.items()), body))
            answer = receiver.answers.pop(0) if receiver.answers else 200
            if answer == HANG:
                receiver.release.wait(10)  # longer than any timeout under test
                return
            if answer == DRIP:  # one byte of an answer every 0.1 s, for up to 10 s
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100:
                    if receiver.release.wait(0.1):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                return
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Any]:
    """`receiver(answers)`: a started receiver; all are stopped after the test."""
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(answers: list[Any] | None = None) -> Receiver:
        state = Receiver(answers=list(answers or []))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        server.daemon_threads = True
        state.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, state))
        return state

    yield start
    for server, state in servers:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def notify_settings(settings: Any) -> Any:
    """Loopback allowed (the receiver is on 127.0.0.1), short timeout, no waiting."""
    settings.NOTIFY_ALLOW_PRIVATE = True
    settings.NOTIFY_TIMEOUT = 0.5
    settings.NOTIFY_RETRIES = 2
    settings.NOTIFY_BACKOFF_SECONDS = 0
    return settings


@pytest.fixture
def action(team: Team, user: Any) -> Action:
    return action_services.action_create(team=team, actor=user, name="deploy", script="true")


def end_run(action: Action, *statuses: str) -> Run:
    """A run of `action` whose targets end with `statuses`, ended through the engine's
    own recount (which is where notifications are triggered)."""
    run = Run.objects.create(
        team=action.team,
        action=action,
        action_name=action.name,
        script=action.script,
        timeout_seconds=60,
        concurrency=10,
        status="running",
    )
    for n, status in enumerate(statuses or ("succeeded",)):
        RunTarget.objects.create(run=run, server_name=f"web-{n}", status="running")
    for target, status in zip(run.targets.order_by("id"), statuses or ("succeeded",), strict=True):
        RunTarget.objects.filter(pk=target.pk).update(status=status)
    action_services.run_status_refresh(run_id=run.pk)
    run.refresh_from_db()
    return run


@pytest.fixture
def api(client: Any, team: Team, user: Any) -> Any:
    """`user` (the owner of `team`) calling the API with a read-write token."""
    return api_for(client, user)


@pytest.fixture
def api_as(db: None) -> Any:
    """`api_as(someone)`: the API as that person, with their own client and token."""
    from django.test import Client

    return lambda person: api_for(Client(), person)


def api_for(client: Any, person: Any) -> Any:
    from pipetower.api.models import ApiToken
    from pipetower.api.services import api_token_create
    from tests.api.helpers import Api

    return Api(client, api_token_create(user=person, name="t", scope=ApiToken.Scope.WRITE)[1])
