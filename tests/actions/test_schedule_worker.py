"""A schedule fires with real parts: the scheduler's tick task goes through the
broker to a real Celery worker, which starts the run, and the run's shard runs
on a real sshd. Time travel: the schedule's next time is moved to just past."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from pipetower.actions import schedules
from pipetower.actions.models import Run, RunStatus, Schedule
from pipetower.actions.tasks import schedules_tick_task
from tests.actions.conftest import add_server, output_of
from tests.actions.test_worker import Worker, purge_filesystem_queue, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_scheduler_sends_the_tick_often_enough_that_on_time_is_on_time():
    entry = django_settings.CELERY_BEAT_SCHEDULE["start-due-schedules"]
    assert entry["task"] == schedules_tick_task.name
    assert timedelta(seconds=entry["schedule"]) * 2 <= timedelta(
        seconds=django_settings.ACTIONS_SCHEDULE_GRACE_SECONDS
    ), "a tick must come well within the grace period, or on-time runs count as missed"


def test_a_due_schedule_runs_on_a_real_worker_once(team, user, sshd, make_action, tasks_queued):
    purge_filesystem_queue()
    server = add_server(team, user, sshd, name="web-1")
    action = make_action(
        'echo "scheduled in $PT_PARAM_WHERE"',
        parameters=[{"name": "where", "kind": "string", "required": True}],
    )
    schedule = schedules.schedule_create(
        action=action,
        actor=user,
        name="hourly",
        cron_expression="0 * * * *",
        server_ids=[server.pk],
        values={"where": "eu"},
    )
    Schedule.objects.filter(pk=schedule.pk).update(
        next_run_at=timezone.now() - timedelta(seconds=5)
    )
    worker = Worker()
    ticked_after = timezone.now()
    try:
        schedules_tick_task.delay()
        wait_for(
            lambda: Run.objects.filter(status=RunStatus.SUCCEEDED).exists(),
            timeout=60,
            what="the scheduled run",
        )
        schedules_tick_task.delay()  # a second tick: the time was taken, nothing more
        wait_for(
            lambda: (
                "schedules_tick_task" in worker.output()
                and worker.output().count("succeeded in") >= 3
            ),
            timeout=30,
            what="the second tick",
        )
    finally:
        worker.stop()
        purge_filesystem_queue()
    run = Run.objects.get()
    assert (run.trigger, run.schedule_id) == (Run.Trigger.SCHEDULE, schedule.pk)
    assert output_of(run.targets.get()) == "scheduled in eu\n"
    schedule.refresh_from_db()
    # The next time is the first full hour after the tick (not "after now": a
    # tick at 18:59:59 rightly sets 19:00:00, which may have passed by now).
    assert schedule.next_run_at > ticked_after
    assert (schedule.next_run_at.minute, schedule.next_run_at.second) == (0, 0)
    assert schedule.last_run_id == run.pk
