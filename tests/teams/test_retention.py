"""Run history retention: the team setting, its form, the purge, and the
"what we keep" list taken from the data map."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.actions.models import OutputChunk, Run, RunStatus, RunTarget, Schedule
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import NotAllowed, ServiceError
from pipetower.privacy.datamap import DATA_MAP
from pipetower.teams import services
from pipetower.teams.models import Role, Team
from pipetower.teams.retention import (
    MB,
    runs_expired_purge,
    team_output_limit_bytes,
    team_retention_rows,
)
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def run_ended(team: Team, days_ago: float, status: str = RunStatus.SUCCEEDED) -> Run:
    """A run that ended `days_ago` days before NOW, with one server's result and output."""
    ended = NOW - timedelta(days=days_ago)
    run = Run.objects.create(
        team=team,
        action_name="Backup",
        script="true",
        timeout_seconds=60,
        concurrency=1,
        status=status,
        created_at=ended - timedelta(minutes=1),
        finished_at=ended if status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None,
    )
    target = RunTarget.objects.create(run=run, server_name="web-1", status="succeeded")
    OutputChunk.objects.create(run_target=target, seq=1, stream="stdout", data="done\n")
    return run


def test_finished_runs_past_the_period_go_with_their_results_and_output(team: Team) -> None:
    old = run_ended(team, 91)
    old_failed = run_ended(team, 120, RunStatus.FAILED)
    recent = run_ended(team, 89)
    still_running = run_ended(team, 400, RunStatus.RUNNING)
    still_queued = run_ended(team, 400, RunStatus.QUEUED)
    patient = TeamFactory(run_retention_days=365)
    kept_elsewhere = run_ended(patient, 200)
    brief = TeamFactory(run_retention_days=10)
    gone_elsewhere = run_ended(brief, 11)
    # A schedule remembering a purged run as its last one keeps working.
    schedule = Schedule.objects.create(
        team=team,
        action=team.actions.create(name="Backup", script="true"),
        name="nightly",
        cron="0 3 * * *",
        last_run=old,
    )

    counts = runs_expired_purge(now=NOW)

    assert counts.as_dict() == {"runs": 3, "targets": 3, "chunks": 3}
    left = set(Run.objects.values_list("pk", flat=True))
    assert left == {recent.pk, still_running.pk, still_queued.pk, kept_elsewhere.pk}
    assert old_failed.pk not in left and gone_elsewhere.pk not in left
    assert RunTarget.objects.count() == OutputChunk.objects.count() == 4
    schedule.refresh_from_db()
    assert schedule.last_run_id is None
    assert runs_expired_purge(now=NOW).runs == 0  # nothing left to do


def test_the_purge_works_through_many_runs_in_batches(team: Team) -> None:
    for _ in range(5):
        run_ended(team, 100)
    keep = run_ended(team, 1)

    assert runs_expired_purge(now=NOW, batch=2).runs == 5
    assert list(Run.objects.values_list("pk", flat=True)) == [keep.pk]


def test_the_scheduler_runs_the_purge_every_hour(settings: Any) -> None:
    from pipetower.teams.tasks import runs_expired_purge_task

    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-runs"]
    assert entry["task"] == runs_expired_purge_task.name
    assert entry["schedule"] == timedelta(hours=1)
    assert runs_expired_purge_task() == {"runs": 0, "targets": 0, "chunks": 0}


def test_the_purge_covers_every_model_the_data_map_ties_to_the_run_history() -> None:
    # The purge deletes runs, their results and output; a new model declared as
    # kept for the run history period must be purged too before this passes.
    assert {d.model for d in DATA_MAP if d.retention_setting == "run_retention_days"} == {
        "actions.Run",
        "actions.RunTarget",
        "actions.OutputChunk",
    }
    assert all(d.retention_setting is None or hasattr(Team, d.retention_setting) for d in DATA_MAP)


# --- the setting -------------------------------------------------------------------


def settings_post(client: Client, team: Team, days: str, mb: str) -> Any:
    return client.post(
        reverse("teams:settings", args=[team.slug]),
        {"section": "retention", "run_retention_days": days, "output_limit_mb": mb},
    )


