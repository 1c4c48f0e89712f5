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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.http import HttpRequest
from django.utils import timezone

from pipetower.actions import conf, params
from pipetower.actions.approvals import approval_request
from pipetower.actions.models import (
    ACTIVE_STATUSES,
    FAILED_STATUSES,
    UNFINISHED_RUN_STATUSES,
    Action,
    ActionVersion,
    OutputChunk,
    Run,
    RunStatus,
    RunTarget,
    Schedule,
    TargetStatus,
    Webhook,
    run_status_from_targets,
)
from pipetower.audit.services import audit_record
from pipetower.core.bulk import update_rows
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue
from pipetower.servers.models import Server, Tag
from pipetower.teams import permissions as team_permissions
from pipetower.teams.models import Membership, Role, Team

RUN_AS_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_CONCURRENCY = 1000
NO_TARGETS = "Choose at least one server or tag to run on."


class TargetNotFound(ServiceError):
    """A server asked for by id is not in this team (or does not exist): 404, as for reads."""

    code = "not_found"
    status = 404


class VersionNotFound(ServiceError):
    """No version of that number: 404, as for reads."""

    code = "not_found"
    status = 404


# --- roles ---------------------------------------------------------------------


def role_refusal(*, team: Team, actor: Any, role: Role, doing: str) -> NotAllowed | None:
    """Why `actor` may not `doing` in `team` (None: they may). Pages ask it to decide
    which controls to show; the services raise what it returns."""
    if actor is None:
        return None  # the system (reaper, schedules)
    membership = Membership.objects.filter(team=team, user=actor).first()
    if membership is None:
        # Pipetower staff under the team's support grant (privacy.support_access).
        from pipetower.privacy.support_access import support_role

        if (staff_role := support_role(team=team, user=actor)) is not None:
            membership = Membership(team=team, user=actor, role=staff_role)
    if membership is None:
        return NotAllowed("You are not a member of this team.")
    if not membership.role_enum.at_least(role):
        return NotAllowed(
            f"Only {role.label.lower()}s and above can {doing}. "
            f"Your role is {membership.role_enum.label}."
        )
    return None


def _require_role(*, team: Team, actor: Any, role: Role, doing: str) -> None:
    if refusal := role_refusal(team=team, actor=actor, role=role, doing=doing):
        raise refusal


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
    if "requires_approval" in fields:
        clean["requires_approval"] = bool(fields["requires_approval"])
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
        "requires_approval": action.requires_approval,
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
    requires_approval: bool = False,
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
            "requires_approval": requires_approval,
        },
    )
    servers = clean.pop("default_servers")
    try:
        with transaction.atomic():
            action = Action(team=team, created_by=actor, current_version=1, **clean)
            action.save()
            action.default_servers.set(servers)
            _version_add(action=action, actor=actor, changes=[])
            audit_record(
                actor=actor,
                team=team,
                verb="action.created",
                target=action,
                request=request,
                data=_audit_data(action),
            )
    except IntegrityError:
        raise Conflict(f"An action named {clean['name']!r} already exists.", field="name") from None
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
        "requires_approval",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ServiceError(f"Unknown field {sorted(unknown)[0]}.")
    clean = _clean_fields(team=action.team, fields=changes)
    servers = clean.pop("default_servers", None)
    try:
        with transaction.atomic():
            # Locked and read afresh: two edits at once each add their own version.
            locked = _lock_action(action)
            versioned = _version_changes(locked, clean)
            changed = sorted(
                k for k, v in clean.items() if k != "secret_defaults" and getattr(locked, k) != v
            )
            if "secret_defaults" in clean and "secret defaults" in versioned:
                changed.append("secret defaults")
            for key, value in clean.items():
                setattr(locked, key, value)
            if versioned:
                locked.current_version += 1
            locked.save()
            if servers is not None:
                locked.default_servers.set(servers)
                changed.append("default servers")
            if versioned:
                _version_add(action=locked, actor=actor, changes=versioned)
            audit_record(
                actor=actor,
                team=locked.team,
                verb="action.updated",
                target=locked,
                request=request,
                data={
                    **_audit_data(locked),
                    "changed": changed,
                    **({"version": locked.current_version} if versioned else {}),
                },
            )
    except IntegrityError:
        raise Conflict(
            f"An action named {clean.get('name', action.name)!r} already exists.", field="name"
        ) from None
    action.refresh_from_db()
    return action


