"""The schedule pages: what a person sees when creating, previewing, editing,
switching off and deleting a schedule, and how runs show what started them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from pipetower.actions import schedules
from pipetower.actions.models import Run, Schedule
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server

pytestmark = pytest.mark.django_db

NO_TARGETS = "Choose at least one server or tag to run on."


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def action(make_action):
    return make_action(
        "echo hi",
        parameters=[
            {"name": "where", "kind": "string", "required": True},
            {"name": "token", "kind": "secret"},
        ],
    )


def url(name, team, *args):
    return reverse(name, args=[team.slug, *args])


def form_data(server, **overrides):
    data = {
        "name": "nightly",
        "cron": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "enabled": "on",
        "catch_up": "on",
        "servers": [server.pk],
        "param_where": "eu",
        "param_token": "tok-123",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def errors_of(response):
    return re.findall(
        r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S
    )


def test_creating_a_schedule_from_the_action_page(owner_client, team, server, action):
    page = owner_client.get(url("actions:detail", team, action.pk))
    assert "No schedule runs this action." in page.content.decode()
    assert url("actions:schedule_create", team, action.pk) in page.content.decode()
    form = owner_client.get(url("actions:schedule_create", team, action.pk))
    assert form.status_code == 200
    response = owner_client.post(url("actions:schedule_create", team, action.pk), form_data(server))
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.timezone, schedule.params) == (
        "30 2 * * *",
        "Europe/Berlin",
        {"where": "eu"},
    )
    assert schedule.secret_param_values() == {"token": "tok-123"}
    listing = owner_client.get(url("schedules:list", team)).content.decode()
    assert "nightly" in listing
    assert re.search(r"\d{4}-\d\d-\d\d 02:30 CES?T", listing), "the next run, in the zone"
    assert "not run yet" in listing


def test_the_preview_shows_the_next_five_times_in_the_zone_without_saving(
    owner_client, team, server, action
):
    response = owner_client.post(
        url("actions:schedule_create", team, action.pk),
        {"preview": "1", "cron": "0 9 * * 1-5", "timezone": "America/New_York"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    times = re.findall(r"<li>((?:Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 09:00 E[SD]T)</li>", body)
    assert len(times) == 5
    assert "The next five times, in America/New_York" in body
    assert not errors_of(response), "a preview shows only the errors of the times"
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cron": "61 * * * *"}, "cron", "The minute field &#x27;61&#x27; is not valid"),
        ({"cron": "* * * *"}, "cron", "exactly five fields"),
        ({"cron": ""}, "cron", "Enter a cron expression"),
        ({"cron": "0 0 30 2 *"}, "cron", "never happens"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus is not a time zone"),
        ({"timezone": ""}, "timezone", "Choose a time zone."),
        ({"name": ""}, "name", "This field is required."),
        ({"servers": None}, None, NO_TARGETS),
        ({"servers": ["99999"]}, "servers", "Select a valid choice"),
        ({"param_where": ""}, "param_where", "Parameter where is required."),
    ],
)
def test_bad_input_comes_back_with_the_error_next_to_its_field_and_nothing_is_saved(
    owner_client, team, server, action, fields, field, message
):
    response = owner_client.post(
        url("actions:schedule_create", team, action.pk), form_data(server, **fields)
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert message in body
    if field:
        assert re.search(rf'id="field-{field}".*?{re.escape(message)}', body, re.S), body
        assert 'aria-invalid="true"' in body
    assert not Schedule.objects.exists()


def test_a_preview_with_a_bad_expression_says_what_is_wrong(owner_client, team, server, action):
    response = owner_client.post(
        url("actions:schedule_create", team, action.pk),
        {"preview": "1", "cron": "0 9 * * mon-fry", "timezone": "UTC"},
    )
    assert response.status_code == 400
    assert "The day of week field &#x27;mon-fry&#x27; is not valid" in response.content.decode()


def test_editing_shows_the_next_times_and_keeps_the_stored_secret(
    owner_client, team, server, action, user
):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="30 2 * * *",
        timezone_name="Europe/Berlin",
        server_ids=[server.pk],
        values={"where": "eu", "token": "tok-123"},
    )
    page = owner_client.get(url("schedules:edit", team, schedule.pk)).content.decode()
    assert len(re.findall(r"<li>\w{3} \d{4}-\d\d-\d\d 02:30 CES?T</li>", page)) == 5
    assert "tok-123" not in page
    assert "Keep the value stored in this schedule for token" in page
    response = owner_client.post(
        url("schedules:edit", team, schedule.pk),
        form_data(server, param_token="", keep_token="on", param_where="us", cron="0 3 * * *"),
    )
    assert response.status_code == 302, errors_of(response)
    schedule.refresh_from_db()
    assert schedule.cron == "0 3 * * *"
    assert schedule.params == {"where": "us"}
    assert schedule.secret_param_values() == {"token": "tok-123"}


def test_disabling_and_enabling_from_the_list(owner_client, team, server, action, user):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    owner_client.post(url("schedules:toggle", team, schedule.pk))
    schedule.refresh_from_db()
    assert not schedule.enabled
    listing = owner_client.get(url("schedules:list", team)).content.decode()
    assert "disabled" in listing and ">Enable<" in listing
    owner_client.post(url("schedules:toggle", team, schedule.pk))
    schedule.refresh_from_db()
    assert schedule.enabled


def test_enabling_a_schedule_whose_target_is_gone_says_why(
    owner_client, team, server, action, user
):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
        enabled=False,
    )
    server.delete()
    response = owner_client.post(url("schedules:toggle", team, schedule.pk), follow=True)
    assert f"“nightly” was not enabled: {NO_TARGETS}" in response.content.decode()
    schedule.refresh_from_db()
    assert not schedule.enabled


def test_deleting_a_schedule_asks_first(owner_client, team, server, action, user):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    confirm = owner_client.get(url("schedules:delete", team, schedule.pk)).content.decode()
    assert "Delete the schedule “nightly”?" in confirm
    owner_client.post(url("schedules:delete", team, schedule.pk))
    assert not Schedule.objects.exists()


def test_an_empty_list_explains_schedules(owner_client, team):
    body = owner_client.get(url("schedules:list", team)).content.decode()
    assert "No schedules yet" in body


def test_viewers_read_schedules_but_cannot_manage_them(
    client, team, server, action, user, make_member
):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    client.force_login(make_member(Role.VIEWER))
    listing = client.get(url("schedules:list", team))
    assert listing.status_code == 200
    assert "nightly" in listing.content.decode()
    assert url("schedules:edit", team, schedule.pk) not in listing.content.decode()
    detail = client.get(url("actions:detail", team, action.pk)).content.decode()
    assert "nightly" in detail and "Schedule…" not in detail
    assert client.get(url("actions:schedule_create", team, action.pk)).status_code == 403
    assert client.post(url("schedules:toggle", team, schedule.pk)).status_code == 403
    assert client.post(url("schedules:delete", team, schedule.pk)).status_code == 403
    schedule.refresh_from_db()
    assert schedule.enabled


def test_operators_manage_schedules(client, team, server, action, make_member):
    client.force_login(make_member(Role.OPERATOR))
    response = client.post(url("actions:schedule_create", team, action.pk), form_data(server))
    assert response.status_code == 302
    assert Schedule.objects.get().created_by.memberships.get(team=team).role == Role.OPERATOR


def test_another_teams_schedule_is_not_found(client, team, server, action, user):
    from tests.factories import TeamFactory, member

    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="nightly",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    other = TeamFactory()
    client.force_login(member(other, Role.OWNER))
    assert client.get(url("schedules:edit", other, schedule.pk)).status_code == 404
    assert client.post(url("schedules:delete", other, schedule.pk)).status_code == 404


def test_runs_show_the_schedule_that_started_them(owner_client, team, server, action, user):
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="<b>nightly</b>",
        cron_expression="@daily",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    run = schedules.schedule_fire(schedule_id=schedule.pk, slot=schedule.next_run_at)
    assert isinstance(run, Run)
    detail = owner_client.get(url("runs:detail", team, run.pk)).content.decode()
    assert "Scheduled: " in detail and "&lt;b&gt;nightly&lt;/b&gt;" in detail
    assert "<b>nightly</b>" not in detail
    listing = owner_client.get(url("runs:list", team)).content.decode()
    assert "Scheduled: &lt;b&gt;nightly&lt;/b&gt;" in listing
    action_page = owner_client.get(url("actions:detail", team, action.pk)).content.decode()
    assert "Scheduled: &lt;b&gt;nightly&lt;/b&gt;" in action_page
    schedules_page = owner_client.get(url("schedules:list", team)).content.decode()
    assert f"#{run.pk}" in schedules_page and "<b>nightly</b>" not in schedules_page
