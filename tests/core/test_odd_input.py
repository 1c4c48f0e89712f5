"""Odd input answers a clear 4xx, never 500 (issue 9, finding 9).

Time-zone offsets PostgreSQL cannot store, dates at the end of the calendar,
Unicode digits where a number is expected and NUL characters, in query strings,
path parts and JSON bodies, on pages and in the API. Run on both databases:
PostgreSQL refuses NUL in text, SQLite does not.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from pipetower.actions.models import Action, OutputChunk, Run, RunTarget
from pipetower.core import query
from pipetower.servers.models import Server
from pipetower.teams.models import Team


@pytest.fixture
def run(team: Team) -> Run:
    server = Server.objects.create(team=team, name="web-1", host="127.0.0.1", username="deploy")
    action = Action.objects.create(team=team, name="Deploy", script="echo hi")
    run = Run.objects.create(
        team=team,
        action=action,
        action_name="Deploy",
        script="echo hi",
        timeout_seconds=60,
        concurrency=1,
        status="succeeded",
    )
    target = RunTarget.objects.create(run=run, server=server, server_name="web-1")
    OutputChunk.objects.create(run_target=target, seq=1, stream="stdout", data="hello\n")
    return run


def _get(client: Client, url: str) -> Any:
    return client.get(url)


PAGE_CASES = [
    ("/teams/engines/activity/?until=9999-12-31", "until"),
    ("/teams/engines/activity/?since=9999-12-31", "since"),
    ("/teams/engines/runs/?until=9999-12-31", "until"),
    ("/teams/engines/runs/{run}/live?rev=%C2%B2", "rev"),
    ("/teams/engines/runs/{run}/live?after={target}:%C2%B2", "after"),
    ("/teams/engines/runs/{run}/live?after=%C2%B2:1", "after"),
    ("/teams/engines/runs/{run}/live?rev=%C2%B2&stream=1", "rev"),
    ("/teams/engines/runs/{run}/targets/{target}/chunks?before=%C2%B2", "before"),
    ("/teams/engines/runs/?action=%00", "NUL"),
    ("/teams/engines/activity/?verb=a%00b", "NUL"),
    ("/teams/engines/runs/?page=1%00", "NUL"),
]

API_CASES = [
    ("/api/v1/teams/engines/audit-events?until=2026-01-01T00:00:00%2B20:00", 422, "until"),
    ("/api/v1/teams/engines/audit-events?until=2026-01-01T00:00:00-16:00", 422, "until"),
    ("/api/v1/teams/engines/audit-events?until=9999-12-31", 422, "until"),
    ("/api/v1/teams/engines/audit-events?until=9999-12-31T23:00:00-05:00", 422, "until"),
    ("/api/v1/teams/engines/audit-events?since=9999-12-31T23:59:59%2B01:00", 422, "since"),
    ("/api/v1/teams/engines/runs?until=9999-12-31", 422, "until"),
    ("/api/v1/teams/engines/runs?since=9999-12-31", 422, "since"),
    ("/api/v1/teams/engines/runs/{run}/changes?rev=%C2%B2", 422, "rev"),
    ("/api/v1/teams/engines/runs/{run}/changes?after={target}:%C2%B2", 400, "after"),
    ("/api/v1/teams/engines/runs/{run}/targets/{target}/output?after=%C2%B2", 422, "after"),
    ("/api/v1/teams/engines/audit-events?verb=a%00b", 400, "NUL"),
    ("/api/v1/teams/a%00b", 400, "NUL"),
    ("/api/v1/teams/engines/servers/1%00", 400, "NUL"),
]


def _fill(url: str, run: Run) -> str:
    target = run.targets.get()
    return url.format(run=run.pk, target=target.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "named"), PAGE_CASES)
def test_odd_query_values_on_pages_answer_400_saying_what_is_wrong(
    owner_client: Client, run: Run, url: str, named: str
) -> None:
    response = owner_client.get(_fill(url, run))

    assert response.status_code == 400
    text = response.content.decode()
    assert named in text or (named == "NUL" and "NUL" in text)


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "status", "named"), API_CASES)
def test_odd_query_values_in_the_api_answer_4xx_naming_the_field(
    owner_client: Client, run: Run, url: str, status: int, named: str
) -> None:
    response = owner_client.get(_fill(url, run))

    assert response.status_code == status, response.content
    error = response.json()["error"]
    if named == "NUL":
        assert error["code"] == "bad_request"
        assert "NUL" in error["message"]
    else:
        assert named in [d["field"] for d in error["details"]], error


@pytest.mark.django_db
def test_nul_in_a_json_string_field_answers_400_and_creates_nothing(
    owner_client: Client, team: Team
) -> None:
    body = {"name": "web\u00001", "host": "127.0.0.1", "username": "deploy"}
    response = owner_client.post(
        "/api/v1/teams/engines/servers", json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 400
    assert "NUL" in response.json()["error"]["message"]
    assert not Server.objects.exists()


@pytest.mark.django_db
def test_nul_in_a_posted_form_answers_400_and_changes_nothing(
    owner_client: Client, team: Team
) -> None:
    response = owner_client.post("/teams/engines/settings/", {"name": "Engines\x00"})

    assert response.status_code == 400
    team.refresh_from_db()
    assert team.name == "Analytical Engines"


@pytest.mark.django_db
def test_a_nul_in_the_path_answers_400(owner_client: Client, team: Team) -> None:
    response = owner_client.get("/teams/engines%00/")

    assert response.status_code == 400


@pytest.mark.django_db
def test_a_date_at_the_end_of_the_range_still_works(owner_client: Client, run: Run) -> None:
    """The limits refuse what cannot be computed, not ordinary dates."""
    assert owner_client.get("/teams/engines/runs/?until=9998-12-31").status_code == 200
    assert owner_client.get("/teams/engines/activity/?until=2026-12-04").status_code == 200
    ok = owner_client.get("/api/v1/teams/engines/audit-events?until=2026-01-01T00:00:00%2B14:00")
    assert ok.status_code == 200
    assert owner_client.get(f"/teams/engines/runs/{run.pk}/live?rev=3").status_code == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("17", 17), ("²", None), ("١٢", None), ("-1", None), ("1" * 30, None), ("", None)],
)
def test_whole_numbers_are_ascii_digits_within_range(text: str, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(query.BadQuery):
            query.whole_number(text, name="rev")
    else:
        assert query.whole_number(text, name="rev") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00+16:00",
        "2026-01-01T00:00:00-23:59",
        "9999-12-31",
        "9999-12-31T00:00:00Z",
        "0001-01-01",
        "2026-02-30",
        "2026-01-01T25:00:00",
        "\uff12\uff10\uff12\uff16-01-01",  # fullwidth digits
    ],
)
def test_instants_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(query.BadQuery):
        query.instant(text, name="until")
