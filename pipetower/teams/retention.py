"""What a team keeps, and for how long: its run history and its output per server.

Two team settings, changed by owners and admins (`services.team_retention_set`):

- `Team.run_retention_days`: a finished run, with its results per server and
  their output, is deleted that many days after it ended. `runs_expired_purge`
  does it, run by the scheduler every hour on the housekeeping queue, in
  batches, never touching a run that is still queued or running.
- `Team.output_limit_bytes`: the output kept per server of a run (the rest is
  discarded with a marker); unset means the installation's default.

The team settings page lists "what we keep and for how long" from the data map
(`privacy.datamap`): models whose `retention_setting` names a team field take
their period from this team's value, so there is no second list to keep true.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from pipetower.teams.models import Team

logger = logging.getLogger(__name__)

RUN_RETENTION_DEFAULT_DAYS = 90
RUN_RETENTION_MIN_DAYS = 1
RUN_RETENTION_MAX_DAYS = 3650
OUTPUT_LIMIT_MIN_MB = 1
OUTPUT_LIMIT_MAX_MB = 100
MB = 1024 * 1024
# Runs deleted per transaction: short transactions, so runs starting meanwhile never wait long.
PURGE_BATCH = 200


def output_limit_default_bytes() -> int:
    """The installation's output limit per server (PIPETOWER_OUTPUT_LIMIT_BYTES)."""
    from pipetower.actions import conf

    return conf.output_limit_bytes()


def team_output_limit_bytes(team: Team) -> int:
    """The output Pipetower keeps per server of one of `team`'s runs."""
    return team.output_limit_bytes or output_limit_default_bytes()


def team_output_limit_mb(team: Team) -> int:
    """The same, in whole megabytes (as the settings form shows it), at least 1."""
    return max(1, round(team_output_limit_bytes(team) / MB))


# --- the purge ---------------------------------------------------------------


@dataclass
class PurgeCounts:
    runs: int = 0
    targets: int = 0
    chunks: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"runs": self.runs, "targets": self.targets, "chunks": self.chunks}


def _purge_batch(run_ids: list[int], counts: PurgeCounts) -> None:
    from pipetower.actions.models import OutputChunk, Run, RunStatus, RunTarget

    finished = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    with transaction.atomic():
        # Re-read under the lock: only runs still finished go (a run never leaves a
        # final state, but the check costs nothing and says what is meant).
        ids = list(
            Run.objects.select_for_update()
            .filter(pk__in=run_ids, status__in=finished, finished_at__isnull=False)
            .values_list("pk", flat=True)
        )
        if not ids:
            return
        # Children first, each one statement, so deleting a run loads no rows.
        counts.chunks += OutputChunk.objects.filter(run_target__run_id__in=ids).delete()[0]
        counts.targets += RunTarget.objects.filter(run_id__in=ids).delete()[0]
        deleted = Run.objects.filter(pk__in=ids).delete()[1]
        counts.runs += deleted.get(Run._meta.label, 0)


def runs_expired_purge(*, now: datetime | None = None, batch: int = PURGE_BATCH) -> PurgeCounts:
    """Delete every team's runs that finished longer ago than its run history period,
    with their results per server and output; how many of each went.

    One query per distinct retention period (not per team), then batches of
    `batch` runs, each in its own transaction. Runs still queued or running stay
    whatever their age.
    """
    from pipetower.actions.models import Run, RunStatus

    now = now or timezone.now()
    finished = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    counts = PurgeCounts()
    periods = sorted(set(Team.objects.values_list("run_retention_days", flat=True)))
    for days in periods:
        cutoff = now - timedelta(days=max(days, RUN_RETENTION_MIN_DAYS))
        expired = Run.objects.filter(
            team__run_retention_days=days, status__in=finished, finished_at__lt=cutoff
        ).order_by("pk")
        last = 0
        while True:
            ids = list(expired.filter(pk__gt=last).values_list("pk", flat=True)[:batch])
            if not ids:
                break
            _purge_batch(ids, counts)
            last = ids[-1]
    if counts.runs:
        from pipetower.privacy.deletion import sqlite_wal_truncate

        sqlite_wal_truncate()  # deleted output does not linger in SQLite's write-ahead log
        logger.info(
            "Run history purge: %d runs, %d results per server and %d output chunks deleted",
            counts.runs,
            counts.targets,
            counts.chunks,
        )
    return counts


# --- "what we keep and for how long", from the data map ---------------------


@dataclass(frozen=True)
class KeptRow:
    title: str
    period: str
    setting: str  # the team setting that decides the period, "" when none does
    note: str = ""


def team_retention_rows(*, team: Team) -> list[KeptRow]:
    """Each kind of team content the data map declares, with how long it is kept,
    the team's own setting applied where one decides it."""
    from pipetower.privacy.datamap import DATA_MAP

    rows: list[KeptRow] = []
    for decl in DATA_MAP:
        if decl.team is None or not decl.fields:
            continue
        if decl.retention_setting:
            value = getattr(team, decl.retention_setting)
            setting = apps.get_model("teams", "Team")._meta.get_field(decl.retention_setting)
            label = str(getattr(setting, "verbose_name", decl.retention_setting))
            period = (
                f"{value} day{'s' if value != 1 else ''} after the run ended, then deleted; "
                "deleted with the team in any case"
            )
            note = ""
            if decl.model == "actions.OutputChunk":
                note = f"at most {team_output_limit_mb(team)} MB per server and run"
            rows.append(KeptRow(decl.title, period, label, note))
            continue
        periods = list(dict.fromkeys(f.retention for f in decl.fields.values()))
        rows.append(KeptRow(decl.title, "; ".join(periods), ""))
    return rows
