"""The schedules API: the same services, rules and messages as the pages."""

from __future__ import annotations

import pytest

from pipetower.actions import schedules
from pipetower.actions.models import Schedule
from pipetower.api.services import api_token_create
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server
from tests.api.helpers import Api, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def action(make_action):
    return make_action(
        parameters=[
            {"name": "where", "kind": "string", "required": True},
            {"name": "token", "kind": "secret"},
        ]
    )


@pytest.fixture
def api(client, user):
    return Api(client, api_token_create(user=user, name="t", scope="write")[1])


def body(**fields):
    data = {
        "name": "nightly",
        "cron": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "targets": ["web-1"],
        "params": {"where": "eu", "token": "tok-9"},
    }
    data.update(fields)
    return data


def test_create_list_change_and_delete_a_schedule(api, team, server, action):
    created = api.post(f"/teams/{team.slug}/actions/{action.pk}/schedules", body())
    assert created.status_code == 201, created.content
    out = created.json()
    assert (out["cron"], out["timezone"], out["server_ids"]) == (
        "30 2 * * *",
        "Europe/Berlin",
        [server.pk],
    )
    assert out["params"] == {"where": "eu", "token": "••••••"}
    assert len(out["next_times"]) == 5
    assert all(t.endswith(("+01:00", "+02:00")) for t in out["next_times"])
    listed = api.get(f"/teams/{team.slug}/schedules").json()
    assert [s["name"] for s in listed["items"]] == ["nightly"]
    changed = api.patch(
        f"/teams/{team.slug}/schedules/{out['id']}",
        {"params": {"where": "us"}, "enabled": False},
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["enabled"] is False and changed.json()["next_run_at"] is None
    schedule = Schedule.objects.get()
    assert schedule.params == {"where": "us"}
    assert schedule.secret_param_values() == {"token": "tok-9"}, "a secret left out is kept"
    assert api.delete(f"/teams/{team.slug}/schedules/{out['id']}").status_code == 204
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"cron": "61 * * * *"}, 400, "The minute field '61' is not valid"),
        ({"cron": "* * * * * *"}, 400, "exactly five fields"),
        ({"timezone": "Mars/Olympus"}, 400, "'Mars/Olympus' is not a time zone"),
        ({"targets": []}, 400, "Choose at least one server or tag to run on."),
        ({"targets": ["nope"]}, 404, "No server named 'nope' in this team."),
        ({"params": {"token": "x"}}, 400, "Parameter where is required."),
        ({"params": {"where": "eu", "extra": 1}}, 400, "Unknown parameter extra."),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    api, team, server, action, fields, status, message
):
    answer = api.post(f"/teams/{team.slug}/actions/{action.pk}/schedules", body(**fields))
    assert answer.status_code == status, answer.content
    assert message in error_of(answer)["message"]
    assert not Schedule.objects.exists()


def test_a_malformed_body_is_a_422(api, team, server, action):
    answer = api.post(f"/teams/{team.slug}/actions/{action.pk}/schedules", body(enabled="maybe"))
    assert answer.status_code in (400, 422)
    assert not Schedule.objects.exists()


def test_a_viewer_token_reads_but_cannot_write(client, team, server, action, user, make_member):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    viewer = Api(
        client, api_token_create(user=make_member(Role.VIEWER), name="v", scope="write")[1]
    )
    assert viewer.get(f"/teams/{team.slug}/schedules/{schedule.pk}").status_code == 200
    assert (
        viewer.patch(f"/teams/{team.slug}/schedules/{schedule.pk}", {"enabled": False}).status_code
        == 403
    )
    assert viewer.delete(f"/teams/{team.slug}/schedules/{schedule.pk}").status_code == 403
    schedule.refresh_from_db()
    assert schedule.enabled


def test_a_run_started_by_a_schedule_names_it(api, team, server, action, user):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    run = schedules.schedule_fire(schedule_id=schedule.pk, slot=schedule.next_run_at)
    assert run is not None
    out = api.get(f"/teams/{team.slug}/runs/{run.pk}").json()
    assert (out["trigger"], out["schedule_id"], out["schedule_name"], out["started_by"]) == (
        "schedule",
        schedule.pk,
        "nightly",
        None,
    )
    listed = api.get(f"/teams/{team.slug}/runs").json()["items"]
    assert listed[0]["schedule_name"] == "nightly"
