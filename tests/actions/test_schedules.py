"""Schedules: a cron expression in a time zone runs an action on chosen targets
with chosen values, checked exactly as a manual run is; the scheduler's tick
starts due runs once, skips while the previous run is going, and after
downtime starts at most one catch-up run."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest

from pipetower.actions import cron, schedules, services
from pipetower.actions.models import Run, RunStatus, Schedule, TargetStatus
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import NotAllowed, ServiceError
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server

pytestmark = pytest.mark.django_db

NO_TARGETS = "Choose at least one server or tag to run on."
BERLIN = cron.zone_clean("Europe/Berlin")


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def action(make_action):
    return make_action(
        "echo $PT_PARAM_WHERE",
        parameters=[
            {"name": "where", "kind": "string", "required": True},
            {"name": "count", "kind": "integer", "default": "3"},
        ],
    )


def make_schedule(action, actor, server, **fields):
    fields.setdefault("name", "nightly")
    fields.setdefault("cron_expression", "30 2 * * *")
    fields.setdefault("timezone_name", "Europe/Berlin")
    fields.setdefault("server_ids", [server.pk])
    fields.setdefault("values", {"where": "eu", "count": 5})
    return schedules.schedule_create(action=action, actor=actor, **fields)


def finish(run, status=TargetStatus.SUCCEEDED):
    run.targets.update(status=status)
    services.run_status_refresh(run_id=run.pk)


# --- cron expressions and time zones ---------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "Enter a cron expression"),
        ("* * * *", "exactly five fields (minute, hour, day of month, month, day of week); "),
        ("0 0 * * * 2027", "has 6"),
        ("61 * * * *", "The minute field '61' is not valid"),
        ("0 25 * * *", "The hour field '25' is not valid"),
        ("0 9 * * mon-fry", "The day of week field 'mon-fry' is not valid"),
        ("@reboot", "'@reboot' is not a cron shorthand Pipetower knows"),
        ("0 0 30 2 *", "never happens"),
    ],
)
def test_a_bad_cron_expression_is_refused_with_what_is_wrong(
    user, server, action, expression, message
):
    with pytest.raises(ServiceError) as caught:
        make_schedule(action, user, server, cron_expression=expression)
    assert message in caught.value.message
    assert caught.value.field == "cron"
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "CET; drop table", "europe/berlin"])
def test_an_unknown_time_zone_is_refused(user, server, action, zone):
    with pytest.raises(ServiceError) as caught:
        make_schedule(action, user, server, timezone_name=zone)
    assert caught.value.field == "timezone"
    assert ("Choose a time zone" if not zone else "is not a time zone Pipetower knows") in (
        caught.value.message
    )
    assert not Schedule.objects.exists()


def test_the_next_five_times_follow_the_zones_daylight_saving_change():
    # Berlin moves from UTC+1 to UTC+2 on 29 March 2026: 09:00 stays 09:00 local.
    times = cron.next_times("0 9 * * *", BERLIN, datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert [t.strftime("%m-%d %H:%M") for t in times] == [
        "03-28 09:00",
        "03-29 09:00",
        "03-30 09:00",
        "03-31 09:00",
        "04-01 09:00",
    ]
    assert [t.astimezone(UTC).hour for t in times] == [8, 7, 7, 7, 7]


def test_a_time_skipped_by_the_clocks_runs_at_the_next_minute_that_exists_and_a_repeated_one_once():
    spring = cron.next_times("30 2 * * *", BERLIN, datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert [t.isoformat() for t in spring] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    autumn = cron.next_times("30 2 * * *", BERLIN, datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert [t.isoformat() for t in autumn] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_the_preview_gives_five_times_in_the_zone_and_refuses_what_create_refuses():
    times = schedules.schedule_preview(cron_expression="*/15 * * * 1-5", timezone_name="Asia/Tokyo")
    assert len(times) == 5
    assert all(t.utcoffset() == timedelta(hours=9) for t in times)
    assert times == sorted(times)
    with pytest.raises(ServiceError, match="is not a time zone"):
        schedules.schedule_preview(cron_expression="* * * * *", timezone_name="Tokyo")


# --- what runs: the same checks as a manual run -----------------------------------------


def test_a_schedule_without_targets_is_refused_as_a_manual_run_is(user, action):
    with pytest.raises(ServiceError) as caught:
        schedules.schedule_create(
            action=action,
            actor=user,
            name="n",
            cron_expression="0 * * * *",
            values={"where": "x", "count": 1},
        )
    assert (caught.value.message, caught.value.code) == (NO_TARGETS, "no_targets")
    with pytest.raises(ServiceError) as manual:
        services.run_start(action=action, actor=user, values={"where": "x", "count": 1})
    assert manual.value.message == caught.value.message
    assert not Schedule.objects.exists()


def test_a_missing_required_value_is_refused_and_a_default_is_never_filled_in(user, server, action):
    with pytest.raises(ServiceError, match="Parameter where is required"):
        make_schedule(action, user, server, values={"where": "", "count": 1})
    with pytest.raises(ServiceError) as caught:
        make_schedule(action, user, server, values={"where": "eu"})
    assert caught.value.code == "parameter_not_given"
    assert "Pipetower does not fill in defaults on its own" in caught.value.message
    with pytest.raises(ServiceError, match="must be a whole number"):
        make_schedule(action, user, server, values={"where": "eu", "count": "many"})
    assert not Schedule.objects.exists()
    asked = make_schedule(action, user, server, values={"where": "eu"}, default_params=["count"])
    assert asked.params == {"where": "eu", "count": 3}


def test_a_server_of_another_team_is_not_found(user, action, server):
    from tests.factories import TeamFactory

    other = pinned_server(TeamFactory(), "theirs", port=9)
    with pytest.raises(ServiceError, match=f"Server {other.pk} was not found in this team"):
        make_schedule(action, user, server, server_ids=[other.pk])


def test_creating_a_schedule_sets_its_next_time_and_is_audited(user, server, action):
    schedule = make_schedule(action, user, server)
    assert schedule.next_run_at > datetime.now(UTC)
    local = schedule.next_run_at.astimezone(BERLIN)
    assert (local.hour, local.minute) == (2, 30)
    event = AuditEvent.objects.get(verb="schedule.created")
    assert event.data["cron"] == "30 2 * * *" and event.data["timezone"] == "Europe/Berlin"


def test_a_secret_value_is_stored_encrypted_and_masked_in_the_audit(user, server, make_action):
    action = make_action(parameters=[{"name": "token", "kind": "secret", "required": True}])
    schedule = make_schedule(action, user, server, values={"token": "s3cret-value"})
    assert schedule.params == {}
    assert schedule.secret_param_values() == {"token": "s3cret-value"}
    raw = Schedule.objects.filter(pk=schedule.pk).values_list("secret_params", flat=True).get()
    assert "s3cret-value" not in raw
    assert "s3cret-value" not in str(AuditEvent.objects.get(verb="schedule.created").data)


def test_a_duplicate_name_for_the_same_action_is_a_conflict(user, server, action):
    make_schedule(action, user, server)
    with pytest.raises(ServiceError, match="already has a schedule named 'nightly'"):
        make_schedule(action, user, server)


# --- roles -----------------------------------------------------------------------------


def test_who_can_run_actions_can_manage_schedules_and_viewers_cannot(
    user, server, action, make_member
):
    operator = make_member(Role.OPERATOR)
    viewer = make_member(Role.VIEWER)
    schedule = make_schedule(action, operator, server)
    with pytest.raises(NotAllowed, match="Only operators and above can manage schedules"):
        make_schedule(action, viewer, server, name="other")
    with pytest.raises(NotAllowed):
        schedules.schedule_update(schedule=schedule, actor=viewer, enabled=False)
    with pytest.raises(NotAllowed):
        schedules.schedule_delete(schedule=schedule, actor=viewer)
    schedules.schedule_update(schedule=schedule, actor=operator, enabled=False)
    schedules.schedule_delete(schedule=schedule, actor=operator)
    assert not Schedule.objects.exists()


# --- the tick ----------------------------------------------------------------------------


def test_nothing_starts_before_the_time_and_one_run_starts_when_it_comes(user, server, action):
    schedule = make_schedule(action, user, server)
    slot = schedule.next_run_at
    assert schedules.schedules_tick(now=slot - timedelta(seconds=1)) == 0
    assert not Run.objects.exists()
    assert schedules.schedules_tick(now=slot + timedelta(seconds=5)) == 1
    run = Run.objects.get()
    assert run.trigger == Run.Trigger.SCHEDULE
    assert (run.schedule_id, run.schedule_name, run.started_by) == (schedule.pk, "nightly", None)
    assert run.started_by_text == "Scheduled: nightly"
    assert run.params == {"where": "eu", "count": 5}
    assert list(run.targets.values_list("server_id", flat=True)) == [server.pk]
    schedule.refresh_from_db()
    assert schedule.next_run_at == slot + timedelta(days=1)
    assert (schedule.last_run_id, schedule.last_outcome) == (run.pk, Schedule.Outcome.STARTED)
    # The same moment again: the time was taken, nothing more starts.
    assert schedules.schedules_tick(now=slot + timedelta(seconds=6)) == 0
    assert Run.objects.count() == 1


def test_tags_are_resolved_when_it_fires(user, team, action):
    from pipetower.servers.models import Tag

    tag = Tag.objects.create(team=team, name="db")
    first = pinned_server(team, "db-1", port=9)
    first.tags.add(tag)
    schedule = make_schedule(action, user, first, server_ids=[], tags=["db"])
    second = pinned_server(team, "db-2", port=9)
    second.tags.add(tag)
    schedules.schedules_tick(now=schedule.next_run_at)
    assert sorted(Run.objects.get().targets.values_list("server_name", flat=True)) == [
        "db-1",
        "db-2",
    ]


def test_a_time_is_skipped_while_the_previous_run_is_still_going_and_the_skip_is_recorded(
    user, server, action
):
    schedule = make_schedule(action, user, server, cron_expression="*/5 * * * *")
    first_slot = schedule.next_run_at
    schedules.schedules_tick(now=first_slot)
    first = Run.objects.get()
    assert first.status == RunStatus.QUEUED
    second_slot = first_slot + timedelta(minutes=5)
    assert schedules.schedules_tick(now=second_slot) == 0
    assert Run.objects.count() == 1
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.SKIPPED_OVERLAP
    assert f"run #{first.pk} of this schedule was still going" in schedule.last_message
    assert schedule.last_run_id == first.pk
    assert AuditEvent.objects.filter(verb="schedule.skipped").count() == 1
    finish(first)
    assert schedules.schedules_tick(now=second_slot + timedelta(minutes=5)) == 1
    assert Run.objects.count() == 2


def test_after_downtime_one_catch_up_run_starts_for_all_the_times_missed(user, server, action):
    schedule = make_schedule(action, user, server, cron_expression="0 * * * *")
    slot = schedule.next_run_at
    back = slot + timedelta(days=2, minutes=30)  # 49 hourly times missed
    assert schedules.schedules_tick(now=back) == 1
    assert schedules.schedules_tick(now=back + timedelta(seconds=20)) == 0
    assert Run.objects.count() == 1
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.CAUGHT_UP
    assert "One catch-up run for 49 time(s) missed" in schedule.last_message
    assert schedule.next_run_at == slot + timedelta(days=2, hours=1)


def test_after_downtime_with_catch_up_off_nothing_runs_and_the_miss_is_recorded(
    user, server, action
):
    schedule = make_schedule(action, user, server, cron_expression="0 * * * *", catch_up=False)
    slot = schedule.next_run_at
    assert schedules.schedules_tick(now=slot + timedelta(hours=5, minutes=30)) == 0
    assert not Run.objects.exists()
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.MISSED
    assert "6 time(s) missed" in schedule.last_message and "nothing ran" in schedule.last_message
    assert AuditEvent.objects.filter(verb="schedule.missed").exists()
    # The next time on time runs as usual.
    assert schedules.schedules_tick(now=schedule.next_run_at) == 1


def test_a_little_late_is_on_time_not_a_catch_up(user, server, action, settings):
    settings.ACTIONS_SCHEDULE_GRACE_SECONDS = 120
    schedule = make_schedule(action, user, server, catch_up=False)
    assert schedules.schedules_tick(now=schedule.next_run_at + timedelta(seconds=90)) == 1
    schedule.refresh_from_db()
    assert (schedule.last_outcome, schedule.last_message) == (Schedule.Outcome.STARTED, "")


def test_back_just_in_time_for_the_latest_time_runs_it_on_time_and_drops_the_older_ones(
    user, server, action
):
    schedule = make_schedule(action, user, server, cron_expression="0 * * * *", catch_up=False)
    assert schedules.schedules_tick(now=schedule.next_run_at + timedelta(hours=5, minutes=1)) == 1
    assert Run.objects.count() == 1
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.STARTED
    assert "Started on time; 5 time(s) missed" in schedule.last_message


def test_a_disabled_schedule_does_nothing_and_enabling_it_does_not_catch_up(user, server, action):
    schedule = make_schedule(action, user, server, cron_expression="0 * * * *")
    slot = schedule.next_run_at
    schedules.schedule_set_enabled(schedule=schedule, actor=user, enabled=False)
    assert schedules.schedules_tick(now=slot + timedelta(hours=3)) == 0
    assert not Run.objects.exists()
    schedule = schedules.schedule_set_enabled(schedule=schedule, actor=user, enabled=True)
    assert schedule.next_run_at > datetime.now(UTC)
    assert schedules.schedules_tick(now=datetime.now(UTC)) == 0
    assert not Run.objects.exists()


def test_a_refusal_when_it_fires_is_recorded_not_guessed(user, server, action):
    schedule = make_schedule(action, user, server)
    server.delete()  # the only target is gone: no targets, as a manual run would be refused
    assert schedules.schedules_tick(now=schedule.next_run_at) == 0
    assert not Run.objects.exists()
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.REFUSED
    assert NO_TARGETS in schedule.last_message
    assert AuditEvent.objects.filter(verb="schedule.refused").exists()


def test_a_team_scheduled_for_deletion_starts_nothing_and_says_why(user, team, server, action):
    from pipetower.teams import services as team_services

    schedule = make_schedule(action, user, server)
    team_services.team_deletion_schedule(team=team, actor=user, confirm_name=team.name)
    assert schedules.schedules_tick(now=schedule.next_run_at) == 0
    assert not Run.objects.exists()
    schedule.refresh_from_db()
    assert schedule.last_outcome == Schedule.Outcome.REFUSED
    assert "scheduled for deletion" in schedule.last_message


def test_a_parameter_made_required_since_is_refused_when_it_fires(user, server, action):
    schedule = make_schedule(action, user, server)
    services.action_update(
        action=action,
        actor=user,
        parameters=[*action.parameters, {"name": "zone", "kind": "string", "required": True}],
    )
    schedules.schedules_tick(now=schedule.next_run_at)
    schedule.refresh_from_db()
    assert not Run.objects.exists()
    assert "Parameter zone is required" in schedule.last_message


def test_updating_a_schedule_rechecks_it_and_keeps_stored_secrets(user, server, make_action):
    action = make_action(
        parameters=[
            {"name": "where", "kind": "string", "required": True},
            {"name": "token", "kind": "secret", "required": True},
        ]
    )
    schedule = make_schedule(action, user, server, values={"where": "a", "token": "t0p"})
    with pytest.raises(ServiceError, match="Parameter token is required"):
        schedules.schedule_update(schedule=schedule, actor=user, values={"where": "b"})
    schedule = schedules.schedule_update(
        schedule=schedule,
        actor=user,
        values={"where": "b"},
        keep_secrets=["token"],
        cron_expression="0 6 * * 1",
        timezone_name="America/New_York",
    )
    assert schedule.params == {"where": "b"}
    assert schedule.secret_param_values() == {"token": "t0p"}
    local = schedule.next_run_at.astimezone(cron.zone_clean("America/New_York"))
    assert (local.weekday(), local.hour) == (0, 6)
    with pytest.raises(ServiceError, match=NO_TARGETS):
        schedules.schedule_update(schedule=schedule, actor=user, server_ids=[])


def test_deleting_a_schedule_keeps_its_runs_named(user, server, action):
    schedule = make_schedule(action, user, server)
    schedules.schedules_tick(now=schedule.next_run_at)
    schedules.schedule_delete(schedule=schedule, actor=user)
    run = Run.objects.get()
    assert run.schedule_id is None
    assert run.started_by_text == "Scheduled: nightly"
    assert AuditEvent.objects.filter(verb="schedule.deleted").exists()


# --- several schedulers at once -------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_schedulers_ticking_at_once_in_separate_processes_start_each_due_time_once(
    team, user, make_action, tasks_queued
):
    from tests.actions import schedule_procs
    from tests.actions.test_concurrency import run_processes
    from tests.actions.test_worker import purge_filesystem_queue

    server = pinned_server(team, "web-1", port=9)
    action = make_action("true")
    made = [
        schedules.schedule_create(
            action=action,
            actor=user,
            name=f"every-minute-{i}",
            cron_expression="* * * * *",
            server_ids=[server.pk],
        )
        for i in range(30)
    ]
    slot = max(s.next_run_at for s in made)
    Schedule.objects.update(next_run_at=slot)
    barrier = multiprocessing.get_context("spawn").Barrier(3)
    now = (slot + timedelta(seconds=1)).isoformat()
    try:
        run_processes(*[(schedule_procs.tick, (barrier, now, 3)) for _ in range(3)])
    finally:
        purge_filesystem_queue()
    per_schedule = sorted(Run.objects.values_list("schedule_id", flat=True))
    assert per_schedule == sorted(s.pk for s in made), "each due time started exactly one run"
    # The losers did nothing at all: no process acted on a time another had claimed
    # (the overlap rule would otherwise hide a second claim as a "skip").
    assert not AuditEvent.objects.filter(verb="schedule.skipped").exists()
    assert set(Schedule.objects.values_list("next_run_at", flat=True)) == {
        slot + timedelta(minutes=1)
    }


def test_a_stored_zone_this_system_no_longer_knows_stops_the_schedule_and_says_why(
    user, server, action
):
    schedule = make_schedule(action, user, server)
    other = make_schedule(action, user, server, name="other")
    Schedule.objects.filter(pk=schedule.pk).update(timezone="Gone/Zone")
    assert schedules.schedules_tick(now=other.next_run_at) == 1, "the other one still runs"
    schedule.refresh_from_db()
    assert (schedule.next_run_at, schedule.last_outcome) == (None, Schedule.Outcome.REFUSED)
    assert "'Gone/Zone' is not a time zone" in schedule.last_message