def _lock_action(action: Action) -> Action:
    """The action's row, locked for this transaction and read afresh."""
    locked = Action.objects.select_for_update().get(pk=action.pk)
    locked.team = action.team  # the same team, without locking its row too
    return locked


def _version_content(obj: Action | ActionVersion) -> dict[str, Any]:
    """What a version keeps of an action (or a version), secret defaults decoded."""
    content = {name: getattr(obj, name) for name in ActionVersion.FIELDS}
    content["secret_defaults"] = obj.secret_default_values()
    return content


def _version_changes(action: Action, clean: Mapping[str, Any]) -> list[str]:
    """The words for the versioned fields `clean` changes in `action` ([]: none)."""
    current = _version_content(action)
    changed = []
    for name, words in ActionVersion.FIELDS.items():
        if name not in clean:
            continue
        value = clean[name]
        if name == "secret_defaults":
            value = json.loads(value) if value else {}
        if value != current[name]:
            changed.append(words)
    return changed


def _version_add(
    *, action: Action, actor: Any, changes: list[str], restored_from: int | None = None
) -> ActionVersion:
    """Keep the action's content as its version `action.current_version`. Called inside
    the transaction that wrote the action (create, update, restore), with it locked."""
    version = ActionVersion(
        team=action.team,
        action=action,
        number=action.current_version,
        script=action.script,
        parameters=action.parameters,
        secret_defaults=action.secret_defaults,
        run_as=action.run_as,
        timeout_seconds=action.timeout_seconds,
        concurrency=action.concurrency,
        failure_limit=action.failure_limit,
        changes=changes,
        restored_from=restored_from,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    version.save()
    return version


def action_version_restore_refusal(*, action: Action, actor: Any) -> NotAllowed | None:
    """Why `actor` may not restore versions of `action` (None: they may): whoever can
    change the action. Pages ask it to decide whether to show the button."""
    return role_refusal(team=action.team, actor=actor, role=Role.ADMIN, doing="change actions")


def action_version_restore(
    *, action: Action, number: int, actor: Any, request: HttpRequest | None = None
) -> ActionVersion:
    """Make version `number`'s content the action's again, as a new version (the
    history is never rewritten). Refused when it is the current content already."""
    if refusal := action_version_restore_refusal(action=action, actor=actor):
        raise refusal
    with transaction.atomic():
        locked = _lock_action(action)
        old = ActionVersion.objects.filter(action=locked, number=number).first()
        if old is None:
            raise VersionNotFound(f"This action has no version {number}.")
        content = _version_content(old)
        clean = {**content, "secret_defaults": old.secret_defaults}
        versioned = _version_changes(locked, clean)
        if not versioned:
            raise Conflict(
                f"Version {number} is what the action runs now (version "
                f"{locked.current_version}), so there is nothing to restore."
            )
        for key, value in clean.items():
            setattr(locked, key, value)
        locked.current_version += 1
        locked.save()
        version = _version_add(action=locked, actor=actor, changes=versioned, restored_from=number)
        audit_record(
            actor=actor,
            team=locked.team,
            verb="action.version_restored",
            target=locked,
            request=request,
            data={
                **_audit_data(locked),
                "restored": number,
                "version": version.number,
                "changed": versioned,
            },
        )
    action.refresh_from_db()
    return version


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
        raise ServiceError(NO_TARGETS, field="targets", code="no_targets")
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


def _chosen_targets(
    *, action: Action, server_ids: Sequence[Any], tags: Sequence[str], default_targets: bool
) -> tuple[list[Any], list[str]]:
    """The targets asked for: exactly the ones chosen, or, only when asked for
    explicitly, the action's default targets. Nothing chosen is refused."""
    chosen = bool(server_ids) or bool(tags)
    if not default_targets:
        if not chosen:
            raise ServiceError(NO_TARGETS, field="targets", code="no_targets")
        return list(server_ids), list(tags)
    if chosen:
        raise ServiceError(
            "Choose servers or tags, or ask for the action's default targets, not both.",
            field="targets",
        )
    defaults = list(action.default_servers.values_list("pk", flat=True))
    if not defaults and not action.default_tags:
        raise ServiceError(
            f"This action has no default targets. {NO_TARGETS}",
            field="targets",
            code="no_targets",
        )
    return defaults, list(action.default_tags)


@dataclass(frozen=True)
class RunRequest:
    """A run request that passed every check: the servers and the values to run with."""

    servers: list[Server]
    plain: dict[str, Any]
    secrets: dict[str, str]
    use_defaults: list[str]


def run_request_check(
    *,
    action: Action,
    server_ids: Sequence[Any] = (),
    tags: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    default_targets: bool = False,
    default_params: bool | Collection[str] = False,
) -> RunRequest:
    """Every check of a run request, without starting anything: targets chosen and
    found (and pinned), parameter values given, typed and in bounds. A manual
    run, the API and a schedule (when saved and when it fires) all ask this."""
    team = action.team
    server_ids, tags = _chosen_targets(
        action=action, server_ids=server_ids, tags=tags, default_targets=default_targets
    )
    servers = _resolve_targets(team=team, server_ids=server_ids, tags=tags)
    _refuse_unpinned(team=team, servers=servers)
    given = dict(values or {})
    names = [spec["name"] for spec in action.parameters]
    if default_params is True:
        use_defaults = [n for n in names if n not in given]
    elif default_params is False:
        use_defaults = []
    else:
        use_defaults = [n for n in names if n in default_params and n not in given]
    plain, secrets = params.values_resolve(
        action.parameters, action.secret_default_values(), given, use_defaults=use_defaults
    )
    return RunRequest(servers=servers, plain=plain, secrets=secrets, use_defaults=use_defaults)


def run_start(
    *,
    action: Action,
    actor: Any,
    server_ids: Sequence[Any] = (),
    tags: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    default_targets: bool = False,
    default_params: bool | Collection[str] = False,
    trigger: str = Run.Trigger.WEB,
    rerun_of: Run | None = None,
    schedule: Schedule | None = None,
    webhook: Webhook | None = None,
    request: HttpRequest | None = None,
) -> Run:
    """Start `action` on exactly the chosen servers (ids and/or tags) with exactly
    the given parameter `values`; refuse rather than guess.

    Nothing chosen is refused: the action's default targets are used only with
    `default_targets=True`, and a parameter's default only when it is named in
    `default_params` (True: every parameter not in `values`). Forms show the
    defaults pre-filled instead. The run stores the resolved servers and values.
    Its shards are queued for the workers once the transaction commits.
    A schedule starts its runs with `actor=None` and itself as `schedule`, a
    webhook delivery with `actor=None` and the hook as `webhook`.
    """
    team = action.team
    _require_role(team=team, actor=actor, role=Role.OPERATOR, doing="run actions")
    # A team scheduled for deletion is frozen (its schedules too). Read afresh, not
    # locked: a run that slips in as the deletion is being scheduled only delays
    # the purge, which waits for runs in progress.
    fresh = Team.objects.only("name", "deletion_scheduled_for").get(pk=team.pk)
    if refusal := team_permissions.team_frozen_refusal(fresh):
        raise refusal
    checked = run_request_check(
        action=action,
        server_ids=server_ids,
        tags=tags,
        values=values,
        default_targets=default_targets,
        default_params=default_params,
    )
    servers, plain, secrets = checked.servers, checked.plain, checked.secrets
    use_defaults = checked.use_defaults
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
            version_number=action.current_version,
            trigger=trigger,
            started_by=actor,
            rerun_of=rerun_of,
            schedule=schedule,
            schedule_name=schedule.name if schedule else "",
            webhook=webhook,
            webhook_name=webhook.name if webhook else "",
            shard_count=shard_count,
            status=RunStatus.PENDING_APPROVAL if action.requires_approval else RunStatus.QUEUED,
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
                **({"schedule": schedule.name} if schedule else {}),
                **({"webhook": webhook.name} if webhook else {}),
                "default_targets": default_targets,
                "defaults_used": use_defaults,
            },
        )
        run_id = run.pk
        if action.requires_approval:
            # Held for a second person; approval_approve queues the shards.
            approval_request(run=run, requested_by=actor, request=request)
        else:
            _enqueue_shards(run_id)  # through the outbox: in this transaction
    return run


