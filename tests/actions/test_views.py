"""The pages of actions and runs: what people see, role by role, and the live output."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from pipetower.actions import live, services
from pipetower.actions.models import Action, Run, RunTarget, TargetStatus
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server, unpinned_server
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


def url(name, team, *args):
    return reverse(name, args=[team.slug, *args])


def action_post(**overrides):
    data = {
        "name": "Deploy",
        "description": "",
        "script": "echo deploy",
        "run_as": "",
        "timeout_seconds": "300",
        "concurrency": "10",
        "failure_limit": "",
        "default_tags": "",
        "params-TOTAL_FORMS": "2",
        "params-INITIAL_FORMS": "0",
        "params-MIN_NUM_FORMS": "0",
        "params-MAX_NUM_FORMS": "50",
        "params-0-name": "version",
        "params-0-kind": "string",
        "params-0-required": "on",
        "params-0-default": "",
        "params-1-name": "",
        "params-1-kind": "string",
    }
    data.update(overrides)
    return data


def test_the_actions_page_invites_an_admin_to_create_the_first_action(owner_client, team):
    page = owner_client.get(url("actions:list", team))
    assert page.status_code == 200
    assert b"No actions yet" in page.content
    assert b"Create the first action" in page.content


def test_the_team_nav_links_to_actions_and_runs(owner_client, team):
    page = owner_client.get(url("actions:list", team)).content.decode()
    assert f'href="/teams/{team.slug}/actions/">Actions</a>' in page
    assert f'href="/teams/{team.slug}/runs/">Runs</a>' in page


def test_an_admin_creates_an_action_with_a_parameter(owner_client, team):
    answer = owner_client.post(url("actions:create", team), action_post())
    action = Action.objects.get(team=team)
    assert answer.status_code == 302
    assert answer["Location"] == url("actions:detail", team, action.pk)
    assert action.parameters[0]["name"] == "version" and action.parameters[0]["required"]
    page = owner_client.get(answer["Location"]).content.decode()
    assert "PT_PARAM_VERSION" in page


def test_an_oversized_script_is_shown_next_to_the_field(owner_client, team, settings):
    settings.ACTIONS_SCRIPT_MAX_BYTES = 100
    answer = owner_client.post(url("actions:create", team), action_post(script="x" * 200))
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "The script is 200 bytes; the limit is 100 bytes." in page
    assert 'aria-invalid="true"' in page
    assert not Action.objects.exists()


def test_a_viewer_cannot_open_the_new_action_form(client, team, make_member):
    client.force_login(make_member(Role.VIEWER))
    assert client.get(url("actions:create", team)).status_code == 403


def test_the_run_form_shows_typed_parameters_and_starts_a_run(
    owner_client, team, server, make_action, django_capture_on_commit_callbacks
):
    action = make_action(
        parameters=[
            {"name": "count", "kind": "integer", "default": 2},
            {"name": "token", "kind": "secret"},
        ]
    )
    page = owner_client.get(url("actions:run", team, action.pk)).content.decode()
    assert 'type="number"' in page and 'type="password"' in page and "$PT_PARAM_TOKEN" in page
    answer = owner_client.post(
        url("actions:run", team, action.pk),
        {"servers": [server.pk], "param_count": "5", "param_token": "xyz"},
    )
    run = Run.objects.get()
    assert answer.status_code == 302 and answer["Location"] == url("runs:detail", team, run.pk)
    assert run.params == {"count": 5} and run.secret_param_values() == {"token": "xyz"}


def test_a_missing_required_parameter_is_shown_next_to_it(owner_client, team, server, make_action):
    action = make_action(parameters=[{"name": "version", "kind": "string", "required": True}])
    answer = owner_client.post(url("actions:run", team, action.pk), {"servers": [server.pk]})
    assert answer.status_code == 400
    assert "Parameter version is required." in answer.content.decode()
    assert not Run.objects.exists()


def test_a_server_without_a_pin_gives_a_clear_message_not_an_error_page(
    owner_client, team, make_action
):
    fresh = unpinned_server(team, "fresh")
    answer = owner_client.post(url("actions:run", team, make_action().pk), {"servers": [fresh.pk]})
    assert answer.status_code == 400
    assert "No host key is pinned for fresh." in answer.content.decode()


def test_a_server_of_another_team_cannot_be_chosen(owner_client, team, make_action):
    theirs = pinned_server(TeamFactory(), "theirs", port=9)
    answer = owner_client.post(url("actions:run", team, make_action().pk), {"servers": [theirs.pk]})
    assert answer.status_code == 400
    assert "Select a valid choice" in answer.content.decode()
    assert not Run.objects.exists()


def test_another_teams_run_is_not_found(owner_client, team, user, make_action):
    other = TeamFactory()
    other.memberships.create(user=user, role=Role.OWNER)
    server = pinned_server(other, "s", 9)
    action = services.action_create(team=other, actor=user, name="x", script="true")
    run = services.run_start(action=action, actor=user, server_ids=[server.pk])
    assert owner_client.get(url("runs:detail", team, run.pk)).status_code == 404
    assert owner_client.get(url("runs:live", team, run.pk)).status_code == 404


def _run_with_output(user, server, make_action, chunks):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    target = run.targets.get()
    services.run_target_claim(target_id=target.pk, worker="w")
    services.output_chunks_store(target_id=target.pk, chunks=chunks)
    return run, target


def test_the_run_page_shows_targets_with_status_badges(
    owner_client, team, user, server, make_action
):
    run, target = _run_with_output(user, server, make_action, [("stdout", "hi\n")])
    page = owner_client.get(url("runs:detail", team, run.pk)).content.decode()
    assert f'id="target-row-{target.pk}"' in page
    assert 'class="badge badge-run badge-run-connecting"' in page
    assert "actions/run.js" in page and 'id="run-live-config"' in page


def test_live_output_resumes_after_the_last_sequence_number_without_gap_or_duplicate(
    owner_client, team, user, server, make_action
):
    run, target = _run_with_output(
        user, server, make_action, [("stdout", "one\n"), ("stderr", "two\n")]
    )
    live = url("runs:live", team, run.pk)
    first = owner_client.get(live, {"rev": 0, "after": f"{target.pk}:0"}).json()
    assert [(c["seq"], c["stream"], c["data"]) for c in first["chunks"]] == [
        (1, "stdout", "one\n"),
        (2, "stderr", "two\n"),
    ]
    assert first["targets"][0]["status"] == "connecting"
    services.output_chunks_store(target_id=target.pk, chunks=[("stdout", "three\n")])
    # A reload resumes from the last seq it rendered: only what is new comes back.
    again = owner_client.get(live, {"rev": first["revision"], "after": f"{target.pk}:2"}).json()
    assert [(c["seq"], c["data"]) for c in again["chunks"]] == [(3, "three\n")]
    assert again["targets"] == []


def test_a_status_change_shows_in_the_next_live_answer(
    owner_client, team, user, server, make_action
):
    run, target = _run_with_output(user, server, make_action, [])
    live = url("runs:live", team, run.pk)
    state = owner_client.get(live, {"rev": 0}).json()
    idle = owner_client.get(live, {"rev": state["revision"]}).json()
    assert idle["targets"] == [] and idle["chunks"] == []
    services.run_target_finish(target_id=target.pk, status=TargetStatus.SUCCEEDED, exit_code=0)
    done = owner_client.get(live, {"rev": state["revision"], "wait": "5"}).json()
    assert done["run"] == {"status": "succeeded", "status_label": "Succeeded", "finished": True}
    assert done["targets"][0]["status"] == "succeeded"
    assert done["counts"] == {"succeeded": 1}, "the summary line's counts come along"


def test_a_huge_output_loads_its_tail_first_and_pages_back(
    owner_client, team, user, server, make_action
):
    chunks = [("stdout", f"line {n}\n") for n in range(1, 1001)]
    run, target = _run_with_output(user, server, make_action, chunks)
    tail_url = url("runs:chunks", team, run.pk, target.pk)
    tail = owner_client.get(tail_url).json()
    assert tail["chunks"][-1]["data"] == "line 1000\n"
    assert len(tail["chunks"]) == 200 and tail["more_before"] is True
    earlier = owner_client.get(tail_url, {"before": tail["chunks"][0]["seq"]}).json()
    assert earlier["chunks"][-1]["seq"] == tail["chunks"][0]["seq"] - 1


def test_output_downloads_as_text_per_target_and_per_run(
    owner_client, team, user, server, make_action
):
    run, target = _run_with_output(
        user, server, make_action, [("stdout", "\x1b[31mred\x1b[0m\n"), ("stderr", "err\n")]
    )
    one = owner_client.get(url("runs:target_download", team, run.pk, target.pk))
    assert one["Content-Type"] == "text/plain; charset=utf-8"
    assert f'filename="run-{run.pk}-web-1.txt"' in one["Content-Disposition"]
    assert b"".join(one.streaming_content) == b"\x1b[31mred\x1b[0m\nerr\n"
    every = b"".join(owner_client.get(url("runs:download", team, run.pk)).streaming_content)
    assert every.startswith(b"===== web-1 (Connecting) =====\n\x1b[31mred")


def test_an_operator_cancels_a_run_from_its_page(
    client, team, user, make_member, server, make_action
):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    client.force_login(make_member(Role.OPERATOR))
    answer = client.post(url("runs:cancel", team, run.pk), follow=True)
    assert "Cancelling" in answer.content.decode()
    assert Run.objects.get(pk=run.pk).status == "cancelled"


def test_a_viewer_cannot_cancel(client, team, user, make_member, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    client.force_login(make_member(Role.VIEWER))
    assert client.post(url("runs:cancel", team, run.pk)).status_code == 403
    assert Run.objects.get(pk=run.pk).status == "queued"


def test_rerun_failed_from_the_page_opens_the_new_run(
    owner_client, team, user, server, make_action
):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    run.targets.update(status=TargetStatus.UNREACHABLE)
    services.run_status_refresh(run_id=run.pk)
    page = owner_client.get(url("runs:detail", team, run.pk)).content.decode()
    assert "Re-run failed servers" in page
    answer = owner_client.post(url("runs:rerun", team, run.pk))
    new_run = Run.objects.exclude(pk=run.pk).get()
    assert answer["Location"] == url("runs:detail", team, new_run.pk)


def test_run_history_filters_by_status_and_action_and_paginates(
    owner_client, team, user, server, make_action
):
    deploy, backup = make_action(name="deploy"), make_action(name="backup")
    for _ in range(30):
        services.run_start(action=deploy, actor=user, server_ids=[server.pk])
    failed = services.run_start(action=backup, actor=user, server_ids=[server.pk])
    RunTarget.objects.filter(run=failed).update(status=TargetStatus.FAILED)
    services.run_status_refresh(run_id=failed.pk)
    page = owner_client.get(url("runs:list", team)).content.decode()
    assert "Page 1 of 2" in page
    only_failed = owner_client.get(url("runs:list", team), {"status": "failed"}).content.decode()
    assert f"#{failed.pk}<" in only_failed and only_failed.count("badge-run-failed") == 1
    by_action = owner_client.get(url("runs:list", team), {"action": backup.pk}).content.decode()
    assert f"#{failed.pk}<" in by_action and "Page 1 of" not in by_action
    second = owner_client.get(url("runs:list", team), {"action": deploy.pk, "page": 2})
    assert "Page 2 of 2" in second.content.decode()


def test_run_history_with_no_match_says_so(owner_client, team):
    page = owner_client.get(url("runs:list", team), {"status": "failed"}).content.decode()
    assert "No runs match" in page


def test_a_live_request_never_waits_on_a_thread_it_is_handed_to_the_event_loop(
    owner_client, team, user, server, make_action
):
    """Under a plain WSGI server (here the test client) nothing waits: the answer comes
    at once and says when to ask again. Through the ASGI router (which marks the
    request) a wait or a stream is handed back with the park header instead."""
    run, target = _run_with_output(user, server, make_action, [])
    live_url = url("runs:live", team, run.pk)
    state = owner_client.get(live_url, {"rev": 0}).json()
    plain = owner_client.get(live_url, {"rev": state["revision"], "wait": "20"})
    assert plain.json()["retry_ms"] == 1000 and plain.json()["chunks"] == []
    assert live.PARK_HEADER not in plain.headers
    routed = {"headers": {live.ROUTED_HEADER: "1"}}
    parked = owner_client.get(
        live_url, {"rev": state["revision"], "after": f"{target.pk}:0", "wait": "20"}, **routed
    )
    park = json.loads(parked.headers[live.PARK_HEADER])
    assert park == {
        "run": run.pk,
        "mode": "wait",
        "rev": state["revision"],
        "cursor": {str(target.pk): 0},
        "wait": 20.0,
        "finished": False,
    }
    stream = owner_client.get(live_url, {"rev": 0, "stream": "1"}, **routed)
    assert json.loads(stream.headers[live.PARK_HEADER])["mode"] == "stream"
