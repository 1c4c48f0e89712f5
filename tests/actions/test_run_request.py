"""A run does exactly what the person asked, or refuses: targets, parameter
values, integer bounds and "Run again", on the page, through the API and in
the service they share. What the person sees is checked, and that nothing ran."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.urls import reverse

from pipetower.actions import params, services
from pipetower.actions.models import Run, RunTarget, TargetStatus
from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, ServiceError
from tests.actions.conftest import add_server, pinned_server
from tests.api.helpers import Api, error_of

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"
NO_TARGETS = "Choose at least one server or tag to run on."


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def api(client, user, team):
    return Api(client, api_token_create(user=user, name="t", scope="write")[1])


def url(name, team, *args):
    return reverse(name, args=[team.slug, *args])


def finish(run, status=TargetStatus.SUCCEEDED):
    run.targets.update(status=status)
    services.run_status_refresh(run_id=run.pk)
    run.refresh_from_db()
    return run


# --- targets: nothing chosen is refused, never replaced by the defaults ---------------


def test_the_service_never_falls_back_to_the_default_targets(user, server, make_action):
    action = make_action(default_server_ids=[server.pk], default_tags=[])
    with pytest.raises(ServiceError) as caught:
        services.run_start(action=action, actor=user)
    assert (caught.value.message, caught.value.code) == (NO_TARGETS, "no_targets")
    assert not Run.objects.exists() and not RunTarget.objects.exists()
    assert not AuditEvent.objects.filter(verb="run.started").exists()


def test_default_targets_run_only_when_asked_for_and_the_run_records_them(
    user, server, make_action
):
    action = make_action(default_server_ids=[server.pk])
    run = services.run_start(action=action, actor=user, default_targets=True)
    assert list(run.targets.values_list("server_id", flat=True)) == [server.pk]
    event = AuditEvent.objects.get(verb="run.started")
    assert event.data["default_targets"] is True
    with pytest.raises(ServiceError, match="not both"):
        services.run_start(action=action, actor=user, server_ids=[server.pk], default_targets=True)
    bare = make_action()
    with pytest.raises(ServiceError, match="This action has no default targets"):
        services.run_start(action=bare, actor=user, default_targets=True)
    assert Run.objects.count() == 1


def test_unchecking_every_server_and_tag_is_a_form_error_and_nothing_runs(
    owner_client, team, server, make_action
):
    action = make_action(default_server_ids=[server.pk])
    # The form pre-fills the defaults: that is the only place they act.
    page = owner_client.get(url("actions:run", team, action.pk)).content.decode()
    assert f'value="{server.pk}" id="id_servers_0" checked' in page
    answer = owner_client.post(url("actions:run", team, action.pk), {})
    assert answer.status_code == 400
    assert NO_TARGETS in answer.content.decode()
    assert not Run.objects.exists() and not RunTarget.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unchecked_form_makes_no_ssh_connection_while_a_checked_one_does(
    client, team, user, sshd, make_action
):
    """Real sshd, tasks run at once (eager): the twin shows the script would have run."""
    marker = Path("/tmp") / f"pt-runreq-{uuid.uuid4().hex}"
    real = add_server(team, user, sshd, name="real-1")
    action = make_action(f"touch {marker}", default_server_ids=[real.pk])
    client.force_login(user)
    refused = client.post(url("actions:run", team, action.pk), {})
    assert refused.status_code == 400 and NO_TARGETS in refused.content.decode()
    assert not Run.objects.exists()
    assert not marker.exists()
    try:
        started = client.post(url("actions:run", team, action.pk), {"servers": [real.pk]})
        assert started.status_code == 302
        assert Run.objects.get().status == "succeeded"
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)


def test_the_api_refuses_a_run_without_targets_unless_defaults_are_asked_for(
    api, team, server, make_action
):
    action = make_action(default_server_ids=[server.pk])
    path = f"/teams/{team.slug}/actions/{action.pk}/runs"
    refused = api.post(path, {})
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "no_targets"
    assert error_of(refused)["message"] == NO_TARGETS
    assert not Run.objects.exists()
    asked = api.post(path, {"default_targets": True})
    assert asked.status_code == 201
    assert [t["server"] for t in asked.json()["targets"]] == ["web-1"]


# --- parameter values: what was sent is what runs -----------------------------------------


def test_clearing_a_required_parameter_is_an_error_not_its_default(
    owner_client, team, server, make_action
):
    action = make_action(
        parameters=[{"name": "version", "kind": "string", "required": True, "default": "1.0"}]
    )
    page = owner_client.get(url("actions:run", team, action.pk)).content.decode()
    assert 'name="param_version" value="1.0"' in page
    answer = owner_client.post(
        url("actions:run", team, action.pk), {"servers": [server.pk], "param_version": ""}
    )
    assert answer.status_code == 400
    assert "Parameter version is required." in answer.content.decode()
    assert 'aria-invalid="true"' in answer.content.decode()
    assert not Run.objects.exists()


def test_clearing_an_optional_parameter_runs_it_empty_not_with_its_default(
    owner_client, team, server, make_action
):
    action = make_action(parameters=[{"name": "region", "kind": "string", "default": "eu"}])
    answer = owner_client.post(
        url("actions:run", team, action.pk), {"servers": [server.pk], "param_region": ""}
    )
    assert answer.status_code == 302
    assert Run.objects.get().params == {"region": ""}


def test_every_bad_value_is_shown_next_to_its_field_at_once(
    owner_client, team, server, make_action
):
    action = make_action(
        parameters=[
            {"name": "a", "kind": "string", "required": True},
            {"name": "n", "kind": "integer"},
        ]
    )
    answer = owner_client.post(
        url("actions:run", team, action.pk),
        {"servers": [server.pk], "param_a": "", "param_n": "lots"},
    )
    page = answer.content.decode()
    assert "Parameter a is required." in page
    assert "Parameter n must be a whole number, not &#x27;lots&#x27;." in page
    assert not Run.objects.exists()


def test_the_api_refuses_to_guess_a_left_out_parameter_that_has_a_default(
    api, team, server, make_action
):
    action = make_action(
        parameters=[
            {"name": "region", "kind": "string", "default": "eu"},
            {"name": "token", "kind": "secret", "default": "s3cret-default"},
        ]
    )
    path = f"/teams/{team.slug}/actions/{action.pk}/runs"
    refused = api.post(path, {"targets": ["web-1"], "params": {"token": "x"}})
    assert refused.status_code == 400
    error = error_of(refused)
    assert error["code"] == "parameter_not_given"
    assert error["message"].startswith("Parameter region was not given.")
    assert "the default is 'eu'" in error["message"]
    secret = api.post(path, {"targets": ["web-1"], "params": {"region": "us"}})
    assert "a default is stored" in error_of(secret)["message"]
    assert "s3cret-default" not in secret.content.decode()
    assert not Run.objects.exists()
    asked = api.post(path, {"targets": ["web-1"], "params": {"region": "us"}, "default_params": 1})
    assert asked.status_code == 201, asked.json()
    run = Run.objects.get()
    assert run.params == {"region": "us"}
    assert run.secret_param_values() == {"token": "s3cret-default"}
    assert AuditEvent.objects.get(verb="run.started").data["defaults_used"] == ["token"]


def test_a_stored_secret_default_is_used_from_the_form_only_while_its_box_is_ticked(
    owner_client, team, server, make_action
):
    action = make_action(
        parameters=[{"name": "token", "kind": "secret", "required": True, "default": "kept-s3"}]
    )
    page = owner_client.get(url("actions:run", team, action.pk)).content.decode()
    assert "Use the stored default" in page and "kept-s3" not in page
    unticked = owner_client.post(url("actions:run", team, action.pk), {"servers": [server.pk]})
    assert unticked.status_code == 400
    assert "Parameter token is required." in unticked.content.decode()
    ticked = owner_client.post(
        url("actions:run", team, action.pk), {"servers": [server.pk], "keep_token": "on"}
    )
    assert ticked.status_code == 302
    assert Run.objects.get().secret_param_values() == {"token": "kept-s3"}


# --- integer bounds ----------------------------------------------------------------------


def spec(**bounds):
    specs, _ = params.definitions_clean([{"name": "n", "kind": "integer", **bounds}])
    return specs


@pytest.mark.parametrize(
    ("bounds", "value", "message"),
    [
        ({"min": 1, "max": 10}, 11, "Parameter n must be between 1 and 10; 11 is not."),
        ({"min": 1, "max": 10}, "0", "Parameter n must be between 1 and 10; 0 is not."),
        ({"min": 1, "max": 10}, HUGE, f"Parameter n must be between 1 and 10; {HUGE} is not."),
        ({"min": 5}, 4, "Parameter n must be at least 5; 4 is not."),
        ({"max": 5}, "+6", "Parameter n must be at most 5; +6 is not."),
        (
            {},
            HUGE,
            f"Parameter n must be between -9223372036854775808 and 9223372036854775807; "
            f"{HUGE} is not.",
        ),
        ({"min": 5}, "9" * 60, "Parameter n must be between 5 and 9223372036854775807; 9999"),
    ],
)
def test_an_integer_outside_its_bounds_is_refused_naming_them(bounds, value, message):
    with pytest.raises(ServiceError) as caught:
        params.values_resolve(spec(**bounds), {}, {"n": value})
    assert caught.value.message.startswith(message)


def test_integers_within_the_bounds_pass_and_the_bounds_are_stored():
    specs = spec(min=-3, max=3)
    assert (specs[0]["min"], specs[0]["max"]) == (-3, 3)
    assert params.values_resolve(specs, {}, {"n": "-3"})[0] == {"n": -3}
    assert params.values_resolve(specs, {}, {"n": 3})[0] == {"n": 3}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"kind": "integer", "min": 5, "max": 1}, "The minimum of parameter n (5) is above"),
        ({"kind": "integer", "min": 1, "max": 3, "default": 9}, "Default of parameter n: "),
        ({"kind": "integer", "max": HUGE}, "The maximum of parameter n must be a whole number"),
        ({"kind": "string", "min": 1}, "Parameter n is not an integer, so it cannot have"),
    ],
)
def test_bad_bounds_are_refused_when_the_action_is_saved(make_action, definition, message):
    with pytest.raises(ServiceError) as caught:
        make_action(parameters=[{"name": "n", **definition}])
    assert caught.value.message.startswith(message)


def test_the_run_form_refuses_a_huge_integer_next_to_its_field(
    owner_client, team, server, make_action
):
    action = make_action(parameters=[{"name": "n", "kind": "integer", "min": 1, "max": 10}])
    page = owner_client.get(url("actions:run", team, action.pk)).content.decode()
    assert 'type="number"' in page and 'min="1"' in page and 'max="10"' in page
    assert "between 1 and 10" in page
    answer = owner_client.post(
        url("actions:run", team, action.pk), {"servers": [server.pk], "param_n": HUGE}
    )
    assert answer.status_code == 400
    assert f"Parameter n must be between 1 and 10; {HUGE} is not." in answer.content.decode()
    assert not Run.objects.exists()


def test_the_action_form_saves_bounds_and_shows_them_again(owner_client, team):
    data = {
        "name": "Scale",
        "script": "echo $PT_PARAM_N",
        "timeout_seconds": "300",
        "concurrency": "10",
        "params-TOTAL_FORMS": "1",
        "params-INITIAL_FORMS": "0",
        "params-MIN_NUM_FORMS": "0",
        "params-MAX_NUM_FORMS": "50",
        "params-0-name": "n",
        "params-0-kind": "integer",
        "params-0-min": "1",
        "params-0-max": "10",
        "params-0-default": "20",
    }
    refused = owner_client.post(url("actions:create", team), data)
    assert refused.status_code == 400
    assert "Parameter n must be between 1 and 10; 20 is not." in refused.content.decode()
    saved = owner_client.post(url("actions:create", team), {**data, "params-0-default": "2"})
    assert saved.status_code == 302
    action = team.actions.get()
    assert (action.parameters[0]["min"], action.parameters[0]["max"]) == (1, 10)
    detail = owner_client.get(saved["Location"]).content.decode()
    assert "Integer · at least 1 · at most 10" in detail
    edit = owner_client.get(url("actions:edit", team, action.pk)).content.decode()
    assert 'name="params-0-min" value="1"' in edit and 'name="params-0-max" value="10"' in edit


def test_the_api_stores_bounds_and_refuses_a_value_outside_them(api, team, server):
    created = api.post(
        f"/teams/{team.slug}/actions",
        {
            "name": "scale",
            "script": "true",
            "parameters": [{"name": "n", "kind": "integer", "min": 1, "max": 10}],
        },
    )
    assert created.status_code == 201, created.json()
    assert created.json()["parameters"][0]["min"] == 1
    assert created.json()["parameters"][0]["max"] == 10
    path = f"/teams/{team.slug}/actions/{created.json()['id']}/runs"
    for value in (0, 11, int(HUGE), HUGE):
        answer = api.post(path, {"targets": ["web-1"], "params": {"n": value}})
        assert answer.status_code == 400
        assert error_of(answer)["message"] == (
            f"Parameter n must be between 1 and 10; {value} is not."
        )
    assert not Run.objects.exists()
    too_wide = api.patch(
        f"/teams/{team.slug}/actions/{created.json()['id']}",
        {"parameters": [{"name": "n", "kind": "integer", "min": 3, "max": 2}]},
    )
    assert too_wide.status_code == 400


# --- run again ---------------------------------------------------------------------------


@pytest.fixture
def finished_run(team, user, server, make_action):
    other = pinned_server(team, "web-2", port=9)
    pinned_server(team, "web-3", port=9)
    action = make_action(
        parameters=[
            {"name": "version", "kind": "string", "default": "1.0"},
            {"name": "n", "kind": "integer"},
            {"name": "token", "kind": "secret"},
        ],
        default_server_ids=[server.pk],
    )
    run = services.run_start(
        action=action,
        actor=user,
        server_ids=[server.pk, other.pk],
        values={"version": "2.5", "n": 7, "token": "planted-s3cret"},
    )
    return finish(run, TargetStatus.FAILED)


def test_run_again_sits_beside_rerun_failed_on_a_finished_run(owner_client, team, finished_run):
    page = owner_client.get(url("runs:detail", team, finished_run.pk)).content.decode()
    assert "Re-run failed servers" in page
    assert f'href="{url("runs:again", team, finished_run.pk)}">Run again…' in page


def test_run_again_is_not_offered_while_the_run_is_going(
    owner_client, team, user, server, make_action
):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    assert "Run again" not in owner_client.get(url("runs:detail", team, run.pk)).content.decode()
    answer = owner_client.get(url("runs:again", team, run.pk), follow=True)
    assert "This run is still going. Run it again once it has finished." in (
        answer.content.decode()
    )


def test_the_run_again_form_is_prefilled_with_the_runs_targets_and_values_not_its_secret(
    owner_client, team, finished_run
):
    page = owner_client.get(url("runs:again", team, finished_run.pk)).content.decode()
    assert "Pre-filled with the servers and values of" in page
    assert page.count(" checked") == 3  # web-1, web-2 and the "keep" box; not web-3
    assert 'name="param_version" value="2.5"' in page  # the run's value, not the default
    assert 'name="param_n" value="7"' in page
    assert "planted-s3cret" not in page
    assert f"Keep the value used in run #{finished_run.pk}" in page


def test_run_again_from_the_page_uses_the_shown_values_and_keeps_the_secret(
    owner_client, team, server, finished_run
):
    answer = owner_client.post(
        url("runs:again", team, finished_run.pk),
        {
            "servers": [server.pk],
            "param_version": "2.6",
            "param_n": "7",
            "param_token": "",
            "keep_token": "on",
        },
    )
    new = Run.objects.exclude(pk=finished_run.pk).get()
    assert answer["Location"] == url("runs:detail", team, new.pk)
    assert list(new.targets.values_list("server_name", flat=True)) == ["web-1"]
    assert new.params == {"version": "2.6", "n": 7}
    assert new.secret_param_values() == {"token": "planted-s3cret"}
    assert new.rerun_of_id == finished_run.pk


def test_run_again_refuses_a_form_with_every_server_unticked(owner_client, team, finished_run):
    answer = owner_client.post(
        url("runs:again", team, finished_run.pk), {"param_version": "2.5", "param_n": "7"}
    )
    assert answer.status_code == 400
    assert NO_TARGETS in answer.content.decode()
    assert Run.objects.count() == 1


def test_run_again_through_the_api_uses_the_same_servers_and_values(api, team, finished_run):
    answer = api.post(f"/teams/{team.slug}/runs/{finished_run.pk}/again", "")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert [t["server"] for t in body["targets"]] == ["web-1", "web-2"]
    assert body["params"] == {"version": "2.5", "n": 7, "token": "••••••"}
    assert body["rerun_of"] == finished_run.pk
    assert "planted-s3cret" not in answer.content.decode()
    new = Run.objects.get(pk=body["id"])
    assert new.secret_param_values() == {"token": "planted-s3cret"}
    assert new.trigger == Run.Trigger.API


def test_run_again_through_the_api_can_change_targets_and_values(api, team, finished_run):
    answer = api.post(
        f"/teams/{team.slug}/runs/{finished_run.pk}/again",
        {"targets": ["web-3"], "params": {"n": 8}},
    )
    assert answer.status_code == 201, answer.json()
    assert [t["server"] for t in answer.json()["targets"]] == ["web-3"]
    assert answer.json()["params"]["n"] == 8
    empty = api.post(f"/teams/{team.slug}/runs/{finished_run.pk}/again", {"targets": []})
    assert empty.status_code == 400 and error_of(empty)["message"] == NO_TARGETS


def test_run_again_refuses_when_one_of_its_servers_was_deleted(api, team, user, finished_run):
    finished_run.targets.get(server_name="web-2").server.delete()
    answer = api.post(f"/teams/{team.slug}/runs/{finished_run.pk}/again", "")
    assert answer.status_code == 409
    assert error_of(answer)["message"] == (
        f"Deleted since run #{finished_run.pk}: web-2. Choose the servers to run on."
    )
    with pytest.raises(Conflict):
        services.run_again(run=finished_run, actor=user)
    assert Run.objects.count() == 1


def test_run_again_is_refused_while_the_run_is_going(api, team, user, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    answer = api.post(f"/teams/{team.slug}/runs/{run.pk}/again", {})
    assert answer.status_code == 409
    assert Run.objects.count() == 1


def test_run_again_shows_the_default_of_a_parameter_added_since(
    owner_client, team, user, finished_run
):
    action = finished_run.action
    services.action_update(
        action=action,
        actor=user,
        parameters=[*action.parameters, {"name": "region", "kind": "string", "default": "eu"}],
    )
    page = owner_client.get(url("runs:again", team, finished_run.pk)).content.decode()
    assert 'name="param_region" value="eu"' in page
    assert 'name="param_version" value="2.5"' in page
    assert "The action has been edited since run" in page


def _post_again(api, team, run, body, content_type):
    return api.client.post(
        f"/api/v1/teams/{team.slug}/runs/{run.pk}/again",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {api.token}"},
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json",
        "text/plain",
    ],
)
def test_run_again_through_the_api_with_an_empty_body_of_any_type_uses_the_runs_values(
    api, team, finished_run, content_type
):
    response = _post_again(api, team, finished_run, "", content_type)
    assert response.status_code == 201, response.content
    assert response.json()["params"]["version"] == "2.5"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        ("version=3", "application/x-www-form-urlencoded", 400, "not valid JSON"),
        ("{", "application/json", 400, "not valid JSON"),
        ("[]", "application/json", 422, "payload"),
    ],
)
def test_run_again_through_the_api_refuses_a_body_that_is_not_a_json_object_clearly(
    api, team, finished_run, body, content_type, status, says
):
    response = _post_again(api, team, finished_run, body, content_type)
    assert response.status_code == status
    assert says in error_of(response)["message"]
    assert Run.objects.filter(action=finished_run.action).count() == 1  # nothing started