def run_again_values(*, run: Run) -> dict[str, Any]:
    """The run's parameter values (secrets included) for the parameters its action
    still takes: what "Run again" and "Re-run failed" start with."""
    names = {spec["name"] for spec in run.action.parameters} if run.action else set()
    values: dict[str, Any] = {**run.params, **run.secret_param_values()}
    return {name: value for name, value in values.items() if name in names}


def run_again_servers(*, run: Run) -> tuple[list[int], list[str]]:
    """(ids of the run's servers that still exist, names of those deleted since)."""
    kept: list[int] = []
    gone: list[str] = []
    for server_id, name in run.targets.order_by("server_name", "id").values_list(
        "server_id", "server_name"
    ):
        if server_id is None:
            gone.append(name)
        else:
            kept.append(server_id)
    return kept, gone


def run_again_check(*, run: Run, doing: str = "Run it again") -> Action:
    """The action a finished run can be started again with, or the refusal."""
    run.refresh_from_db(fields=["status", "action"])
    if not run.is_finished:
        raise Conflict(f"This run is still going. {doing} once it has finished.")
    if run.action is None:
        raise Gone("The action of this run has been deleted, so it cannot be run again.")
    return run.action


def run_again(
    *,
    run: Run,
    actor: Any,
    server_ids: Sequence[Any] | None = None,
    tags: Sequence[str] | None = None,
    values: Mapping[str, Any] | None = None,
    default_params: bool | Collection[str] = False,
    trigger: str = Run.Trigger.WEB,
    request: HttpRequest | None = None,
) -> Run:
    """Start a finished run's action again (its current script and settings).

    Targets: `server_ids`/`tags` as given (empty is refused, as for any run);
    only when both are None, the run's own servers, refused if one of them has
    been deleted since. Values: the run's values (secrets included) for the
    parameters the action still takes, each replaced by the one in `values`.
    """
    _require_role(team=run.team, actor=actor, role=Role.OPERATOR, doing="run actions")
    action = run_again_check(run=run)
    if server_ids is None and tags is None:
        server_ids, gone = run_again_servers(run=run)
        if gone:
            raise Conflict(
                "Deleted since run #{}: {}. Choose the servers to run on.".format(
                    run.pk, ", ".join(gone[:5]) + (" and more" if len(gone) > 5 else "")
                ),
                field="targets",
            )
    return run_start(
        action=action,
        actor=actor,
        server_ids=server_ids or [],
        tags=tags or [],
        values={**run_again_values(run=run), **(values or {})},
        default_params=default_params,
        trigger=trigger,
        rerun_of=run,
        request=request,
    )


