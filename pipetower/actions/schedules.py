"""Schedules: every write to them, the reads pages and the API share, and the tick.

Who may: whoever may run the action (operators and above) creates, changes,
enables, disables and deletes its schedules; viewers read them.

What a schedule runs is checked by the same `services.run_request_check` as a
manual run, when it is saved and again when it fires (through `run_start`): no
targets or a missing required value is refused, never filled in.

The tick (`schedules_tick`, sent by the scheduler every few seconds) starts the
due ones. Each due time is claimed by moving `next_run_at` forward with a
conditional update inside the transaction that starts the run, so with several
schedulers or workers ticking at once a time starts at most one run:
- a run of the schedule still going: the time is skipped (recorded);
- times missed while Pipetower was down (later than the grace period): one
  catch-up run if the schedule asks for it, otherwise none (recorded);
- a refusal when it fires (a server deleted since, a new required parameter):
  recorded on the schedule and in the activity log.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from pipetower.actions import conf, cron, services
from pipetower.actions.models import UNFINISHED_RUN_STATUSES, Action, Run, Schedule
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.teams.models import Role, Team

MISSED_COUNT_LIMIT = 1000  # times counted when reporting how many were missed


# --- reads ---------------------------------------------------------------------------


def schedules_for_team(*, team: Team, action: Action | None = None) -> QuerySet[Schedule]:
    schedules = Schedule.objects.filter(team=team).select_related("action", "last_run")
    if action is not None:
        schedules = schedules.filter(action=action)
    return schedules.order_by("action__name", "name", "id")


def schedule_get(*, team: Team, schedule_id: Any) -> Schedule:
    """The team's schedule, or 404 for a missing one and another team's alike."""
    try:
        number = int(schedule_id)
    except (TypeError, ValueError):
        raise Http404("No such schedule.") from None
    schedule = (
        Schedule.objects.filter(team=team, pk=number).select_related("action", "last_run").first()
    )
    if schedule is None:
        raise Http404("No such schedule.")
    return schedule


def schedule_refusal(*, team: Team, user: Any) -> NotAllowed | None:
    """Why `user` may not create, change or delete the team's schedules (None: they may).

    Who may run actions may schedule them. The pages ask it to decide which
    controls to show; the services raise it."""
    return services.role_refusal(
        team=team,
        actor=user,
        role=Role.OPERATOR,
        doing="manage schedules (the people who can run actions)",
    )


def schedule_preview(*, cron_expression: Any, timezone_name: Any, count: int = 5) -> list[datetime]:
    """The next `count` times of the expression in the zone, or a ServiceError."""
    expression = cron.expression_clean(cron_expression)
    zone = cron.zone_clean(timezone_name)
    return cron.next_times(expression, zone, timezone.now(), count)


def schedule_next_times(*, schedule: Schedule, count: int = 5) -> list[datetime]:
    if not schedule.enabled:
        return []
    try:
        zone = cron.zone_clean(schedule.timezone)
        return cron.next_times(schedule.cron, zone, timezone.now(), count)
    except ServiceError:
        return []


# --- writes --------------------------------------------------------------------------


def _name_clean(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise ServiceError("Give the schedule a name.", field="name")
    if len(name) > 100:
        raise ServiceError("The name is too long (at most 100 characters).", field="name")
    return name


def _audit_data(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "action": schedule.action.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "catch_up": schedule.catch_up,
        "tags": list(schedule.tags),
        "params": {
            **schedule.params,
            **dict.fromkeys(schedule.secret_param_values(), "••••••"),
        },
    }


def _check_request(
    *,
    action: Action,
    server_ids: Sequence[Any],
    tags: Sequence[str],
    values: Mapping[str, Any],
    default_params: bool | Collection[str],
) -> services.RunRequest:
    return services.run_request_check(
        action=action,
        server_ids=server_ids,
        tags=tags,
        values=values,
        default_params=default_params,
    )


def schedule_create(
    *,
    action: Action,
    actor: Any,
    name: str,
    cron_expression: str,
    timezone_name: str = "UTC",
    server_ids: Sequence[Any] = (),
    tags: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    default_params: bool | Collection[str] = False,
    enabled: bool = True,
    catch_up: bool = True,
    request: HttpRequest | None = None,
) -> Schedule:
    """A schedule that runs `action` on exactly these targets with exactly these
    values (checked now as a manual run is), at the times of `cron_expression`."""
    team = action.team
    if refusal := schedule_refusal(team=team, user=actor):
        raise refusal
    name = _name_clean(name)
    expression = cron.expression_clean(cron_expression)
    zone = cron.zone_clean(timezone_name)
    now = timezone.now()
    next_run_at = cron.next_time(expression, zone, now)
    checked = _check_request(
        action=action,
        server_ids=server_ids,
        tags=tags,
        values=values or {},
        default_params=default_params,
    )
    tag_names = services._tag_names(tags)
    try:
        with transaction.atomic():
            schedule = Schedule(
                team=team,
                action=action,
                name=name,
                cron=expression,
                timezone=zone.key,
                enabled=bool(enabled),
                catch_up=bool(catch_up),
                tags=tag_names,
                params=checked.plain,
                secret_params=json.dumps(checked.secrets) if checked.secrets else "",
                next_run_at=next_run_at,
                created_by=actor,
            )
            schedule.save()
            schedule.servers.set(_explicit_servers(checked, server_ids))
            audit_record(
                actor=actor,
                team=team,
                verb="schedule.created",
                target=schedule,
                request=request,
                data=_audit_data(schedule),
            )
    except IntegrityError:
        raise Conflict(
            f"This action already has a schedule named {name!r}.", field="name"
        ) from None
    return schedule


def _explicit_servers(checked: services.RunRequest, server_ids: Sequence[Any]) -> list[Any]:
    """The servers chosen by id (tags are kept as tags, resolved each time it fires)."""
    wanted = {int(i) for i in server_ids}
    return [s for s in checked.servers if s.pk in wanted]


UPDATABLE = frozenset(
    {
        "name",
        "cron_expression",
        "timezone_name",
        "server_ids",
        "tags",
        "values",
        "default_params",
        "keep_secrets",
        "enabled",
        "catch_up",
    }
)


def schedule_update(
    *, schedule: Schedule, actor: Any, request: HttpRequest | None = None, **changes: Any
) -> Schedule:
    """Change any of schedule_create's fields; the rest stay as they are.

    `values` replaces the stored values as a whole (as a run form sends every
    value); `keep_secrets` names secret parameters whose stored value is kept
    when `values` leaves them out. A schedule that is (or stays) enabled is
    checked again as a manual run would be; disabling is always allowed. A new
    time, zone or enabling counts from now: no run for times already past.
    """
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ServiceError(f"Unknown field {sorted(unknown)[0]}.")
    with transaction.atomic():
        locked = (
            Schedule.objects.select_for_update()
            .select_related("action", "team")
            .filter(pk=schedule.pk)
        ).first()
        if locked is None:
            raise Conflict("This schedule has been deleted.")
        if refusal := schedule_refusal(team=locked.team, user=actor):
            raise refusal
        action = locked.action
        fields: dict[str, Any] = {}
        if "name" in changes:
            fields["name"] = _name_clean(changes["name"])
        expression = (
            cron.expression_clean(changes["cron_expression"])
            if "cron_expression" in changes
            else locked.cron
        )
        zone = cron.zone_clean(changes.get("timezone_name", locked.timezone))
        enabled = bool(changes.get("enabled", locked.enabled))
        if "catch_up" in changes:
            fields["catch_up"] = bool(changes["catch_up"])
        server_ids = (
            list(changes["server_ids"])
            if "server_ids" in changes
            else list(locked.servers.values_list("pk", flat=True))
        )
        tags = list(changes["tags"]) if "tags" in changes else list(locked.tags)
        stored_secrets = locked.secret_param_values()
        if "values" in changes:
            values = dict(changes["values"] or {})
            for name in changes.get("keep_secrets") or ():
                if name not in values and name in stored_secrets:
                    values[name] = stored_secrets[name]
        else:
            values = {**locked.params, **stored_secrets}
        default_params = changes.get("default_params", False)
        servers = None
        what_runs = {"server_ids", "tags", "values", "default_params", "keep_secrets"}
        if enabled or what_runs & set(changes):
            # Checked as a manual run is; only switching a schedule off needs no check.
            checked = _check_request(
                action=action,
                server_ids=server_ids,
                tags=tags,
                values=values,
                default_params=default_params,
            )
            fields["params"] = checked.plain
            fields["secret_params"] = json.dumps(checked.secrets) if checked.secrets else ""
            servers = _explicit_servers(checked, server_ids)
        timing_changed = (
            expression != locked.cron or zone.key != locked.timezone or enabled != locked.enabled
        )
        fields.update(
            cron=expression, timezone=zone.key, enabled=enabled, tags=services._tag_names(tags)
        )
        if timing_changed or locked.next_run_at is None:
            fields["next_run_at"] = cron.next_time(expression, zone, timezone.now())
        for key, value in fields.items():
            setattr(locked, key, value)
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise Conflict(
                f"This action already has a schedule named {locked.name!r}.", field="name"
            ) from None
        if servers is not None:
            locked.servers.set(servers)
        audit_record(
            actor=actor,
            team=locked.team,
            verb="schedule.updated",
            target=locked,
            request=request,
            data=_audit_data(locked),
        )
    return locked


def schedule_set_enabled(
    *, schedule: Schedule, actor: Any, enabled: bool, request: HttpRequest | None = None
) -> Schedule:
    return schedule_update(schedule=schedule, actor=actor, request=request, enabled=enabled)


def schedule_delete(*, schedule: Schedule, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete the schedule; the runs it started stay in the history, named."""
    with transaction.atomic():
        locked = (
            Schedule.objects.select_for_update()
            .select_related("action", "team")
            .filter(pk=schedule.pk)
            .first()
        )
        if locked is None:
            return
        if refusal := schedule_refusal(team=locked.team, user=actor):
            raise refusal
        audit_record(
            actor=actor,
            team=locked.team,
            verb="schedule.deleted",
            target=locked,
            request=request,
            data=_audit_data(locked),
        )
        locked.delete()


