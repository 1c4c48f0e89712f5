"""The actions list shows each action's last run, at a cost that does not grow
with the number of actions or runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from pipetower.actions.models import Action, Run, RunStatus
from pipetower.teams.models import Team

pytestmark = pytest.mark.django_db


def action_with_runs(team: Team, name: str, statuses: list[str]) -> Action:
    """An action run once per status, oldest first (the last status is the latest run)."""
    action = Action.objects.create(team=team, name=name, script="true")
    start = timezone.now() - timedelta(hours=len(statuses))
    for n, status in enumerate(statuses):
        Run.objects.create(
            team=team,
            action=action,
            action_name=name,
            script="true",
            timeout_seconds=60,
            concurrency=1,
            status=status,
            created_at=start + timedelta(hours=n),
        )
    return action


def test_each_action_shows_when_it_last_ran_and_how_it_went(
    owner_client: Client, team: Team
) -> None:
    deploy = action_with_runs(team, "Deploy", [RunStatus.SUCCEEDED, RunStatus.FAILED])
    action_with_runs(team, "Backup", [RunStatus.FAILED, RunStatus.SUCCEEDED])
    action_with_runs(team, "Never run", [])
    latest = deploy.runs.order_by("-created_at").first()
    assert latest is not None

    page = owner_client.get(reverse("actions:list", args=[team.slug])).content.decode()

    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in page.split("<tr>")[2:]}
    assert 'data-status="failed">Failed' in rows["Deploy"]
    assert f'href="{reverse("runs:detail", args=[team.slug, latest.pk])}"' in rows["Deploy"]
    assert 'data-status="succeeded">Succeeded' in rows["Backup"]
    assert "never" in rows["Never run"] and "data-status" not in rows["Never run"]


def queries_for(client: Client, url: str) -> int:
    client.get(url)  # once first: the session's own bookkeeping is not the page's cost
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_the_last_runs_cost_the_same_for_3_or_20_actions_with_many_runs(
    owner_client: Client, team: Team
) -> None:
    url = reverse("actions:list", args=[team.slug])
    for n in range(3):
        action_with_runs(team, f"a-{n}", [RunStatus.SUCCEEDED])
    few = queries_for(owner_client, url)
    for n in range(3, 20):
        action_with_runs(team, f"a-{n}", [RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.FAILED])

    assert queries_for(owner_client, url) == few