def shard_time_limit(*, timeout_seconds: int, concurrency: int, targets: int) -> int:
    """Celery's hard time limit for one shard task, in seconds: above the action's timeout.

    Under the run-wide concurrency limit a shard may wait for every other target of
    the run, so the bound counts the run's waves: each is at most the connection
    (with its retries), the script's timeout and the stop grace, plus a margin.
    """
    waves = math.ceil(max(1, targets) / max(1, min(concurrency, max(1, targets))))
    per_wave = timeout_seconds + 3 * conf.connect_timeout() + conf.cancel_grace_seconds() + 30
    return int(waves * per_wave + 60)


def run_subject(run_id: int) -> str:
    """How the outbox names a run's shard tasks (see core.outbox.outbox_waiting)."""
    return f"actions.run:{run_id}"


def _enqueue_shards(run_id: int, target_ids: Sequence[int] | None = None) -> None:
    """Queue a task per shard for the run's queued targets (or only `target_ids`),
    through the outbox: call it inside the transaction that wrote the targets."""
    from pipetower.actions.tasks import run_shard_execute_task

    run = Run.objects.only("timeout_seconds", "concurrency").filter(pk=run_id).first()
    if run is None:
        return
    queued = RunTarget.objects.filter(run_id=run_id, status=TargetStatus.QUEUED)
    if target_ids is not None:
        queued = queued.filter(pk__in=list(target_ids))
    shards: dict[int, list[int]] = {}
    for target_id, shard in queued.order_by("id").values_list("id", "shard"):
        shards.setdefault(shard, []).append(target_id)
    limit = shard_time_limit(
        timeout_seconds=run.timeout_seconds,
        concurrency=run.concurrency,
        targets=RunTarget.objects.filter(run_id=run_id).count(),
    )
    for ids in shards.values():
        outbox_enqueue(
            run_shard_execute_task,
            run_id,
            ids,
            subject=run_subject(run_id),
            options={"time_limit": limit},
        )


