""" "Test connection" runs as a task, never inside the web request.

The page follows the result (htmx polling), the API answers 202 and tells the
result on GET; one test per server at a time and a per-person limit.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from pipetower.api.services import api_token_create
from pipetower.servers import services
from pipetower.servers.models import Server
from pipetower.teams.models import Role
from tests import webproc
from tests.core._ops import get_json

BASE = "/teams/engines/servers/"
API = "/api/v1/teams/engines/servers"
web = webproc.web  # a real `pipetower web` process (fixture)


def _hanging_servers(team: Any, user: Any, port: int, count: int) -> list[Server]:
    services.team_server_settings_update(team=team, actor=user, trust_on_first_use=True)
    return [
        services.server_create(
            team=team, actor=user, name=f"silent-{n}", host="127.0.0.1", port=port, username="u"
        )
        for n in range(count)
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_tests_of_a_silent_host_do_not_hold_the_web_process(
    web, team, user, make_member, silent_listener
):
    """Five "Test connection" calls to a host that accepts TCP and never answers, more
    than the web process has threads: each answers 202 before any test has run (it was
    queued, not run in the request), and /healthz answers meanwhile."""
    servers = _hanging_servers(team, user, silent_listener, 5)
    other = make_member(Role.OPERATOR)  # three pending tests per person: two people ask
    tokens = [api_token_create(user=user, name="a", scope="write")[1]] * 3
    tokens += [api_token_create(user=other, name="b", scope="write")[1]] * 2
    answers: list[tuple[int, dict[str, Any]]] = []

    def ask(server: Server, token: str) -> None:
        request = urllib.request.Request(
            f"{web}{API}/{server.pk}/check",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            answers.append((answer.status, json.loads(answer.read())))

    threads = [
        threading.Thread(target=ask, args=(s, t), daemon=True)
        for s, t in zip(servers, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    health = get_json(f"{web}/healthz", timeout=15)
    for thread in threads:
        thread.join(timeout=60)
    assert health is not None and health["database"]["status"] == "ok"
    assert [status for status, _ in answers] == [202] * 5
    assert {body["status"] for _, body in answers} == {"pending"}
    for server in servers:
        server.refresh_from_db()
        assert server.check_requested_at is not None
        assert server.last_check_at is None, "the test ran inside the request"


@pytest.mark.django_db(transaction=True)
def test_the_api_limits_pending_tests_per_person_and_one_per_server(
    web, team, user, silent_listener
):
    servers = _hanging_servers(team, user, silent_listener, 4)
    token = api_token_create(user=user, name="a", scope="write")[1]

    def post(server: Server) -> tuple[int, Any, dict[str, Any]]:
        request = urllib.request.Request(
            f"{web}{API}/{server.pk}/check",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, refused.headers, json.loads(refused.read())

    first = [post(s) for s in servers[:3]]
    assert [status for status, _, _ in first] == [202, 202, 202]
    requested = Server.objects.get(pk=servers[0].pk).check_requested_at
    again = post(servers[0])
    assert again[0] == 202 and again[2]["status"] == "pending"
    assert Server.objects.get(pk=servers[0].pk).check_requested_at == requested, (
        "asking again while a test is pending queues nothing new"
    )
    status, headers, body = post(servers[3])
    assert status == 429 and headers["Retry-After"] == "10"
    assert "already have 3 connection tests running" in body["error"]["message"]


def test_the_page_follows_a_pending_test_until_its_result_is_in(
    owner_client, team, user, silent_listener
):
    [server] = _hanging_servers(team, user, silent_listener, 1)
    asked = owner_client.post(f"{BASE}{server.pk}/check/", follow=True)
    page = asked.content.decode()
    assert "Testing the connection" in page and 'hx-trigger="every 1s"' in page
    assert owner_client.get(f"{BASE}{server.pk}/check/").status_code == 204

    services.server_check(server=server, actor=user, connect_timeout=0.5)  # what the task does

    done = owner_client.get(f"{BASE}{server.pk}/check/")
    assert done.status_code == 200 and done["HX-Refresh"] == "true"
    page = owner_client.get(f"{BASE}{server.pk}/").content.decode()
    assert "Testing the connection" not in page and "Timed out" in page


def test_the_task_records_the_result_as_the_person_who_asked(
    team, user, silent_listener, django_capture_on_commit_callbacks
):
    [server] = _hanging_servers(team, user, silent_listener, 1)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        services.server_check_request(server=server, actor=user)
    assert len(queued) == 1, "one task queued on commit"
    services.server_check_run(server_id=server.pk, actor_id=user.pk, connect_timeout=0.5)
    server.refresh_from_db()
    assert server.last_check_at is not None and server.last_check_error == "timeout"
    assert not server.check_pending
