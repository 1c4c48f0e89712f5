"""The run history sorts on the server side: newest first unless asked otherwise."""

from __future__ import annotations

import re

from pipetower.actions import services
from tests.actions.conftest import pinned_server


def run_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td><a href="/teams/[^/]+/runs/(\d+)/">', page)]


def test_the_run_list_sorts_newest_or_oldest_first_or_by_action(
    owner_client, team, user, make_action
):
    server = pinned_server(team, "web-1", port=9)
    zebra, alpha = make_action(name="zebra"), make_action(name="alpha")
    first, second, third = (
        services.run_start(action=action, actor=user, server_ids=[server.pk])
        for action in (alpha, zebra, alpha)
    )
    url = f"/teams/{team.slug}/runs/"

    newest = owner_client.get(url).content.decode()
    oldest = owner_client.get(f"{url}?sort=oldest").content.decode()
    by_action = owner_client.get(f"{url}?sort=action").content.decode()

    assert run_ids(newest) == [third.pk, second.pk, first.pk]
    assert run_ids(oldest) == [first.pk, second.pk, third.pk]
    assert run_ids(by_action) == [third.pk, first.pk, second.pk]
    assert '<option value="oldest" selected>Oldest first</option>' in oldest
    assert owner_client.get(f"{url}?sort=sideways").status_code == 400