def run_cancel(*, run: Run, actor: Any, request: HttpRequest | None = None) -> Run:
    """Stop a run: queued targets end now; the worker signals running scripts.

    Same lock order as every run-state change: the Run row first, then its targets.
    """
    _require_role(team=run.team, actor=actor, role=Role.OPERATOR, doing="cancel runs")
    now = timezone.now()
    with transaction.atomic():
        locked = _lock_run(run.pk)
        if locked is None or locked.is_finished:
            status = locked.get_status_display().lower() if locked else "deleted"
            raise Conflict(f"This run has already finished ({status}).")
        if locked.cancel_requested_at is None:
            Run.objects.filter(pk=run.pk).update(cancel_requested_at=now, cancelled_by=actor)
        _finish_queued_locked(
            run_id=run.pk,
            status=TargetStatus.CANCELLED,
            error=f"Cancelled by {getattr(actor, 'email', 'the system')} before it started.",
        )
        _recount_locked(run.pk)
        audit_record(actor=actor, team=run.team, verb="run.cancelled", target=run, request=request)
    run.refresh_from_db()
    return run


def run_rerun_failed(*, run: Run, actor: Any, request: HttpRequest | None = None) -> Run:
    """A new run of the same action and parameters, on only the targets that failed."""
    _require_role(team=run.team, actor=actor, role=Role.OPERATOR, doing="run actions")
    action = run_again_check(run=run, doing="Re-run its failed targets")
    failed = run.targets.filter(status__in=FAILED_STATUSES)
    if not failed.exists():
        raise Conflict("No target failed in this run, so there is nothing to re-run.")
    server_ids = [sid for sid in failed.values_list("server_id", flat=True) if sid is not None]
    if not server_ids:
        raise Gone("The servers that failed in this run have all been deleted.")
    return run_start(
        action=action,
        actor=actor,
        server_ids=server_ids,
        values=run_again_values(run=run),
        trigger=Run.Trigger.RERUN,
        rerun_of=run,
        request=request,
    )


# --- run state (written by the engine and the reaper) --------------------------
#
# One lock order for every change to a run or its targets: the Run row first
# (SELECT ... FOR UPDATE; SQLite's IMMEDIATE transactions serialise writers
# anyway), then its targets, and the run's status is recounted inside that same
# lock. So two shards finishing together cannot both count "one still running",
# cancel and claim cannot deadlock, and the run-wide concurrency limit is a
# count taken under the lock.


def _lock_run(run_id: int) -> Run | None:
    return (
        Run.objects.select_for_update()
        .only("status", "concurrency", "failure_limit", "cancel_requested_at", "revision")
        .filter(pk=run_id)
        .first()
    )


def _bump(run_id: int, target_ids: Sequence[int]) -> None:
    """Give the changed targets a new run revision (the Run row is locked by the caller)."""
    Run.objects.filter(pk=run_id).update(revision=F("revision") + 1)
    revision = Run.objects.values_list("revision", flat=True).get(pk=run_id)
    RunTarget.objects.filter(pk__in=target_ids).update(revision=revision)


