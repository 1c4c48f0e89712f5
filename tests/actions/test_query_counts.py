"""List and run pages cost the same number of queries however many rows they show."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pipetower.actions import services
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