# --- the tick ------------------------------------------------------------------------


def schedules_tick(*, now: datetime | None = None) -> int:
    """Start the runs of every enabled schedule whose time has come. Returns how
    many runs started. Safe to run in several processes at once."""
    now = now or timezone.now()
    due = list(
        Schedule.objects.filter(enabled=True, next_run_at__lte=now)
        .order_by("next_run_at", "id")
        .values_list("pk", "next_run_at")[: conf.schedule_tick_batch()]
    )
    started = 0
    for schedule_id, slot in due:
        if (
            slot is not None
            and schedule_fire(schedule_id=schedule_id, slot=slot, now=now) is not None
        ):
            started += 1
    return started


def _record(
    schedule: Schedule, *, now: datetime, outcome: str, message: str, run: Run | None = None
) -> None:
    fields: dict[str, Any] = {
        "last_fired_at": now,
        "last_outcome": outcome,
        "last_message": message,
    }
    if run is not None:
        fields["last_run"] = run
    Schedule.objects.filter(pk=schedule.pk).update(**fields)
    verbs: dict[str, str] = {
        Schedule.Outcome.SKIPPED_OVERLAP: "schedule.skipped",
        Schedule.Outcome.MISSED: "schedule.missed",
        Schedule.Outcome.REFUSED: "schedule.refused",
    }
    if verb := verbs.get(outcome):
        audit_record(
            actor=None,
            team=schedule.team,
            verb=verb,
            target=schedule,
            data={"name": schedule.name, "action": schedule.action.name, "message": message},
        )