def _recount_locked(run_id: int) -> str:
    counts = Counter(
        dict(
            RunTarget.objects.filter(run_id=run_id)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    )
    status = run_status_from_targets(counts)
    if (
        status == RunStatus.QUEUED
        and Run.objects.filter(pk=run_id, status=RunStatus.PENDING_APPROVAL).exists()
    ):
        status = RunStatus.PENDING_APPROVAL  # held until approved, whatever its targets say
    fields: dict[str, Any] = {"status": status, "revision": F("revision") + 1}
    Run.objects.filter(pk=run_id).update(**fields)
    if status not in UNFINISHED_RUN_STATUSES and Run.objects.filter(
        pk=run_id, finished_at__isnull=True
    ).update(finished_at=timezone.now()):
        from pipetower.notifications.services import run_finished_notify

        run_finished_notify(run_id)  # the run has just ended (docs/notifications.md)
    return status


def run_status_refresh(*, run_id: int) -> str:
    """Derive the run's status from its targets' and store it (with the finish time)."""
    with transaction.atomic():
        if _lock_run(run_id) is None:
            return RunStatus.CANCELLED
        return _recount_locked(run_id)


def _finish_queued_locked(*, run_id: int, status: str, error: str) -> int:
    ids = list(
        RunTarget.objects.filter(run_id=run_id, status=TargetStatus.QUEUED).values_list(
            "id", flat=True
        )
    )
    if not ids:
        return 0
    count = RunTarget.objects.filter(pk__in=ids, status=TargetStatus.QUEUED).update(
        status=status, error=error, finished_at=timezone.now()
    )
    _bump(run_id, ids)
    return count


def targets_finish_queued(*, run_id: int, status: str, error: str) -> int:
    """End every still-queued target of the run (cancel, failure limit)."""
    with transaction.atomic():
        if _lock_run(run_id) is None:
            return 0
        count = _finish_queued_locked(run_id=run_id, status=status, error=error)
        if count:
            _recount_locked(run_id)
    return count


def run_targets_claim(
    *, run_id: int, target_ids: Sequence[int], worker: str, want: int
) -> tuple[list[int], list[int]]:
    """Queued → connecting for up to `want` of `target_ids`, within the run-wide limit.

    Under the Run lock: the run's connecting and running targets are counted, and
    only `concurrency` minus that many are claimed, whichever shard or worker asks.
    Returns (claimed ids, ids still queued and not claimed). A run that is
    cancelled or finished claims nothing; a target already taken or ended is in
    neither list.
    """
    now = timezone.now()
    with transaction.atomic():
        run = _lock_run(run_id)
        if (
            run is None
            or run.is_finished
            or run.status == RunStatus.PENDING_APPROVAL  # not approved: nothing may start
            or run.cancel_requested_at is not None
        ):
            return [], []
        queued = list(
            RunTarget.objects.filter(
                run_id=run_id, pk__in=list(target_ids), status=TargetStatus.QUEUED
            )
            .order_by("id")
            .values_list("id", flat=True)
        )
        active = RunTarget.objects.filter(run_id=run_id, status__in=ACTIVE_STATUSES).count()
        room = max(0, min(want, run.concurrency - active))
        claimed, rest = queued[:room], queued[room:]
        if claimed:
            RunTarget.objects.filter(pk__in=claimed).update(
                status=TargetStatus.CONNECTING, heartbeat_at=now, worker=worker[:255]
            )
            if run.status == RunStatus.QUEUED:
                Run.objects.filter(pk=run_id).update(status=RunStatus.RUNNING)
            _bump(run_id, claimed)
    return claimed, rest


def run_target_claim(*, target_id: int, worker: str) -> bool:
    """Claim one target (see run_targets_claim). False if it was cancelled, taken or
    the run's concurrency limit is reached."""
    run_id = RunTarget.objects.values_list("run_id", flat=True).get(pk=target_id)
    claimed, _ = run_targets_claim(run_id=run_id, target_ids=[target_id], worker=worker, want=1)
    return bool(claimed)


def run_targets_hold(*, run_id: int, target_ids: Sequence[int], worker: str) -> list[int]:
    """A shard takes its queued targets: heartbeat and worker set, still queued.

    From then on the shard's heartbeat covers them, so the reaper can tell a queued
    target whose worker died (stale heartbeat) from one still waiting in the broker
    (no heartbeat). A target another live shard holds (fresh heartbeat) is left to
    it: a task the broker delivered again while its first delivery still runs
    takes nothing. Returns the ids this shard now holds.
    """
    cutoff = timezone.now() - conf.worker_lost_after()
    with transaction.atomic():
        if _lock_run(run_id) is None:
            return []
        queued = RunTarget.objects.filter(
            Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff),
            run_id=run_id,
            pk__in=list(target_ids),
            status=TargetStatus.QUEUED,
        )
        ids = list(queued.order_by("id").values_list("id", flat=True))
        RunTarget.objects.filter(pk__in=ids).update(
            heartbeat_at=timezone.now(), worker=worker[:255]
        )
        return ids


def run_targets_running(*, run_id: int, target_ids: Sequence[int]) -> None:
    """Connecting → running for these targets (one statement for many)."""
    with transaction.atomic():
        if _lock_run(run_id) is None:
            return
        _mark_running_locked(run_id, target_ids, now=timezone.now())


def _mark_running_locked(run_id: int, target_ids: Sequence[int], *, now: datetime) -> None:
    """Connecting → running for these targets; the caller holds the Run row lock."""
    ids = list(
        RunTarget.objects.filter(
            run_id=run_id, pk__in=list(target_ids), status=TargetStatus.CONNECTING
        ).values_list("id", flat=True)
    )
    if ids:
        RunTarget.objects.filter(pk__in=ids).update(
            status=TargetStatus.RUNNING, started_at=now, heartbeat_at=now
        )
        _bump(run_id, ids)


def run_target_running(*, target_id: int) -> None:
    run_id = RunTarget.objects.values_list("run_id", flat=True).get(pk=target_id)
    run_targets_running(run_id=run_id, target_ids=[target_id])


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
    run_id = RunTarget.objects.values_list("run_id", flat=True).get(pk=target_id)
    return run_targets_finish(
        run_id=run_id,
        endings=[
            TargetEnding(
                target_id=target_id,
                status=status,
                exit_code=exit_code,
                error=error,
                chunks=list(chunks),
                output_bytes=output_bytes,
                truncated=truncated,
            )
        ],
    ) == [target_id]


