"""A token limited to one team reaches only that team; other teams answer 404,
exactly like a team the caller cannot see."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.teams.models import Role
from tests.api.helpers import Api
from tests.factories import TeamFactory


@pytest.fixture
def other_team(user):
    other = TeamFactory(name="Difference Engines", slug="difference")
    other.memberships.create(user=user, role=Role.OWNER)
    return other


def token_for(user, team=None, scope=ApiToken.Scope.WRITE) -> Api:
    return Api(Client(), api_token_create(user=user, name="one team", scope=scope, team=team)[1])


def test_a_team_token_works_in_its_team(user, team, other_team):
    api = token_for(user, team)

    assert api.get("/teams/engines").status_code == 200
    assert api.get("/teams/engines/servers").status_code == 200
    assert api.patch("/teams/engines", {"name": "Renamed"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/teams/difference"),
        ("get", "/teams/difference/servers"),
        ("get", "/teams/difference/runs"),
        ("get", "/teams/difference/audit-events"),
        ("post", "/teams/difference/ssh-key"),
    ],
)
def test_a_team_token_is_refused_on_another_team_as_if_it_did_not_exist(
    user, team, other_team, method, path
):
    limited = token_for(user, team)
    unknown = getattr(limited, method)(path.replace("difference", "no-such-team"))

    refused = getattr(limited, method)(path)

    assert refused.status_code == 404
    assert refused.json() == unknown.json()
    assert token_for(user).get(path.split("/ssh-key")[0]).status_code == 200  # the person can


def test_a_team_token_lists_only_its_team_and_cannot_create_teams(user, team, other_team):
    limited = token_for(user, team)

    assert [t["slug"] for t in limited.get("/teams").json()["items"]] == ["engines"]
    assert {t["slug"] for t in token_for(user).get("/teams").json()["items"]} == {
        "difference",
        "engines",
    }
    refused = limited.post("/teams", {"name": "Another"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "token_team_scope"


def test_tokens_are_created_for_one_team_through_the_api(user, team, other_team):
    api = token_for(user)

    created = api.post("/tokens", {"name": "ci", "scope": "read", "team": "engines"})

    assert created.status_code == 201
    assert created.json()["team"] == "engines"
    assert ApiToken.objects.get(pk=created.json()["id"]).team == team
    event = AuditEvent.objects.get(verb="api_token.created", target_id=str(created.json()["id"]))
    assert event.data["team"] == "engines"
    new = Api(Client(), created.json()["token"])
    assert new.get("/teams/difference").status_code == 404
    listed = {t["name"]: t["team"] for t in api.get("/tokens").json()["items"]}
    assert listed == {"ci": "engines", "one team": None}


def test_a_team_that_is_not_yours_is_a_clear_field_error(user, team):
    TeamFactory(slug="strangers")

    refused = token_for(user).post("/tokens", {"name": "ci", "team": "strangers"})

    assert refused.status_code == 400
    assert refused.json()["error"]["details"][0]["field"] == "team"
    assert not ApiToken.objects.filter(name="ci").exists()


def test_a_team_token_only_makes_tokens_for_its_team(user, team, other_team):
    limited = token_for(user, team)

    inherited = limited.post("/tokens", {"name": "child"})
    escape = limited.post("/tokens", {"name": "escape", "team": "difference"})

    assert inherited.status_code == 201
    assert inherited.json()["team"] == "engines"
    assert escape.status_code == 403
    assert escape.json()["error"]["code"] == "token_team_scope"


def test_the_token_page_creates_a_token_for_one_team(client, user, team, other_team):
    client.force_login(user)
    page = client.get(reverse("tokens:list")).content.decode()
    assert "All my teams" in page
    assert '<option value="difference">Difference Engines</option>' in page

    response = client.post(
        reverse("tokens:create"), {"name": "deploy", "scope": "write", "team": "engines"}
    )

    assert response.status_code == 302
    token = ApiToken.objects.get(name="deploy")
    assert token.team == team
    listing = client.get(reverse("tokens:list")).content.decode()
    assert "Analytical Engines" in listing


def test_the_token_page_refuses_a_team_that_is_not_yours(client, user, team):
    TeamFactory(slug="strangers")
    client.force_login(user)

    response = client.post(reverse("tokens:create"), {"name": "deploy", "team": "strangers"})

    assert response.status_code == 200
    assert "Choose one of your teams, or all of them." in response.content.decode()
    assert 'value="deploy"' in response.content.decode()  # nothing typed is lost
    assert not ApiToken.objects.filter(name="deploy").exists()
