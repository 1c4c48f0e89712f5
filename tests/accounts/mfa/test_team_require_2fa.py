"""A team can require two-factor authentication of its members, on pages and in the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.accounts.models import User
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.teams.models import Role, Team
from tests.accounts.mfa.helpers import give_totp

pytestmark = pytest.mark.django_db


def _require(team: Team) -> Team:
    team.require_2fa = True
    team.save(update_fields=["require_2fa"])
    return team


def _settings_url(team: Team) -> str:
    return reverse("teams:settings", kwargs={"team_slug": team.slug})


def _api_get(client: Client, token: str, path: str) -> tuple[int, dict[str, Any]]:
    response = client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code, json.loads(response.content)


def test_an_owner_without_two_factor_is_told_to_set_it_up_before_requiring_it(
    owner_client: Client, team: Team
) -> None:
    response = owner_client.post(_settings_url(team), {"section": "security", "require_2fa": "on"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Set up two-factor authentication for your own account first" in html
    assert 'aria-invalid="true"' in html
    team.refresh_from_db()
    assert team.require_2fa is False


def test_an_owner_with_two_factor_requires_it_and_the_change_is_audited(
    owner_client: Client, user: User, team: Team
) -> None:
    give_totp(user)

    response = owner_client.post(_settings_url(team), {"section": "security", "require_2fa": "on"})

    assert response.status_code == 302
    team.refresh_from_db()
    assert team.require_2fa is True
    assert AuditEvent.objects.filter(team=team, verb="team.2fa_required", actor=user).exists()
    page = owner_client.get(_settings_url(team)).content.decode()
    assert "Two-factor authentication is now required in this team." in page
    assert "checked" in page


def test_an_admin_sees_the_setting_but_cannot_change_it(
    client: Client, team: Team, make_member: Any
) -> None:
    admin = make_member(Role.ADMIN)
    give_totp(admin)
    client.force_login(admin)

    page = client.get(_settings_url(team)).content.decode()
    assert "Only team owners can change this." in page
    response = client.post(_settings_url(team), {"section": "security", "require_2fa": "on"})

    team.refresh_from_db()
    assert team.require_2fa is False
    assert response.status_code == 400


def test_a_member_without_two_factor_gets_a_set_up_page_instead_of_the_team(
    client: Client, team: Team, make_member: Any
) -> None:
    _require(team)
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)

    for url in (
        reverse("teams:detail", kwargs={"team_slug": team.slug}),
        reverse("teams:members", kwargs={"team_slug": team.slug}),
        reverse("audit:activity", kwargs={"team_slug": team.slug}),
    ):
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 403, url
        assert f"{team.name} requires two-factor authentication" in html
        assert reverse("mfa_activate_totp") in html
        # Nothing of the team shows, not even its menu.
        assert reverse("teams:members", kwargs={"team_slug": team.slug}) not in html


def test_a_member_with_two_factor_sees_the_team(
    client: Client, team: Team, make_member: Any
) -> None:
    _require(team)
    viewer = make_member(Role.VIEWER)
    give_totp(viewer)
    client.force_login(viewer)

    response = client.get(reverse("teams:detail", kwargs={"team_slug": team.slug}))

    assert response.status_code == 200
    assert "requires two-factor authentication" not in response.content.decode()


def test_a_member_without_two_factor_can_still_leave_the_team(
    client: Client, team: Team, make_member: Any
) -> None:
    _require(team)
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)

    response = client.post(reverse("teams:leave", kwargs={"team_slug": team.slug}))

    assert response.status_code == 302
    assert not team.memberships.filter(user=viewer).exists()


def test_teams_that_do_not_require_it_are_unaffected(
    client: Client, team: Team, make_member: Any
) -> None:
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)

    assert client.get(reverse("teams:detail", kwargs={"team_slug": team.slug})).status_code == 200


def test_the_api_refuses_a_token_of_a_member_without_two_factor_for_that_team(
    client: Client, team: Team, make_member: Any
) -> None:
    _require(team)
    viewer = make_member(Role.VIEWER)
    _, token = api_token_create(user=viewer, name="ci", scope=ApiToken.Scope.READ)

    status, body = _api_get(client, token, f"/teams/{team.slug}/members")

    assert status == 403
    assert body["error"]["code"] == "two_factor_required"
    assert f"{team.name} requires two-factor authentication" in body["error"]["message"]
    # The rest of the API, which is about the person and not the team, still answers.
    assert _api_get(client, token, "/me")[0] == 200


def test_the_api_answers_once_the_member_turns_on_two_factor(
    client: Client, team: Team, make_member: Any
) -> None:
    _require(team)
    viewer = make_member(Role.VIEWER)
    _, token = api_token_create(user=viewer, name="ci", scope=ApiToken.Scope.READ)
    give_totp(viewer)

    status, body = _api_get(client, token, f"/teams/{team.slug}/members")

    assert status == 200, body


def test_the_api_still_answers_404_for_a_team_the_caller_is_not_in(
    client: Client, team: Team, db: None
) -> None:
    _require(team)
    from tests.factories import UserFactory

    stranger = UserFactory()
    _, token = api_token_create(user=stranger, name="ci", scope=ApiToken.Scope.READ)

    status, body = _api_get(client, token, f"/teams/{team.slug}/members")

    assert status == 404
    assert body["error"]["code"] == "not_found"


def test_a_browser_session_calling_the_api_is_refused_the_same_way(
    client: Client, team: Team, make_member: Any
) -> None:
    _require(team)
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)

    response = client.get(f"/api/v1/teams/{team.slug}/members")

    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "two_factor_required"