class TargetEnding:
    """How one target ended, with its last output (see run_targets_finish)."""

    __slots__ = ("chunks", "error", "exit_code", "output_bytes", "status", "target_id", "truncated")

    def __init__(
        self,
        *,
        target_id: int,
        status: str,
        exit_code: int | None = None,
        error: str = "",
        chunks: Sequence[tuple[str, str]] = (),
        output_bytes: int | None = None,
        truncated: bool | None = None,
    ) -> None:
        self.target_id = target_id
        self.status = status
        self.exit_code = exit_code
        self.error = error
        self.chunks = list(chunks)
        self.output_bytes = output_bytes
        self.truncated = truncated


def run_targets_finish(*, run_id: int, endings: Sequence[TargetEnding]) -> list[int]:
    """End many targets of one run in one transaction, under the Run lock: store
    their last output, set their endings, apply the run's failure limit and
    recount the run. Returns the ids that were ended here (not already ended)."""
    now = timezone.now()
    with transaction.atomic():
        run = _lock_run(run_id)
        if run is None:
            return []
        _store_locked(
            {
                e.target_id: (e.chunks, e.output_bytes, e.truncated)
                for e in endings
                if e.chunks or e.output_bytes is not None
            }
        )
        by_id = {e.target_id: e for e in endings}
        targets = list(
            RunTarget.objects.filter(run_id=run_id, pk__in=list(by_id), status__in=ACTIVE_STATUSES)
        )
        for target in targets:
            ending = by_id[target.pk]
            target.status = ending.status
            target.exit_code = ending.exit_code
            target.error = ending.error[:10_000]
            target.finished_at = now
            if target.started_at is None:
                target.started_at = now
        update_rows(
            RunTarget, targets, ["status", "exit_code", "error", "finished_at", "started_at"]
        )
        ended = [t.pk for t in targets]
        if not ended:
            return []
        _bump(run_id, ended)
        if run.failure_limit and any(t.status in FAILED_STATUSES for t in targets):
            failures = RunTarget.objects.filter(run_id=run_id, status__in=FAILED_STATUSES).count()
            if failures >= run.failure_limit:
                _finish_queued_locked(
                    run_id=run_id,
                    status=TargetStatus.CANCELLED,
                    error=f"Skipped: the run stopped after {failures} failed targets "
                    f"(limit {run.failure_limit}).",
                )
        _recount_locked(run_id)
    return ended


def _store_locked(
    batch: Mapping[int, tuple[Sequence[tuple[str, str]], int | None, bool | None]],
) -> None:
    """Append output for many targets: one read of their sequence numbers, one insert
    of the chunks, one update of the targets (the caller holds the Run row lock)."""
    if not batch:
        return
    now = timezone.now()
    targets = list(
        RunTarget.objects.filter(pk__in=list(batch)).only(
            "id", "last_seq", "output_bytes", "truncated", "heartbeat_at"
        )
    )
    rows: list[OutputChunk] = []
    for target in targets:
        chunks, output_bytes, truncated = batch[target.pk]
        rows += [
            OutputChunk(
                run_target_id=target.pk, seq=target.last_seq + i, stream=s, data=d, created_at=now
            )
            for i, (s, d) in enumerate(chunks, start=1)
        ]
        target.last_seq += len(chunks)
        target.heartbeat_at = now
        if output_bytes is not None:
            target.output_bytes = output_bytes
        if truncated is not None:
            target.truncated = truncated
    update_rows(RunTarget, targets, ["last_seq", "heartbeat_at", "output_bytes", "truncated"])
    OutputChunk.objects.bulk_create(rows)


def output_chunks_store_many(
    *, run_id: int, batch: Mapping[int, tuple[Sequence[tuple[str, str]], int | None, bool | None]]
) -> None:
    """Append output for many targets of one run in one transaction (the flusher)."""
    with transaction.atomic():
        if _lock_run(run_id) is None:
            return
        _store_locked(batch)


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
    run_id = RunTarget.objects.values_list("run_id", flat=True).get(pk=target_id)
    output_chunks_store_many(run_id=run_id, batch={target_id: (chunks, output_bytes, truncated)})
    return int(RunTarget.objects.values_list("last_seq", flat=True).get(pk=target_id))