def test_an_owner_sets_the_period_and_output_limit_and_it_is_audited(
    owner_client: Client, team: Team, settings: Any
) -> None:
    settings.ACTIONS_OUTPUT_LIMIT_BYTES = 10 * MB
    page = owner_client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert 'name="run_retention_days" value="90"' in page
    assert 'name="output_limit_mb" value="10"' in page
    assert team_output_limit_bytes(team) == 10 * MB

    response = settings_post(owner_client, team, "30", "2")

    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.run_retention_days, team_output_limit_bytes(team)) == (30, 2 * MB)
    event = AuditEvent.objects.get(team=team, verb="team.retention_changed")
    assert event.data == {
        "from": {"run_retention_days": 90, "output_limit_mb": 10},
        "to": {"run_retention_days": 30, "output_limit_mb": 2},
    }
    page = owner_client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert "Finished runs are now kept for 30 days." in page
    assert "30 days after the run ended, then deleted" in page
    assert "at most 2 MB per server and run" in page


@pytest.mark.parametrize(
    ("days", "mb", "field", "message"),
    [
        ("0", "10", "run_retention_days", "Enter a whole number of days from 1 to 3650."),
        ("-5", "10", "run_retention_days", "Enter a whole number of days from 1 to 3650."),
        ("99999", "10", "run_retention_days", "Enter a whole number of days from 1 to 3650."),
        ("ninety", "10", "run_retention_days", "Enter a whole number of days from 1 to 3650."),
        ("", "10", "run_retention_days", "Enter a whole number of days from 1 to 3650."),
        ("2.5", "10", "run_retention_days", "Enter a whole number of days from 1 to 3650."),
        ("30", "0", "output_limit_mb", "Enter a whole number of MB from 1 to 100."),
        ("30", "5000", "output_limit_mb", "Enter a whole number of MB from 1 to 100."),
        ("30", "lots", "output_limit_mb", "Enter a whole number of MB from 1 to 100."),
    ],
)
def test_bad_input_is_refused_next_to_its_field_and_what_was_typed_stays(
    owner_client: Client, team: Team, days: str, mb: str, field: str, message: str
) -> None:
    response = settings_post(owner_client, team, days, mb)

    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'id="id_{field}_error"' in page or 'aria-invalid="true"' in page
    typed = days if field == "run_retention_days" else mb
    assert f'name="{field}" value="{typed}"' in page or typed == ""
    team.refresh_from_db()
    assert (team.run_retention_days, team.output_limit_bytes) == (90, None)
    assert not AuditEvent.objects.filter(verb="team.retention_changed").exists()


def test_only_owners_and_admins_change_it(team: Team, make_member: Any) -> None:
    admin, operator = make_member(Role.ADMIN), make_member(Role.OPERATOR)

    services.team_retention_set(team=team, actor=admin, run_retention_days=7, output_limit_mb=1)
    with pytest.raises(NotAllowed, match="Only team owners and admins"):
        services.team_retention_set(
            team=team, actor=operator, run_retention_days=3650, output_limit_mb=1
        )
    with pytest.raises(ServiceError, match=r"Keep runs for 1 to 3650 days\."):
        services.team_retention_set(team=team, actor=admin, run_retention_days=0, output_limit_mb=1)

    team.refresh_from_db()
    assert team.run_retention_days == 7


def test_the_what_we_keep_list_comes_from_the_data_map_with_the_teams_period(
    team: Team,
) -> None:
    team.run_retention_days = 1
    rows = {row.title: row for row in team_retention_rows(team=team)}

    assert rows["Runs"].period.startswith("1 day after the run ended")
    assert rows["Run output"].setting == "run history period (days)"
    assert "at most" in rows["Run output"].note
    assert rows["Servers"].period == "while the team exists; deleted with the team"
    team_content = {d.title for d in DATA_MAP if d.team is not None and d.fields}
    assert set(rows) == team_content


def test_a_run_uses_the_teams_output_limit(team: Team, user: Any, settings: Any) -> None:
    from pipetower.actions import engine

    settings.ACTIONS_OUTPUT_LIMIT_BYTES = 10 * MB
    run = run_ended(team, 0)
    assert engine._load(run.pk, [], "test-worker").output_limit == 10 * MB  # type: ignore[union-attr]
    services.team_retention_set(team=team, actor=user, run_retention_days=90, output_limit_mb=3)

    assert engine._load(run.pk, [], "test-worker").output_limit == 3 * MB  # type: ignore[union-attr]
