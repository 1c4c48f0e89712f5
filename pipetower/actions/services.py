"""Every write to actions and runs. Views, the API, tasks and the engine call these.

Role rules: viewers read, operators start/cancel/re-run, admins manage actions.
Each service checks the actor's role itself (an `actor` of None is the system,
e.g. the reaper) and writes its audit event.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.http import HttpRequest
from django.utils import timezone

from pipetower.actions import conf, params
from pipetower.actions.models import (
    ACTIVE_STATUSES,
    FAILED_STATUSES,
    Action,
    OutputChunk,
    Run,
    RunStatus,
    RunTarget,
    TargetStatus,
    run_status_from_targets,
)
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue
from pipetower.servers.models import Server, Tag
from pipetower.teams.models import Membership, Role, Team

RUN_AS_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_CONCURRENCY = 1000


class TargetNotFound(ServiceError):
    """A server asked for by id is not in this team (or does not exist): 404, as for reads."""

    code = "not_found"
    status = 404


# --- roles ---------------------------------------------------------------------


def _require_role(*, team: Team, actor: Any, role: Role, doing: str) -> None:
    if actor is None:
        return  # the system (reaper, schedules)
    membership = Membership.objects.filter(team=team, user=actor).first()
    if membership is None:
        raise NotAllowed("You are not a member of this team.")
    if not membership.role_enum.at_least(role):
        raise NotAllowed(
            f"Only {role.label.lower()}s and above can {doing}. "
            f"Your role is {membership.role_enum.label}."
        )


# --- actions -------------------------------------------------------------------


def _clean_fields(*, team: Team, fields: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = str(fields["name"] or "").strip()
        if not name:
            raise ServiceError("Give the action a name.", field="name")
        if len(name) > 100:
            raise ServiceError("The name is too long (at most 100 characters).", field="name")
        clean["name"] = name
    if "description" in fields:
        clean["description"] = str(fields["description"] or "").strip()
    if "script" in fields:
        script = str(fields["script"] or "").replace("\r\n", "\n")
        if not script.strip():
            raise ServiceError("The script is empty.", field="script")
        size = len(script.encode())
        limit = conf.script_max_bytes()
        if size > limit:
            raise ServiceError(
                f"The script is {size:,} bytes; the limit is {limit:,} bytes. "
                "Keep large files on the servers and call them from a short script.",
                field="script",
            )
        if "\x00" in script:
            raise ServiceError("The script contains a NUL character.", field="script")
        clean["script"] = script
    if "run_as" in fields:
        run_as = str(fields["run_as"] or "").strip()
        if run_as and not RUN_AS_RE.match(run_as):
            raise ServiceError(
                f"{run_as[:40]!r} is not a valid user name for run-as "
                "(lower-case letters, digits, _ . -; at most 32).",
                field="run_as",
            )
        clean["run_as"] = run_as
    if "timeout_seconds" in fields:
        timeout = _positive_int(fields["timeout_seconds"], field="timeout_seconds", label="Timeout")
        if timeout > MAX_TIMEOUT_SECONDS:
            raise ServiceError("The timeout can be at most 7 days.", field="timeout_seconds")
        clean["timeout_seconds"] = timeout
    if "concurrency" in fields:
        concurrency = _positive_int(fields["concurrency"], field="concurrency", label="Concurrency")
        if concurrency > MAX_CONCURRENCY:
            raise ServiceError(
                f"Concurrency can be at most {MAX_CONCURRENCY}.", field="concurrency"
            )
        clean["concurrency"] = concurrency
    if "failure_limit" in fields:
        value = fields["failure_limit"]
        clean["failure_limit"] = (
            None
            if value in (None, "", 0)
            else _positive_int(value, field="failure_limit", label="Failure limit")
        )
    if "parameters" in fields:
        specs, secrets = params.definitions_clean(fields["parameters"] or [])
        clean["parameters"] = specs
        clean["secret_defaults"] = json.dumps(secrets) if secrets else ""
    if "default_tags" in fields:
        names = _tag_names(fields["default_tags"] or [])
        existing = set(Tag.objects.filter(team=team, name__in=names).values_list("name", flat=True))
        missing = [n for n in names if n not in existing]
        if missing:
            raise ServiceError(f"No tag named {missing[0]!r} in this team.", field="default_tags")
        clean["default_tags"] = names
    if "default_server_ids" in fields:
        clean["default_servers"] = _servers_by_id(
            team=team, server_ids=fields["default_server_ids"]
        )
    return clean


def _positive_int(value: Any, *, field: str, label: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ServiceError(f"{label} must be a whole number.", field=field) from None
    if isinstance(value, bool) or number < 1:
        raise ServiceError(f"{label} must be at least 1.", field=field)
    return number


def _tag_names(tags: Iterable[str]) -> list[str]:
    names = []
    for tag in tags:
        name = str(tag).strip().lower()
        if name.startswith("tag:"):
            name = name[4:]
        if name and name not in names:
            names.append(name)
    return names


def _servers_by_id(*, team: Team, server_ids: Iterable[Any]) -> list[Server]:
    ids = []
    for raw in server_ids or []:
        try:
            ids.append(int(raw))
        except (TypeError, ValueError):
            raise TargetNotFound(f"Server {str(raw)[:40]!r} was not found in this team.") from None
    found = {s.pk: s for s in Server.objects.filter(team=team, pk__in=ids)}
    for server_id in ids:
        if server_id not in found:
            raise TargetNotFound(f"Server {server_id} was not found in this team.")
    return [found[i] for i in dict.fromkeys(ids)]


def _audit_data(action: Action) -> dict[str, Any]:
    return {
        "name": action.name,
        "run_as": action.run_as,
        "timeout_seconds": action.timeout_seconds,
        "concurrency": action.concurrency,
        "failure_limit": action.failure_limit,
        "parameters": [p["name"] for p in action.parameters],
    }


def action_create(
    *,
    team: Team,
    actor: Any,
    name: str,
    script: str,
    description: str = "",
    parameters: Sequence[Mapping[str, Any]] = (),
    run_as: str = "",
    timeout_seconds: int = 300,
    concurrency: int = 10,
    failure_limit: int | None = None,
    default_server_ids: Sequence[int] = (),
    default_tags: Sequence[str] = (),
    request: HttpRequest | None = None,
) -> Action:
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="create actions")
    clean = _clean_fields(
        team=team,
        fields={
            "name": name,
            "script": script,
            "description": description,
            "parameters": parameters,
            "run_as": run_as,
            "timeout_seconds": timeout_seconds,
            "concurrency": concurrency,
            "failure_limit": failure_limit,
            "default_server_ids": default_server_ids,
            "default_tags": default_tags,
        },
    )
    servers = clean.pop("default_servers")
    try:
        with transaction.atomic():
            action = Action(team=team, created_by=actor, **clean)
            action.save()
            action.default_servers.set(servers)
    except IntegrityError:
        raise Conflict(f"An action named {clean['name']!r} already exists.", field="name") from None
    audit_record(
        actor=actor,
        team=team,
        verb="action.created",
        target=action,
        request=request,
        data=_audit_data(action),
    )
    return action


def action_update(
    *,
    action: Action,
    actor: Any,
    request: HttpRequest | None = None,
    **changes: Any,
) -> Action:
    """Change any of action_create's fields (same names); the rest stay as they are."""
    _require_role(team=action.team, actor=actor, role=Role.ADMIN, doing="change actions")
    allowed = {
        "name",
        "script",
        "description",
        "parameters",
        "run_as",
        "timeout_seconds",
        "concurrency",
        "failure_limit",
        "default_server_ids",
        "default_tags",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ServiceError(f"Unknown field {sorted(unknown)[0]}.")
    clean = _clean_fields(team=action.team, fields=changes)
    servers = clean.pop("default_servers", None)
    changed = sorted(
        k for k, v in clean.items() if k != "secret_defaults" and getattr(action, k) != v
    )
    if "secret_defaults" in clean and clean["secret_defaults"] != action.secret_defaults:
        changed.append("secret defaults")
    for key, value in clean.items():
        setattr(action, key, value)
    try:
        with transaction.atomic():
            action.save()
            if servers is not None:
                action.default_servers.set(servers)
                changed.append("default servers")
    except IntegrityError:
        raise Conflict(f"An action named {action.name!r} already exists.", field="name") from None
    audit_record(
        actor=actor,
        team=action.team,
        verb="action.updated",
        target=action,
        request=request,
        data={**_audit_data(action), "changed": changed},
    )
    return action


def action_delete(*, action: Action, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete the action; its runs stay in the history (they keep a snapshot)."""
    _require_role(team=action.team, actor=actor, role=Role.ADMIN, doing="delete actions")
    audit_record(
        actor=actor,
        team=action.team,
        verb="action.deleted",
        target=action,
        request=request,
        data=_audit_data(action),
    )
    action.delete()


# --- runs ----------------------------------------------------------------------


def _resolve_targets(*, team: Team, server_ids: Sequence[Any], tags: Sequence[str]) -> list[Server]:
    servers = _servers_by_id(team=team, server_ids=server_ids)
    names = _tag_names(tags)
    if names:
        known = set(Tag.objects.filter(team=team, name__in=names).values_list("name", flat=True))
        for name in names:
            if name not in known:
                raise ServiceError(f"No tag named {name!r} in this team.", field="targets")
        tagged = list(
            Server.objects.filter(team=team, tags__name__in=names).distinct().order_by("name")
        )
        if not tagged and not servers:
            raise ServiceError(
                "No server has the tag " + ", ".join(repr(n) for n in names) + ".",
                field="targets",
            )
        seen = {s.pk for s in servers}
        servers += [s for s in tagged if s.pk not in seen]
    if not servers:
        raise ServiceError("Choose at least one server or tag to run on.", field="targets")
    return servers


def _refuse_unpinned(*, team: Team, servers: Sequence[Server]) -> None:
    from pipetower.servers.models import TeamServerSettings

    policy = TeamServerSettings.objects.filter(team=team).first()
    if policy is not None and policy.trust_on_first_use:
        return
    unpinned = [s.name for s in servers if not s.is_pinned]
    if unpinned:
        shown = ", ".join(unpinned[:5]) + (
            f" and {len(unpinned) - 5} more" if len(unpinned) > 5 else ""
        )
        raise ServiceError(
            f"No host key is pinned for {shown}. Check the connection on the server's page "
            "and confirm its fingerprint first, so Pipetower knows it is talking to the "
            "right machine.",
            field="targets",
            code="host_key_not_pinned",
        )


def run_start(
    *,
    action: Action,
    actor: Any,
    server_ids: Sequence[Any] = (),
    tags: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    trigger: str = Run.Trigger.WEB,
    rerun_of: Run | None = None,
    request: HttpRequest | None = None,
) -> Run:
    """Start `action` on the chosen servers (ids and/or tags) with parameter `values`.

    Without targets, the action's default targets are used. The run's shards are
    queued for the workers once the transaction commits.
    """
    team = action.team
    _require_role(team=team, actor=actor, role=Role.OPERATOR, doing="run actions")
    if not server_ids and not tags:
        server_ids = list(action.default_servers.values_list("pk", flat=True))
        tags = list(action.default_tags)
    servers = _resolve_targets(team=team, server_ids=server_ids, tags=tags)
    _refuse_unpinned(team=team, servers=servers)
    plain, secrets = params.values_resolve(
        action.parameters, action.secret_default_values(), values or {}
    )
    size = conf.shard_size()
    shard_count = math.ceil(len(servers) / size)
    with transaction.atomic():
        run = Run(
            team=team,
            action=action,
            action_name=action.name,
            script=action.script,
            parameters=action.parameters,
            params=plain,
            secret_params=json.dumps(secrets) if secrets else "",
            run_as=action.run_as,
            timeout_seconds=action.timeout_seconds,
            concurrency=action.concurrency,
            failure_limit=action.failure_limit,
            trigger=trigger,
            started_by=actor,
            rerun_of=rerun_of,
            shard_count=shard_count,
        )
        run.save()
        RunTarget.objects.bulk_create(
            [
                RunTarget(run=run, server=server, server_name=server.name, shard=index // size)
                for index, server in enumerate(servers)
            ]
        )
        audit_record(
            actor=actor,
            team=team,
            verb="run.started",
            target=run,
            request=request,
            data={
                "action": action.name,
                "targets": len(servers),
                "params": run.masked_params(),
                "rerun_of": rerun_of.pk if rerun_of else None,
            },
        )
        run_id = run.pk
        _enqueue_shards(run_id)  # through the outbox: in this transaction
    return run


def run_subject(run_id: int) -> str:
    """How the outbox names a run's shard tasks (see core.outbox.outbox_waiting)."""
    return f"actions.run:{run_id}"


def _enqueue_shards(run_id: int) -> None:
    from pipetower.actions.tasks import run_shard_execute_task

    shards: dict[int, list[int]] = {}
    for target_id, shard in (
        RunTarget.objects.filter(run_id=run_id, status=TargetStatus.QUEUED)
        .order_by("id")
        .values_list("id", "shard")
    ):
        shards.setdefault(shard, []).append(target_id)
    for target_ids in shards.values():
        outbox_enqueue(run_shard_execute_task, run_id, target_ids, subject=run_subject(run_id))


def run_cancel(*, run: Run, actor: Any, request: HttpRequest | None = None) -> Run:
    """Stop a run: queued targets end now; the worker signals running scripts."""
    _require_role(team=run.team, actor=actor, role=Role.OPERATOR, doing="cancel runs")
    run.refresh_from_db()
    if run.is_finished:
        raise Conflict(f"This run has already finished ({run.get_status_display().lower()}).")
    now = timezone.now()
    with transaction.atomic():
        Run.objects.filter(pk=run.pk, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now, cancelled_by=actor
        )
        targets_finish_queued(
            run_id=run.pk,
            status=TargetStatus.CANCELLED,
            error=f"Cancelled by {getattr(actor, 'email', 'the system')} before it started.",
        )
        audit_record(actor=actor, team=run.team, verb="run.cancelled", target=run, request=request)
    run_status_refresh(run_id=run.pk)
    run.refresh_from_db()
    return run


def run_rerun_failed(*, run: Run, actor: Any, request: HttpRequest | None = None) -> Run:
    """A new run of the same action and parameters, on only the targets that failed."""
    _require_role(team=run.team, actor=actor, role=Role.OPERATOR, doing="run actions")
    if not run.is_finished:
        raise Conflict("This run is still going. Re-run its failed targets once it has finished.")
    if run.action is None:
        raise Gone("The action of this run has been deleted, so it cannot be run again.")
    failed = run.targets.filter(status__in=FAILED_STATUSES)
    if not failed.exists():
        raise Conflict("No target failed in this run, so there is nothing to re-run.")
    server_ids = [sid for sid in failed.values_list("server_id", flat=True) if sid is not None]
    if not server_ids:
        raise Gone("The servers that failed in this run have all been deleted.")
    values: dict[str, Any] = {**run.params, **run.secret_param_values()}
    return run_start(
        action=run.action,
        actor=actor,
        server_ids=server_ids,
        values=values,
        trigger=Run.Trigger.RERUN,
        rerun_of=run,
        request=request,
    )


# --- run state (written by the engine and the reaper) --------------------------


def _bump(run_id: int, target_ids: Sequence[int]) -> None:
    """Give the changed targets a new run revision (inside the caller's transaction)."""
    Run.objects.filter(pk=run_id).update(revision=F("revision") + 1)
    revision = Run.objects.values_list("revision", flat=True).get(pk=run_id)
    RunTarget.objects.filter(pk__in=target_ids).update(revision=revision)


def run_status_refresh(*, run_id: int) -> str:
    """Derive the run's status from its targets' and store it (with the finish time)."""
    counts = Counter(
        dict(
            RunTarget.objects.filter(run_id=run_id)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    )
    status = run_status_from_targets(counts)
    finished = status not in (RunStatus.QUEUED, RunStatus.RUNNING)
    with transaction.atomic():
        Run.objects.filter(pk=run_id).exclude(status=status).update(status=status)
        if finished:
            Run.objects.filter(pk=run_id, finished_at__isnull=True).update(
                finished_at=timezone.now()
            )
        Run.objects.filter(pk=run_id).update(revision=F("revision") + 1)
    return status


def targets_finish_queued(*, run_id: int, status: str, error: str) -> int:
    """End every still-queued target of the run (cancel, failure limit)."""
    ids = list(
        RunTarget.objects.filter(run_id=run_id, status=TargetStatus.QUEUED).values_list(
            "id", flat=True
        )
    )
    if not ids:
        return 0
    with transaction.atomic():
        count = RunTarget.objects.filter(pk__in=ids, status=TargetStatus.QUEUED).update(
            status=status, error=error, finished_at=timezone.now()
        )
        _bump(run_id, ids)
    return count


def run_target_claim(*, target_id: int, worker: str) -> bool:
    """Queued → connecting, for exactly one worker. False if it was cancelled or taken."""
    now = timezone.now()
    with transaction.atomic():
        claimed = RunTarget.objects.filter(pk=target_id, status=TargetStatus.QUEUED).update(
            status=TargetStatus.CONNECTING, heartbeat_at=now, worker=worker[:255]
        )
        if claimed:
            run_id = RunTarget.objects.values_list("run_id", flat=True).get(pk=target_id)
            Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING)
            _bump(run_id, [target_id])
    return bool(claimed)


def run_target_running(*, target_id: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = RunTarget.objects.filter(pk=target_id, status=TargetStatus.CONNECTING).update(
            status=TargetStatus.RUNNING, started_at=now, heartbeat_at=now
        )
        if updated:
            run_id = RunTarget.objects.values_list("run_id", flat=True).get(pk=target_id)
            _bump(run_id, [target_id])


def run_target_finish(
    *,
    target_id: int,
    status: str,
    exit_code: int | None = None,
    error: str = "",
    chunks: Sequence[tuple[str, str]] = (),
    output_bytes: int | None = None,
    truncated: bool | None = None,
) -> bool:
    """End a target (with its last output). A target already ended elsewhere
    (reaped as worker_lost, cancelled while queued) keeps that ending."""
    now = timezone.now()
    with transaction.atomic():
        if chunks:
            output_chunks_store(
                target_id=target_id, chunks=chunks, output_bytes=output_bytes, truncated=truncated
            )
        target = RunTarget.objects.select_for_update().get(pk=target_id)
        if target.status not in ACTIVE_STATUSES:
            return False
        target.status = status
        target.exit_code = exit_code
        target.error = error[:10_000]
        target.finished_at = now
        if target.started_at is None:
            target.started_at = now
        target.save(update_fields=["status", "exit_code", "error", "finished_at", "started_at"])
        _bump(target.run_id, [target_id])
        run = Run.objects.only("failure_limit").get(pk=target.run_id)
    if status in FAILED_STATUSES and run.failure_limit:
        failures = RunTarget.objects.filter(
            run_id=target.run_id, status__in=FAILED_STATUSES
        ).count()
        if failures >= run.failure_limit:
            targets_finish_queued(
                run_id=target.run_id,
                status=TargetStatus.CANCELLED,
                error=f"Skipped: the run stopped after {failures} failed targets "
                f"(limit {run.failure_limit}).",
            )
    run_status_refresh(run_id=target.run_id)
    return True


def output_chunks_store(
    *,
    target_id: int,
    chunks: Sequence[tuple[str, str]],
    output_bytes: int | None = None,
    truncated: bool | None = None,
) -> int:
    """Append (stream, text) chunks to a target's output with the next sequence numbers."""
    if not chunks:
        return 0
    now = timezone.now()
    with transaction.atomic():
        last = (
            RunTarget.objects.select_for_update()
            .values_list("last_seq", flat=True)
            .get(pk=target_id)
        )
        OutputChunk.objects.bulk_create(
            [
                OutputChunk(run_target_id=target_id, seq=last + i, stream=s, data=d, created_at=now)
                for i, (s, d) in enumerate(chunks, start=1)
            ]
        )
        fields: dict[str, Any] = {"last_seq": last + len(chunks), "heartbeat_at": now}
        if output_bytes is not None:
            fields["output_bytes"] = output_bytes
        if truncated is not None:
            fields["truncated"] = truncated
        RunTarget.objects.filter(pk=target_id).update(**fields)
    return last + len(chunks)


def run_targets_heartbeat(*, target_ids: Sequence[int]) -> None:
    RunTarget.objects.filter(pk__in=target_ids, status__in=ACTIVE_STATUSES).update(
        heartbeat_at=timezone.now()
    )


def run_cancel_requested(*, run_id: int) -> bool:
    return Run.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists()


def run_targets_reap(*, now: datetime | None = None, stale_after: timedelta | None = None) -> int:
    """End targets whose worker stopped reporting as worker_lost (output so far is kept)."""
    now = now or timezone.now()
    cutoff = now - (stale_after or conf.worker_lost_after())
    stale = RunTarget.objects.filter(status__in=ACTIVE_STATUSES).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    by_run: dict[int, list[int]] = {}
    for target_id, run_id in stale.values_list("id", "run_id"):
        by_run.setdefault(run_id, []).append(target_id)
    for run_id, ids in by_run.items():
        with transaction.atomic():
            RunTarget.objects.filter(pk__in=ids, status__in=ACTIVE_STATUSES).update(
                status=TargetStatus.WORKER_LOST,
                finished_at=now,
                error="The worker running this target stopped responding "
                f"(no heartbeat since {cutoff:%H:%M:%S} UTC). Output received until then is kept; "
                "whether the script finished on the server is unknown.",
            )
            _bump(run_id, ids)
            run = Run.objects.select_related("team").get(pk=run_id)
            audit_record(
                actor=None,
                team=run.team,
                verb="run.targets_lost",
                target=run,
                data={"targets": len(ids)},
            )
        run_status_refresh(run_id=run_id)
    return sum(len(ids) for ids in by_run.values())
