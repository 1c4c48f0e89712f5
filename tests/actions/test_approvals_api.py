"""The approvals API: list, approve, deny; the requester refused (403 own_request),
decided and expired requests (409), another team's run (404)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipetower.actions import services
from pipetower.actions.models import ApprovalRequest
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.teams.models import Role
from tests.api.helpers import Api, error_of
from tests.factories import TeamFactory, member

pytestmark = pytest.mark.django_db


def api_for(client, person):
    return Api(client, api_token_create(user=person, name="t", scope=ApiToken.Scope.WRITE)[1])


@pytest.fixture
def waiting(make_action, admin, web1):
    action = make_action("echo hi", name="Deploy", requires_approval=True)
    return services.run_start(action=action, actor=admin, server_ids=[web1.pk])


def test_requires_approval_is_set_and_shown_through_the_api(client, user, team):
    api = api_for(client, user)
    created = api.post(
        f"/teams/{team.slug}/actions",
        {"name": "gated", "script": "true", "requires_approval": True},
    )
    assert created.status_code == 201, created.json()
    assert created.json()["requires_approval"] is True
    action_id = created.json()["id"]
    patched = api.patch(f"/teams/{team.slug}/actions/{action_id}", {"requires_approval": False})
    assert patched.status_code == 200 and patched.json()["requires_approval"] is False


def test_a_run_started_through_the_api_waits_for_approval(client, admin, team, web1):
    api = api_for(client, admin)
    action = api.post(
        f"/teams/{team.slug}/actions",
        {"name": "gated", "script": "true", "requires_approval": True},
    ).json()
    started = api.post(f"/teams/{team.slug}/actions/{action['id']}/runs", {"targets": ["web-1"]})
    assert started.status_code == 201, started.json()
    assert started.json()["status"] == "pending_approval"
    assert started.json()["finished"] is False


def test_the_requester_is_refused_with_own_request(client, admin, team, waiting):
    answer = api_for(client, admin).post(f"/teams/{team.slug}/runs/{waiting.pk}/approve")
    assert answer.status_code == 403
    error = error_of(answer)
    assert error["code"] == "own_request"
    assert error["message"] == "You asked for this run; another admin or owner must approve it."


def test_an_operator_is_refused(client, team, waiting, make_member):
    answer = api_for(client, make_member(Role.OPERATOR)).post(
        f"/teams/{team.slug}/runs/{waiting.pk}/approve"
    )
    assert answer.status_code == 403


def test_another_admin_approves_then_a_second_decision_is_a_conflict(
    client, user, team, waiting, make_member
):
    approved = api_for(client, user).post(f"/teams/{team.slug}/runs/{waiting.pk}/approve")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "queued"
    other = make_member(Role.ADMIN, email="cy@example.com")
    again = api_for(client, other).post(
        f"/teams/{team.slug}/runs/{waiting.pk}/deny", {"reason": "no"}
    )
    assert again.status_code == 409 and error_of(again)["code"] == "already_decided"


def test_deny_needs_a_reason_and_ends_the_run(client, user, team, waiting):
    api = api_for(client, user)
    empty = api.post(f"/teams/{team.slug}/runs/{waiting.pk}/deny", {"reason": ""})
    assert empty.status_code in (400, 422)
    denied = api.post(f"/teams/{team.slug}/runs/{waiting.pk}/deny", {"reason": "freeze"})
    assert denied.status_code == 200, denied.json()
    assert denied.json()["status"] == "cancelled"
    assert "Not started: denied by" in denied.json()["targets"][0]["error"]


def test_an_expired_request_is_a_conflict(client, user, team, waiting):
    ApprovalRequest.objects.filter(run=waiting).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    answer = api_for(client, user).post(f"/teams/{team.slug}/runs/{waiting.pk}/approve")
    assert answer.status_code == 409 and error_of(answer)["code"] == "expired"


def test_a_run_without_a_request_is_a_conflict(client, user, team, web1, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[web1.pk])
    answer = api_for(client, user).post(f"/teams/{team.slug}/runs/{run.pk}/approve")
    assert answer.status_code == 409 and error_of(answer)["code"] == "no_approval"


def test_another_teams_run_is_not_found(client, team, waiting):
    other = TeamFactory(name="Other", slug="other")
    stranger = member(other, Role.OWNER, email="eve@example.com")
    answer = api_for(client, stranger).post(f"/teams/other/runs/{waiting.pk}/approve")
    assert answer.status_code == 404
    answer = api_for(client, stranger).post(f"/teams/{team.slug}/runs/{waiting.pk}/approve")
    assert answer.status_code == 404


def test_the_list_shows_waiting_requests_first_and_filters(client, user, team, waiting):
    api = api_for(client, user)
    listed = api.get(f"/teams/{team.slug}/approvals")
    assert listed.status_code == 200, listed.json()
    items = listed.json()["items"]
    assert [i["run_id"] for i in items] == [waiting.pk]
    assert items[0]["decision"] == "" and items[0]["run_status"] == "pending_approval"
    assert items[0]["requested_by"] == "bea@example.com"
    decided = api.get(f"/teams/{team.slug}/approvals?state=decided")
    assert decided.json()["items"] == []
