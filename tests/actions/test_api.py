"""The actions and runs API: CRUD, starting and following runs, roles, bad input."""

from __future__ import annotations

import pytest

from pipetower.actions import services
from pipetower.actions.models import Action, Run, TargetStatus
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server, unpinned_server
from tests.api.helpers import Api, error_of
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, user, team):
    return Api(client, api_token_create(user=user, name="t", scope=ApiToken.Scope.WRITE)[1])


@pytest.fixture
def as_role(client, team, make_member):
    def make(role):
        member = make_member(role)
        return Api(client, api_token_create(user=member, name="t", scope="write")[1])

    return make


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


NEW_ACTION = {
    "name": "deploy",
    "script": "echo $PT_PARAM_VERSION",
    "parameters": [
        {"name": "version", "kind": "string", "required": True},
        {"name": "token", "kind": "secret", "default": "sekret"},
    ],
    "timeout_seconds": 60,
}


def test_an_admin_creates_reads_updates_and_deletes_an_action(api, team):
    created = api.post(f"/teams/{team.slug}/actions", NEW_ACTION)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["parameters"][1] == {
        "name": "token",
        "label": "token",
        "kind": "secret",
        "required": False,
        "default": None,
        "choices": [],
        "help": "",
        "min": None,
        "max": None,
    }
    assert "sekret" not in created.content.decode()
    path = f"/teams/{team.slug}/actions/{body['id']}"
    assert api.get(path).json()["timeout_seconds"] == 60
    patched = api.patch(path, {"timeout_seconds": 90, "failure_limit": 2})
    assert (patched.json()["timeout_seconds"], patched.json()["failure_limit"]) == (90, 2)
    assert api.get(f"/teams/{team.slug}/actions?name=deploy").json()["count"] == 1
    assert api.delete(path).status_code == 204
    assert not Action.objects.exists()
    verbs = set(AuditEvent.objects.values_list("verb", flat=True))
    assert {"action.created", "action.updated", "action.deleted"} <= verbs


def test_an_operator_cannot_manage_actions_but_a_viewer_can_read_them(as_role, team, make_action):
    action = make_action()
    operator = as_role(Role.OPERATOR)
    refused = operator.post(f"/teams/{team.slug}/actions", NEW_ACTION)
    assert refused.status_code == 403
    assert error_of(refused)["message"] == "This needs the Admin role or higher."
    assert operator.delete(f"/teams/{team.slug}/actions/{action.pk}").status_code == 403
    viewer = as_role(Role.VIEWER)
    assert viewer.get(f"/teams/{team.slug}/actions/{action.pk}").status_code == 200


def test_an_oversized_script_is_a_clear_400(api, team, settings):
    settings.ACTIONS_SCRIPT_MAX_BYTES = 50
    answer = api.post(f"/teams/{team.slug}/actions", {**NEW_ACTION, "script": "y" * 80})
    error = error_of(answer)
    assert answer.status_code == 400
    assert error["message"].startswith("The script is 80 bytes; the limit is 50 bytes.")
    assert error["details"][0]["field"] == "script"


def test_an_operator_starts_a_run_by_server_name_and_tag(as_role, team, server, make_action):
    action = make_action(parameters=[{"name": "n", "kind": "integer"}])
    answer = as_role(Role.OPERATOR).post(
        f"/teams/{team.slug}/actions/{action.pk}/runs", {"targets": ["web-1"], "params": {"n": 4}}
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "queued" and body["params"] == {"n": 4}
    assert [t["server"] for t in body["targets"]] == ["web-1"]
    assert Run.objects.get().trigger == Run.Trigger.API


def test_a_viewer_cannot_start_a_run(as_role, team, server, make_action):
    answer = as_role(Role.VIEWER).post(
        f"/teams/{team.slug}/actions/{make_action().pk}/runs", {"targets": ["web-1"]}
    )
    assert answer.status_code == 403
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n": "four"}, "Parameter n must be a whole number, not 'four'."),
        ({}, "Parameter n is required."),
        ({"n": 1, "x": "y"}, "Unknown parameter x. This action takes: n."),
    ],
)
def test_bad_parameters_are_a_clear_400(api, team, server, make_action, params, message):
    action = make_action(parameters=[{"name": "n", "kind": "integer", "required": True}])
    answer = api.post(
        f"/teams/{team.slug}/actions/{action.pk}/runs", {"targets": ["web-1"], "params": params}
    )
    assert answer.status_code == 400
    assert error_of(answer)["message"] == message


