"""Lists and runs answer with an ETag; an unchanged one is a 304, a changed one never is."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from pipetower.actions import services
from pipetower.actions.models import Run, RunStatus
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.teams.models import Team
from tests.actions.conftest import pinned_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(user: Any) -> dict[str, str]:
    raw = api_token_create(user=user, name="etag", scope=ApiToken.Scope.READ)[1]
    return {"Authorization": f"Bearer {raw}"}


def test_an_unchanged_run_list_is_a_304_and_a_new_run_shows_at_once(
    client: Client, team: Team, user: Any, make_action: Any, auth: dict[str, str]
) -> None:
    server = pinned_server(team, "web-1", port=9)
    action = make_action()
    services.run_start(action=action, actor=user, server_ids=[server.pk])
    url = f"/api/v1/teams/{team.slug}/runs"
    first = client.get(url, headers=auth)
    etag = first["ETag"]

    again = client.get(url, headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""

    new_run = services.run_start(action=action, actor=user, server_ids=[server.pk])
    changed = client.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["items"][0]["id"] == new_run.pk


def test_a_run_whose_status_changed_is_never_a_304(
    client: Client, team: Team, user: Any, make_action: Any, auth: dict[str, str]
) -> None:
    server = pinned_server(team, "web-1", port=9)
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    url = f"/api/v1/teams/{team.slug}/runs/{run.pk}"
    etag = client.get(url, headers=auth)["ETag"]
    assert client.get(url, headers={**auth, "If-None-Match": etag}).status_code == 304

    # The smallest change a reader could miss: one field of the run, nothing else.
    new_status = RunStatus.FAILED if run.status != RunStatus.FAILED else RunStatus.SUCCEEDED
    Run.objects.filter(pk=run.pk).update(status=new_status)
    answer = client.get(url, headers={**auth, "If-None-Match": etag})

    assert answer.status_code == 200
    assert answer.json()["status"] == new_status


def test_the_run_page_and_history_carry_an_etag_and_show_changes(
    owner_client: Client, team: Team, user: Any, make_action: Any
) -> None:
    server = pinned_server(team, "web-1", port=9)
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    for url in (f"/teams/{team.slug}/runs/", f"/teams/{team.slug}/runs/{run.pk}/"):
        first = owner_client.get(url)
        assert first.status_code == 200
        Run.objects.filter(pk=run.pk).update(action_name="renamed-in-place")
        changed = owner_client.get(url, headers={"If-None-Match": first["ETag"]})
        assert changed.status_code == 200
        assert b"renamed-in-place" in changed.content
        Run.objects.filter(pk=run.pk).update(action_name=run.action_name)
