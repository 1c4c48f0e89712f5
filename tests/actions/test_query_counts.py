"""List and run pages cost the same number of queries however many rows they show."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pipetower.actions import schedules, services, webhooks
from pipetower.teams.models import Team
from tests.actions.conftest import pinned_server

pytestmark = pytest.mark.django_db


def queries_for(client: Client, url: str) -> int:
    client.get(url)  # once first: the session's own bookkeeping is not the page's cost
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_the_action_list_costs_the_same_for_3_or_20_actions(
    owner_client: Client, team: Team, make_action: Any
) -> None:
    url = reverse("actions:list", args=[team.slug])
    for _ in range(3):
        make_action()
    few = queries_for(owner_client, url)
    for _ in range(17):
        make_action()

    assert queries_for(owner_client, url) == few


def test_the_run_history_costs_the_same_for_3_or_20_runs(
    owner_client: Client, team: Team, user: Any, make_action: Any
) -> None:
    # Nothing listens on port 9: each run ends at once as unreachable.
    server = pinned_server(team, "web-1", port=9)
    action = make_action()
    url = reverse("runs:list", args=[team.slug])
    for _ in range(3):
        services.run_start(action=action, actor=user, server_ids=[server.pk])
    few = queries_for(owner_client, url)
    for _ in range(17):
        services.run_start(action=action, actor=user, server_ids=[server.pk])

    assert queries_for(owner_client, url) == few


def test_a_run_page_costs_the_same_for_2_or_8_servers(
    owner_client: Client, team: Team, user: Any, make_action: Any
) -> None:
    action = make_action()
    small = [pinned_server(team, f"a-{n}", port=9).pk for n in range(2)]
    large = [pinned_server(team, f"b-{n}", port=9).pk for n in range(8)]
    run_small = services.run_start(action=action, actor=user, server_ids=small)
    run_large = services.run_start(action=action, actor=user, server_ids=large)

    few = queries_for(owner_client, reverse("runs:detail", args=[team.slug, run_small.pk]))
    many = queries_for(owner_client, reverse("runs:detail", args=[team.slug, run_large.pk]))

    assert many == few


# --- the API lists -----------------------------------------------------------------


def api_queries_for(client: Client, token: str, path: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    client.get(f"/api/v1{path}", headers=headers)  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/api/v1{path}", headers=headers)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


@pytest.fixture
def read_token(user: Any) -> str:
    from pipetower.api.models import ApiToken
    from pipetower.api.services import api_token_create

    return api_token_create(user=user, name="counts", scope=ApiToken.Scope.READ)[1]


def test_the_api_run_list_costs_the_same_for_3_or_20_runs(
    client: Client, team: Team, user: Any, make_action: Any, read_token: str
) -> None:
    servers = [pinned_server(team, f"web-{n}", port=9).pk for n in range(2)]
    action = make_action()
    path = f"/teams/{team.slug}/runs"
    for _ in range(3):
        services.run_start(action=action, actor=user, server_ids=servers)
    few, _ = api_queries_for(client, read_token, path)
    for _ in range(17):
        services.run_start(action=action, actor=user, server_ids=servers)
    many, body = api_queries_for(client, read_token, path)

    assert many == few
    # The counts still come per run, from the one query for the page.
    assert len(body["items"]) == 20
    assert all(sum(item["target_counts"].values()) == 2 for item in body["items"])


def test_the_api_action_list_costs_the_same_for_3_or_20_actions(
    client: Client, team: Team, make_action: Any, read_token: str
) -> None:
    server = pinned_server(team, "web-1", port=9)
    path = f"/teams/{team.slug}/actions"
    for _ in range(3):
        make_action(default_server_ids=[server.pk])
    few, _ = api_queries_for(client, read_token, path)
    for _ in range(17):
        make_action(default_server_ids=[server.pk])
    many, body = api_queries_for(client, read_token, path)

    assert many == few
    assert all(item["default_server_ids"] == [server.pk] for item in body["items"])


def test_the_api_server_list_costs_the_same_for_3_or_20_servers(
    client: Client, team: Team, read_token: str
) -> None:
    path = f"/teams/{team.slug}/servers"
    for n in range(3):
        pinned_server(team, f"web-{n}", port=9).tags.create(team=team, name=f"t{n}")
    few, _ = api_queries_for(client, read_token, path)
    for n in range(3, 20):
        pinned_server(team, f"web-{n}", port=9).tags.create(team=team, name=f"t{n}")
    many, body = api_queries_for(client, read_token, path)

    assert many == few
    assert len(body["items"]) == 20
    assert all(len(item["tags"]) == 1 for item in body["items"])


def test_the_api_schedule_and_webhook_lists_cost_the_same_for_3_or_20(
    client: Client, team: Team, user: Any, make_action: Any, read_token: str
) -> None:
    server = pinned_server(team, "web-1", port=9)
    action = make_action()

    def grow(start: int, stop: int) -> None:
        for n in range(start, stop):
            schedules.schedule_create(
                action=action,
                actor=user,
                name=f"nightly {n}",
                cron_expression="30 2 * * *",
                timezone_name="Europe/Berlin",
                server_ids=[server.pk],
            )
            webhooks.webhook_create(
                action=action, actor=user, name=f"hook {n}", server_ids=[server.pk]
            )

    grow(0, 3)
    few = [
        api_queries_for(client, read_token, f"/teams/{team.slug}/{kind}")[0]
        for kind in ("schedules", "webhooks")
    ]
    grow(3, 20)
    many = [
        api_queries_for(client, read_token, f"/teams/{team.slug}/{kind}")
        for kind in ("schedules", "webhooks")
    ]

    assert [count for count, _ in many] == few
    assert all(len(body["items"]) == 20 for _, body in many)
    assert all(item["server_ids"] == [server.pk] for _, body in many for item in body["items"])