def test_a_server_of_another_team_is_404_by_id_and_by_name(api, team, make_action):
    theirs = pinned_server(TeamFactory(), "theirs", port=9)
    path = f"/teams/{team.slug}/actions/{make_action().pk}/runs"
    by_id = api.post(path, {"server_ids": [theirs.pk]})
    assert by_id.status_code == 404
    assert error_of(by_id)["message"] == f"Server {theirs.pk} was not found in this team."
    by_name = api.post(path, {"targets": ["theirs"]})
    assert by_name.status_code == 404
    assert error_of(by_name)["message"] == "No server named 'theirs' in this team."


def test_a_server_without_a_pin_is_a_clear_400(api, team, make_action):
    unpinned_server(team, "fresh")
    answer = api.post(f"/teams/{team.slug}/actions/{make_action().pk}/runs", {"targets": ["fresh"]})
    assert answer.status_code == 400
    error = error_of(answer)
    assert error["code"] == "host_key_not_pinned"
    assert error["message"].startswith("No host key is pinned for fresh.")


def test_run_detail_output_after_a_sequence_number_and_changes(
    api, team, user, server, make_action
):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    target = run.targets.get()
    services.run_target_claim(target_id=target.pk, worker="w")
    services.output_chunks_store(
        target_id=target.pk, chunks=[("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")]
    )
    base = f"/teams/{team.slug}/runs/{run.pk}"
    detail = api.get(base).json()
    assert detail["targets"][0]["last_seq"] == 3 and detail["status"] == "running"
    output = api.get(f"{base}/targets/{target.pk}/output?after=1").json()
    assert [(c["seq"], c["stream"], c["data"]) for c in output["chunks"]] == [
        (2, "stderr", "b\n"),
        (3, "stdout", "c\n"),
    ]
    assert output["more"] is False
    changes = api.get(f"{base}/changes?after={target.pk}:2").json()
    assert [c["data"] for c in changes["chunks"]] == ["c\n"]


def test_cancel_and_rerun_failed_through_the_api(api, team, user, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    cancelled = api.post(f"/teams/{team.slug}/runs/{run.pk}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"/teams/{team.slug}/runs/{run.pk}/cancel")
    assert again.status_code == 409
    assert error_of(again)["message"] == "This run has already finished (cancelled)."
    nothing = api.post(f"/teams/{team.slug}/runs/{run.pk}/rerun-failed")
    assert nothing.status_code == 409
    run.targets.update(status=TargetStatus.UNREACHABLE)
    services.run_status_refresh(run_id=run.pk)
    rerun = api.post(f"/teams/{team.slug}/runs/{run.pk}/rerun-failed")
    assert rerun.status_code == 201 and rerun.json()["rerun_of"] == run.pk


def test_run_history_filters_and_pages(api, team, user, server, make_action):
    action = make_action()
    for _ in range(3):
        services.run_start(action=action, actor=user, server_ids=[server.pk])
    page = api.get(f"/teams/{team.slug}/runs?page_size=2&status=queued").json()
    assert page["count"] == 3 and len(page["items"]) == 2 and page["next"]
    none = api.get(f"/teams/{team.slug}/runs?status=failed").json()
    assert none["count"] == 0
    bad = api.get(f"/teams/{team.slug}/runs?status=exploded")
    assert bad.status_code == 422


def test_another_teams_runs_and_actions_are_404(api, user, make_action):
    other = TeamFactory()
    assert api.get(f"/teams/{other.slug}/runs").status_code == 404
    assert api.get(f"/teams/{other.slug}/actions").status_code == 404


def test_a_read_token_cannot_start_runs(client, user, team, server, make_action):
    reader = Api(client, api_token_create(user=user, name="r", scope="read")[1])
    answer = reader.post(
        f"/teams/{team.slug}/actions/{make_action().pk}/runs", {"targets": ["web-1"]}
    )
    assert answer.status_code == 403