def run_targets_heartbeat(*, target_ids: Sequence[int], run_id: int | None = None) -> None:
    """The shard is alive: for its active targets and the queued ones it holds."""
    ids = list(target_ids)
    if not ids:
        return
    if run_id is None:
        run_id = RunTarget.objects.values_list("run_id", flat=True).filter(pk=ids[0]).first()
        if run_id is None:
            return
    with transaction.atomic():
        if _lock_run(run_id) is None:
            return
        RunTarget.objects.filter(
            run_id=run_id, pk__in=ids, status__in=(*ACTIVE_STATUSES, TargetStatus.QUEUED)
        ).update(heartbeat_at=timezone.now())


def run_shard_flush(
    *,
    run_id: int,
    outputs: Mapping[int, tuple[Sequence[tuple[str, str]], int | None, bool | None]],
    running_ids: Sequence[int] = (),
    endings: Sequence[TargetEnding] = (),
    heartbeat_ids: Sequence[int] = (),
) -> bool:
    """Everything a shard has to write since its last flush, in one transaction
    under the Run lock: output of many targets, targets now running, targets
    ended (with the failure limit and the recount), heartbeats. Returns whether
    the run's cancel was requested, so the shard needs no separate poll."""
    with transaction.atomic():
        run = _lock_run(run_id)
        if run is None:
            return True
        _store_locked(outputs)
        now = timezone.now()
        if running_ids:
            _mark_running_locked(run_id, running_ids, now=now)
        if endings:
            run_targets_finish(run_id=run_id, endings=endings)
        if heartbeat_ids:
            RunTarget.objects.filter(
                run_id=run_id,
                pk__in=list(heartbeat_ids),
                status__in=(*ACTIVE_STATUSES, TargetStatus.QUEUED),
            ).update(heartbeat_at=now)
        return run.cancel_requested_at is not None


def run_cancel_requested(*, run_id: int) -> bool:
    return Run.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists()


def run_targets_reap(*, now: datetime | None = None, stale_after: timedelta | None = None) -> int:
    """Recover what a dead worker held (output so far is kept).

    Active targets whose heartbeat went stale end as worker_lost (whether the
    script finished on the server is unknown). Queued targets a shard had taken
    (heartbeat set) whose heartbeat went stale are queued again for another
    worker: their task died with the worker. Returns how many targets were ended
    or queued again.
    """
    now = now or timezone.now()
    cutoff = now - (stale_after or conf.worker_lost_after())
    lost = Q(status__in=ACTIVE_STATUSES) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    orphaned = Q(status=TargetStatus.QUEUED, heartbeat_at__lt=cutoff)
    run_ids = set(RunTarget.objects.filter(lost | orphaned).values_list("run_id", flat=True))
    total = 0
    for run_id in sorted(run_ids):
        with transaction.atomic():
            run = _lock_run(run_id)
            if run is None:
                continue
            lost_ids = list(
                RunTarget.objects.filter(lost, run_id=run_id).values_list("id", flat=True)
            )
            requeue_ids = list(
                RunTarget.objects.filter(orphaned, run_id=run_id).values_list("id", flat=True)
            )
            if lost_ids:
                RunTarget.objects.filter(pk__in=lost_ids).update(
                    status=TargetStatus.WORKER_LOST,
                    finished_at=now,
                    error="The worker running this target stopped responding "
                    f"(no heartbeat since {cutoff:%H:%M:%S} UTC). Output received until then "
                    "is kept; whether the script finished on the server is unknown.",
                )
                _bump(run_id, lost_ids)
            if requeue_ids:
                RunTarget.objects.filter(pk__in=requeue_ids).update(heartbeat_at=None, worker="")
                _bump(run_id, requeue_ids)
                _enqueue_shards(run_id, list(requeue_ids))  # the outbox, in this transaction
            _recount_locked(run_id)
            full = Run.objects.select_related("team").get(pk=run_id)
            team = full.team
            if lost_ids:
                audit_record(
                    actor=None,
                    team=team,
                    verb="run.targets_lost",
                    target=full,
                    data={"targets": len(lost_ids)},
                )
            if requeue_ids:
                audit_record(
                    actor=None,
                    team=team,
                    verb="run.targets_requeued",
                    target=full,
                    data={"targets": len(requeue_ids)},
                )
        total += len(lost_ids) + len(requeue_ids)
    return total