def _when(moment: datetime, zone_name: str) -> str:
    return moment.astimezone(cron.zone_for_display(zone_name)).strftime("%Y-%m-%d %H:%M %Z")


def schedule_fire(*, schedule_id: int, slot: datetime, now: datetime | None = None) -> Run | None:
    """Claim the due time `slot` of the schedule and act on it; the run started, or None.

    The claim is a conditional update (next_run_at still `slot`): of several
    processes firing the same time together exactly one wins; the others
    return None without doing anything.
    """
    now = now or timezone.now()
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_related("action", "team", "last_run")
            .filter(pk=schedule_id, enabled=True, next_run_at=slot)
            .first()
        )
        if schedule is None:
            return None
        try:
            zone = cron.zone_clean(schedule.timezone)
            due = [slot, *cron.slots_between(schedule.cron, zone, slot, now, MISSED_COUNT_LIMIT)]
            latest = due[-1]
            following = cron.next_time(schedule.cron, zone, max(now, latest))
        except ServiceError as exc:
            # Its zone or expression no longer works here (a tzdata update): it
            # stops until someone edits it, and says why.
            if Schedule.objects.filter(pk=schedule_id, next_run_at=slot).update(next_run_at=None):
                _record(
                    schedule,
                    now=now,
                    outcome=Schedule.Outcome.REFUSED,
                    message=f"{exc.message} The schedule stopped; edit it to start it again.",
                )
            return None
        claimed = Schedule.objects.filter(pk=schedule_id, enabled=True, next_run_at=slot).update(
            next_run_at=following
        )
        if claimed != 1:
            return None  # another scheduler took this time
        late = now - latest > conf.schedule_grace()
        missed = len(due) - (0 if late else 1)
        missed_text = (
            f"{missed}{'+' if len(due) > MISSED_COUNT_LIMIT else ''} time(s) missed while "
            f"Pipetower was not running (the last at {_when(latest, schedule.timezone)})"
        )
        if late and not schedule.catch_up:
            _record(
                schedule,
                now=now,
                outcome=Schedule.Outcome.MISSED,
                message=f"{missed_text}; catch-up is off, so nothing ran.",
            )
            return None
        previous = schedule.last_run
        if previous is not None:
            status = Run.objects.filter(pk=previous.pk).values_list("status", flat=True).first()
            if status in UNFINISHED_RUN_STATUSES:  # waiting for approval counts as going
                _record(
                    schedule,
                    now=now,
                    outcome=Schedule.Outcome.SKIPPED_OVERLAP,
                    message=f"Skipped the run due at {_when(latest, schedule.timezone)}: "
                    f"run #{previous.pk} of this schedule was still going.",
                )
                return None
        try:
            with transaction.atomic():
                run = services.run_start(
                    action=schedule.action,
                    actor=None,
                    server_ids=list(schedule.servers.values_list("pk", flat=True)),
                    tags=list(schedule.tags),
                    values={**schedule.params, **schedule.secret_param_values()},
                    trigger=Run.Trigger.SCHEDULE,
                    schedule=schedule,
                )
        except ServiceError as exc:
            _record(
                schedule,
                now=now,
                outcome=Schedule.Outcome.REFUSED,
                message=f"The run due at {_when(latest, schedule.timezone)} was not started: "
                f"{exc.message}",
            )
            return None
        if late:
            outcome, message = Schedule.Outcome.CAUGHT_UP, f"One catch-up run for {missed_text}."
        elif missed:
            outcome, message = Schedule.Outcome.STARTED, f"Started on time; {missed_text}."
        else:
            outcome, message = Schedule.Outcome.STARTED, ""
        _record(schedule, now=now, outcome=outcome, message=message, run=run)
        return run
