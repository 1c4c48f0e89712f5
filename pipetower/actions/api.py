"""`/teams/{slug}/actions` and `/teams/{slug}/runs`: the API of actions and runs.

Viewers read, operators start, cancel and re-run, admins manage actions. The
writes are the services the pages call, so the rules and messages are the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from pipetower.actions import approvals, live, schedules, selectors, services, versions, webhooks
from pipetower.actions.models import (
    Action,
    ActionVersion,
    ApprovalRequest,
    Run,
    RunStatus,
    Schedule,
    TargetStatus,
    Webhook,
)
from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.pagination import Page, PageParams, paginate
from pipetower.api.schemas import Input
from pipetower.core.query import QueryDate
from pipetower.servers.models import Server
from pipetower.teams.models import Membership, Role, Team
from pipetower.teams.selectors import membership_get

router = Router(tags=["actions"])

ParamKindName = Literal["string", "integer", "boolean", "choice", "secret"]
ParamValue = str | int | bool
# Values as shown: secrets are masked ("••••••"); an optional value not given is null.
ShownParams = dict[str, ParamValue | None]
RunTrigger = Literal["web", "api", "rerun", "schedule", "webhook"]
ScheduleOutcome = Literal["", "started", "caught_up", "skipped_overlap", "missed", "refused"]


# --- schemas -------------------------------------------------------------------------


class ParameterIn(Input):
    name: str = Field(..., min_length=1, max_length=40)
    label: str = ""
    kind: ParamKindName = "string"
    required: bool = False
    default: ParamValue | None = Field(
        None, description="For a secret parameter the default is stored encrypted, never shown."
    )
    choices: list[str] = []
    help: str = ""
    min: int | None = Field(None, description="Integer parameters: the smallest value allowed.")
    max: int | None = Field(None, description="Integer parameters: the largest value allowed.")


class ParameterOut(Schema):
    name: str
    label: str
    kind: ParamKindName
    required: bool
    default: ParamValue | None
    choices: list[str]
    help: str
    min: int | None = None
    max: int | None = None


class ActionIn(Input):
    name: str = Field(..., min_length=1, max_length=100)
    description: str = ""
    script: str = Field(..., min_length=1)
    parameters: list[ParameterIn] = []
    run_as: str = ""
    timeout_seconds: int = Field(300, ge=1)
    concurrency: int = Field(10, ge=1)
    failure_limit: int | None = Field(None, ge=1)
    default_server_ids: list[int] = []
    default_tags: list[str] = []
    requires_approval: bool = Field(
        False, description="Each run waits for another admin or owner to approve it."
    )


class ActionPatchIn(Input):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = None
    script: str | None = Field(None, min_length=1)
    parameters: list[ParameterIn] | None = None
    run_as: str | None = None
    timeout_seconds: int | None = Field(None, ge=1)
    concurrency: int | None = Field(None, ge=1)
    failure_limit: int | None = Field(None, ge=0, description="0 removes the limit.")
    default_server_ids: list[int] | None = None
    default_tags: list[str] | None = None
    requires_approval: bool | None = None


class ActionOut(Schema):
    id: int
    name: str
    description: str
    script: str
    parameters: list[ParameterOut]
    run_as: str
    timeout_seconds: int
    concurrency: int
    failure_limit: int | None
    default_server_ids: list[int]
    default_tags: list[str]
    requires_approval: bool
    current_version: int = Field(..., description="The number of the version it runs now.")
    created_at: datetime
    updated_at: datetime


class RunStartIn(Input):
    targets: list[str] = Field(
        [], description='Server names, or "tag:NAME" for every server with the tag.'
    )
    server_ids: list[int] = []
    tags: list[str] = []
    params: dict[str, ParamValue] = {}
    default_targets: bool = Field(
        False,
        description="Run on the action's default targets. Without it (or targets), "
        "the request is refused: nothing runs on servers nobody chose.",
    )
    default_params: bool = Field(
        False,
        description="Parameters not in `params` take the action's defaults. Without it, "
        "leaving out a parameter that has a default is refused.",
    )


class RunAgainIn(Input):
    targets: list[str] | None = Field(
        None,
        description="Leave out targets, server_ids and tags to run on the run's own servers.",
    )
    server_ids: list[int] | None = None
    tags: list[str] | None = None
    params: dict[str, ParamValue] = Field(
        {}, description="Values that replace the run's; the others (secrets too) are kept."
    )


class TargetOut(Schema):
    id: int
    server: str
    server_id: int | None
    status: TargetStatus
    status_label: str
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    error: str
    last_seq: int
    output_bytes: int
    truncated: bool


class TargetCountsOut(Schema):
    """How many of a run's servers are in each state (a state with none may be left out)."""

    queued: int = 0
    connecting: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    cancelled: int = 0
    unreachable: int = 0
    host_key_mismatch: int = 0
    worker_lost: int = 0


class RunOut(Schema):
    id: int
    action_id: int | None
    action_name: str
    status: RunStatus
    finished: bool
    trigger: RunTrigger
    started_by: str | None
    schedule_id: int | None = Field(None, description="The schedule that started the run.")
    schedule_name: str = Field("", description="Its name when the run started.")
    webhook_id: int | None = Field(None, description="The webhook that started the run.")
    webhook_name: str = Field("", description="Its name when the run started.")
    created_at: datetime
    finished_at: datetime | None
    params: ShownParams = Field(..., description="Secret values are masked.")
    rerun_of: int | None
    version_number: int | None = Field(
        None, description="The action's version the run ran (null for runs before history)."
    )
    target_counts: TargetCountsOut


class RunDetailOut(RunOut):
    targets: list[TargetOut]


class ChunkOut(Schema):
    target: int
    seq: int
    stream: Literal["stdout", "stderr", "system"]
    data: str


class TargetOutputOut(Schema):
    target: TargetOut
    chunks: list[ChunkOut]
    more: bool = Field(..., description="More chunks follow: ask again with after=<last seq>.")


class RunRunState(Schema):
    status: RunStatus
    status_label: str = Field(..., description="The status as the pages show it.")
    finished: bool


class RunChangesOut(Schema):
    revision: int
    run: RunRunState
    targets: list[TargetOut]
    chunks: list[ChunkOut]
    more: list[int]
    counts: TargetCountsOut | None = Field(
        None, description="Targets per status, when any target changed since `rev`."
    )
    retry_ms: int | None = Field(
        None, description="Without waiting support, ask again after this many milliseconds."
    )


class OutputParams(Schema):
    after: int = Field(0, ge=0, description="Last sequence number you have; 0 from the start.")


class ChangesParams(Schema):
    rev: int = Field(0, ge=0, description="The revision of your last answer; 0 at first.")
    after: str = Field(
        "", description="Targets you follow and the last seq you have: `12:40,13:0`."
    )
    wait: float = Field(0, ge=0, le=20, description="Seconds to wait for something new.")


class RunFilterParams(Schema):
    action: int | None = None
    status: RunStatus | None = None
    server: int | None = None
    who: int | None = Field(None, description="User id of who started the run.")
    since: QueryDate | None = None
    until: QueryDate | None = None


# --- helpers ----------------------------------------------------------------------------


def _membership(request: HttpRequest, slug: str, role: Role = Role.VIEWER) -> Membership:
    membership = membership_get(user=principal(request).user, team_slug=slug)
    if not membership.role_enum.at_least(role):
        raise PermissionDenied(f"This needs the {role.label} role or higher.")
    return membership


def _action_out(action: Action) -> dict[str, Any]:
    return {
        "id": action.pk,
        "name": action.name,
        "description": action.description,
        "script": action.script,
        "parameters": action.parameters,
        "run_as": action.run_as,
        "timeout_seconds": action.timeout_seconds,
        "concurrency": action.concurrency,
        "failure_limit": action.failure_limit,
        # .all() uses the list's prefetch; values_list() would query once per action.
        "default_server_ids": [server.pk for server in action.default_servers.all()],
        "default_tags": action.default_tags,
        "requires_approval": action.requires_approval,
        "current_version": action.current_version,
        "created_at": action.created_at,
        "updated_at": action.updated_at,
    }


def _run_out(
    run: Run, *, targets: bool = False, counts: dict[str, int] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.pk,
        "action_id": run.action_id,
        "action_name": run.action_name,
        "status": run.status,
        "finished": run.is_finished,
        "trigger": run.trigger,
        "started_by": run.started_by.email if run.started_by else None,
        "schedule_id": run.schedule_id,
        "schedule_name": run.schedule_name,
        "webhook_id": run.webhook_id,
        "webhook_name": run.webhook_name,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "params": run.masked_params(),
        "rerun_of": run.rerun_of_id,
        "version_number": run.version_number,
        "target_counts": (
            counts if counts is not None else selectors.target_status_counts(run=run)
        ),
    }
    if targets:
        body["targets"] = [selectors.target_dict(t) for t in selectors.run_targets(run=run)]
    return body


def _split_targets(
    team: Team, targets: list[str], server_ids_in: list[int], tags_in: list[str]
) -> tuple[list[int], list[str]]:
    server_ids = list(server_ids_in)
    tags = list(tags_in)
    for item in targets:
        if item.startswith("tag:"):
            tags.append(item[4:])
            continue
        server = Server.objects.filter(team=team, name=item).only("pk").first()
        if server is None:
            raise Http404(f"No server named {item!r} in this team.")
        server_ids.append(server.pk)
    return server_ids, tags


# --- actions ------------------------------------------------------------------------------


@router.get(
    "/teams/{slug}/actions",
    response=with_errors({200: Page[ActionOut]}, 400, 401, 404, 422, 429),
    operation_id="actions_list",
)
def action_list(
    request: HttpRequest, slug: str, pagination: Query[PageParams], name: str = ""
) -> dict[str, Any]:
    """The team's actions by name (`?name=` finds one by its exact name)."""
    team = _membership(request, slug).team
    actions = selectors.actions_for_team(team=team).prefetch_related("default_servers")
    if name:
        actions = actions.filter(name=name)
    return paginate(request, actions, pagination, transform=_action_out)


@router.post(
    "/teams/{slug}/actions",
    response=with_errors({201: ActionOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="actions_create",
)
def action_create(request: HttpRequest, slug: str, payload: ActionIn) -> Status:
    """Create an action (admins and owners)."""
    team = _membership(request, slug, Role.ADMIN).team
    fields = payload.model_dump()
    action = services.action_create(
        team=team, actor=principal(request).user, request=request, **fields
    )
    return Status(201, _action_out(action))


@router.get(
    "/teams/{slug}/actions/{action_id}",
    response=with_errors({200: ActionOut}, 400, 401, 404, 429),
    operation_id="actions_get",
)
def action_get(request: HttpRequest, slug: str, action_id: int) -> dict[str, Any]:
    """One action: script, parameters, settings and default targets."""
    team = _membership(request, slug).team
    return _action_out(selectors.action_get(team=team, action_id=action_id))


@router.patch(
    "/teams/{slug}/actions/{action_id}",
    response=with_errors({200: ActionOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="actions_update",
)
def action_update(
    request: HttpRequest, slug: str, action_id: int, payload: ActionPatchIn
) -> dict[str, Any]:
    """Change some fields of an action (admins and owners)."""
    team = _membership(request, slug, Role.ADMIN).team
    action = selectors.action_get(team=team, action_id=action_id)
    changes = payload.model_dump(exclude_unset=True)
    action = services.action_update(
        action=action, actor=principal(request).user, request=request, **changes
    )
    return _action_out(action)


@router.delete(
    "/teams/{slug}/actions/{action_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 409, 429),
    operation_id="actions_delete",
)
def action_delete(request: HttpRequest, slug: str, action_id: int) -> Status:
    """Delete an action; its runs stay in the history."""
    team = _membership(request, slug, Role.ADMIN).team
    action = selectors.action_get(team=team, action_id=action_id)
    services.action_delete(action=action, actor=principal(request).user, request=request)
    return Status(204, None)


@router.post(
    "/teams/{slug}/actions/{action_id}/runs",
    response=with_errors({201: RunDetailOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="runs_start",
)
def run_start(request: HttpRequest, slug: str, action_id: int, payload: RunStartIn) -> Status:
    """Start a run (operators and above) on exactly the targets given.

    No targets is refused (400 `no_targets`) unless `default_targets` asks for
    the action's; a parameter left out that has a default is refused unless
    `default_params` asks for the defaults. The answer lists the servers and
    values the run uses."""
    team = _membership(request, slug, Role.OPERATOR).team
    action = selectors.action_get(team=team, action_id=action_id)
    server_ids, tags = _split_targets(team, payload.targets, payload.server_ids, payload.tags)
    run = services.run_start(
        action=action,
        actor=principal(request).user,
        server_ids=server_ids,
        tags=tags,
        values=payload.params,
        default_targets=payload.default_targets,
        default_params=payload.default_params,
        trigger=Run.Trigger.API,
        request=request,
    )
    return Status(201, _run_out(run, targets=True))


# --- versions ----------------------------------------------------------------------------


class ActionVersionSummaryOut(Schema):
    number: int
    created_at: datetime
    created_by: str | None = Field(..., description="Email of who saved it; null if unknown.")
    changes: list[str] = Field(..., description="What changed from the version before.")
    restored_from: int | None = Field(..., description="The version this one restored.")
    current: bool


class ActionVersionOut(ActionVersionSummaryOut):
    script: str
    parameters: list[ParameterOut] = Field(
        ..., description="Secret parameters' defaults are never shown (null)."
    )
    run_as: str
    timeout_seconds: int
    concurrency: int
    failure_limit: int | None


def _version_out(version: ActionVersion, *, current: int, full: bool = False) -> dict[str, Any]:
    changes = version.changes if isinstance(version.changes, list) else []
    body: dict[str, Any] = {
        "number": version.number,
        "created_at": version.created_at,
        "created_by": version.created_by.email if version.created_by else None,
        "changes": [str(c) for c in changes],
        "restored_from": version.restored_from,
        "current": version.number == current,
    }
    if full:
        body.update(
            script=version.script,
            parameters=version.parameters,
            run_as=version.run_as,
            timeout_seconds=version.timeout_seconds,
            concurrency=version.concurrency,
            failure_limit=version.failure_limit,
        )
    return body


@router.get(
    "/teams/{slug}/actions/{action_id}/versions",
    response=with_errors({200: Page[ActionVersionSummaryOut]}, 400, 401, 404, 422, 429),
    operation_id="action_versions_list",
)
def action_versions_list(
    request: HttpRequest, slug: str, action_id: int, pagination: Query[PageParams]
) -> dict[str, Any]:
    """The action's versions, newest first: who saved each, when and what changed."""
    team = _membership(request, slug).team
    action = selectors.action_get(team=team, action_id=action_id)
    return paginate(
        request,
        versions.versions_for_action(action=action),
        pagination,
        transform=lambda v: _version_out(v, current=action.current_version),
    )


@router.get(
    "/teams/{slug}/actions/{action_id}/versions/{n}",
    response=with_errors({200: ActionVersionOut}, 400, 401, 404, 429),
    operation_id="action_versions_get",
)
def action_versions_get(request: HttpRequest, slug: str, action_id: int, n: int) -> dict[str, Any]:
    """Version `n` of the action: its script, parameters and settings."""
    team = _membership(request, slug).team
    action = selectors.action_get(team=team, action_id=action_id)
    version = versions.action_version_get(action=action, number=n)
    return _version_out(version, current=action.current_version, full=True)


@router.post(
    "/teams/{slug}/actions/{action_id}/versions/{n}/restore",
    response=with_errors({201: ActionVersionOut}, 400, 401, 403, 404, 409, 429),
    operation_id="action_versions_restore",
)
def action_versions_restore(request: HttpRequest, slug: str, action_id: int, n: int) -> Status:
    """Make version `n` what the action runs again (admins and owners): a new version
    with its content; the history is kept. 409 when it is the current content."""
    team = _membership(request, slug, Role.ADMIN).team
    action = selectors.action_get(team=team, action_id=action_id)
    version = versions.action_version_get(action=action, number=n)
    new = services.action_version_restore(
        action=action, number=version.number, actor=principal(request).user, request=request
    )
    return Status(201, _version_out(new, current=new.number, full=True))


# --- runs --------------------------------------------------------------------------------


@router.get(
    "/teams/{slug}/runs",
    response=with_errors({200: Page[RunOut]}, 400, 401, 404, 422, 429),
    operation_id="runs_list",
)
def run_list(
    request: HttpRequest,
    slug: str,
    pagination: Query[PageParams],
    filters: Query[RunFilterParams],
) -> dict[str, Any]:
    """Run history, newest first, filtered by action, status, server, who and date."""
    team = _membership(request, slug).team
    runs = selectors.runs_for_team(
        team=team,
        filters=selectors.RunFilters(
            action=filters.action,
            status=filters.status or "",
            server=filters.server,
            who=filters.who,
            since=filters.since,
            until=filters.until,
        ),
    )
    columns = (
        *("id", "action_id", "action_name", "status", "trigger", "created_at"),
        *("finished_at", "params", "parameters", "rerun_of_id", "started_by__email"),
        "version_number",
        *("schedule_id", "schedule_name", "webhook_id", "webhook_name"),
    )
    page = paginate(request, runs.only(*columns), pagination)
    counts = selectors.target_status_counts_for(runs=page["items"])
    page["items"] = [_run_out(run, counts=counts[run.pk]) for run in page["items"]]
    return page


@router.get(
    "/teams/{slug}/runs/{run_id}",
    response=with_errors({200: RunDetailOut}, 400, 401, 404, 429),
    operation_id="runs_get",
)
def run_get(request: HttpRequest, slug: str, run_id: int) -> dict[str, Any]:
    """One run with its targets (one per server)."""
    team = _membership(request, slug).team
    return _run_out(selectors.run_get(team=team, run_id=run_id), targets=True)


@router.get(
    "/teams/{slug}/runs/{run_id}/targets/{target_id}/output",
    response=with_errors({200: TargetOutputOut}, 400, 401, 404, 422, 429),
    operation_id="runs_target_output",
)
def run_target_output(
    request: HttpRequest,
    slug: str,
    run_id: int,
    target_id: int,
    query: Query[OutputParams],
) -> dict[str, Any]:
    """Output chunks of one server after a sequence number, oldest first."""
    team = _membership(request, slug).team
    run = selectors.run_get(team=team, run_id=run_id)
    target = selectors.run_target_get(run=run, target_id=target_id)
    rows = selectors.chunks_after(target=target, after=query.after)
    last = rows[-1].seq if rows else query.after
    return {
        "target": selectors.target_dict(target),
        "chunks": [selectors.chunk_dict(c) for c in rows],
        "more": last < target.last_seq,
    }


@router.get(
    "/teams/{slug}/runs/{run_id}/changes",
    response=with_errors({200: RunChangesOut}, 400, 401, 404, 422, 429),
    operation_id="runs_changes",
)
def run_changes(
    request: HttpRequest,
    slug: str,
    run_id: int,
    query: Query[ChangesParams],
) -> HttpResponse:
    """Long-poll for what changed: target statuses since `rev`, output after `after`.

    With `wait`, the answer comes as soon as anything is new, or after that many
    seconds with nothing; a waiting request holds no server thread.
    """
    team = _membership(request, slug).team
    run = selectors.run_get(team=team, run_id=run_id)
    return live.live_answer(
        request,
        run=run,
        revision=query.rev,
        cursor=selectors.parse_cursor(query.after),
        wait=query.wait,
    )


@router.post(
    "/teams/{slug}/runs/{run_id}/cancel",
    response=with_errors({200: RunDetailOut}, 400, 401, 403, 404, 409, 429),
    operation_id="runs_cancel",
)
def run_cancel(request: HttpRequest, slug: str, run_id: int) -> dict[str, Any]:
    """Cancel a run: queued servers are skipped, running scripts are signalled."""
    team = _membership(request, slug, Role.OPERATOR).team
    run = selectors.run_get(team=team, run_id=run_id)
    run = services.run_cancel(run=run, actor=principal(request).user, request=request)
    return _run_out(run, targets=True)


# --- approvals --------------------------------------------------------------------------


class ApprovalOut(Schema):
    id: int
    run_id: int
    action_name: str
    run_status: RunStatus
    requested_by: str | None = Field(None, description="Email; null for a schedule or webhook.")
    decision: Literal["", "approved", "denied", "expired"] = Field(
        ..., description='"" while waiting.'
    )
    decided_by: str | None
    reason: str
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime


class ApprovalFilterParams(Schema):
    state: Literal["waiting", "decided"] | None = Field(
        None, description="waiting: not decided yet; decided: approved, denied or expired."
    )


class ApprovalDenyIn(Input):
    reason: str = Field(..., min_length=1, max_length=500)


def _approval_out(approval: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": approval.pk,
        "run_id": approval.run_id,
        "action_name": approval.run.action_name,
        "run_status": approval.run.status,
        "requested_by": approval.requested_by.email if approval.requested_by else None,
        "decision": approval.decision,
        "decided_by": approval.decided_by.email if approval.decided_by else None,
        "reason": approval.reason,
        "created_at": approval.created_at,
        "decided_at": approval.decided_at,
        "expires_at": approval.expires_at,
    }


@router.get(
    "/teams/{slug}/approvals",
    response=with_errors({200: Page[ApprovalOut]}, 400, 401, 403, 404, 422, 429),
    operation_id="approvals_list",
)
def approvals_list(
    request: HttpRequest,
    slug: str,
    filters: Query[ApprovalFilterParams],
    page: Query[PageParams],
) -> dict[str, Any]:
    """The team's approval requests: waiting ones first, then decisions, newest first."""
    team = _membership(request, slug).team
    rows = selectors.approvals_for_team(team=team, state=filters.state or "")
    return paginate(request, rows, page, transform=_approval_out)


@router.post(
    "/teams/{slug}/runs/{run_id}/approve",
    response=with_errors({200: RunDetailOut}, 400, 401, 403, 404, 409, 429),
    operation_id="approvals_approve",
)
def approval_approve(request: HttpRequest, slug: str, run_id: int) -> dict[str, Any]:
    """Approve a run waiting for approval: it is queued and starts. Admins and owners
    other than the one who asked; 403 `own_request` for them, 409 when decided or expired."""
    team = _membership(request, slug, Role.ADMIN).team
    run = selectors.run_get(team=team, run_id=run_id)
    run = approvals.approval_approve(run=run, actor=principal(request).user, request=request)
    return _run_out(run, targets=True)


@router.post(
    "/teams/{slug}/runs/{run_id}/deny",
    response=with_errors({200: RunDetailOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="approvals_deny",
)
def approval_deny(
    request: HttpRequest, slug: str, run_id: int, payload: ApprovalDenyIn
) -> dict[str, Any]:
    """Deny a run waiting for approval, with a reason: it ends cancelled, not started."""
    team = _membership(request, slug, Role.ADMIN).team
    run = selectors.run_get(team=team, run_id=run_id)
    run = approvals.approval_deny(
        run=run, actor=principal(request).user, reason=payload.reason, request=request
    )
    return _run_out(run, targets=True)


@router.post(
    "/teams/{slug}/runs/{run_id}/rerun-failed",
    response=with_errors({201: RunDetailOut}, 400, 401, 403, 404, 409, 410, 429),
    operation_id="runs_rerun_failed",
)
def run_rerun_failed(request: HttpRequest, slug: str, run_id: int) -> Status:
    """Start a new run of the same action and parameters on only the failed servers."""
    team = _membership(request, slug, Role.OPERATOR).team
    run = selectors.run_get(team=team, run_id=run_id)
    new_run = services.run_rerun_failed(run=run, actor=principal(request).user, request=request)
    return Status(201, _run_out(new_run, targets=True))


@router.post(
    "/teams/{slug}/runs/{run_id}/again",
    response=with_errors({201: RunDetailOut}, 400, 401, 403, 404, 409, 410, 422, 429),
    operation_id="runs_again",
)
def run_again(
    request: HttpRequest, slug: str, run_id: int, payload: RunAgainIn | None = None
) -> Status:
    """Start a finished run's action again: on its servers and with its values
    (secrets included, never shown), unless the body replaces them."""
    team = _membership(request, slug, Role.OPERATOR).team
    run = selectors.run_get(team=team, run_id=run_id)
    payload = payload or RunAgainIn.model_validate({})
    server_ids: list[int] | None = None
    tags: list[str] | None = None
    if (payload.targets, payload.server_ids, payload.tags) != (None, None, None):
        server_ids, tags = _split_targets(
            team, payload.targets or [], payload.server_ids or [], payload.tags or []
        )
    new_run = services.run_again(
        run=run,
        actor=principal(request).user,
        server_ids=server_ids,
        tags=tags,
        values=payload.params,
        trigger=Run.Trigger.API,
        request=request,
    )
    return Status(201, _run_out(new_run, targets=True))


# --- schedules ---------------------------------------------------------------------------


class ScheduleIn(Input):
    name: str = Field(..., min_length=1, max_length=100)
    cron: str = Field(
        ..., description="Five fields (minute hour day-of-month month day-of-week), or @daily etc."
    )
    timezone: str = Field("UTC", description="An IANA time zone name, e.g. Europe/Berlin.")
    targets: list[str] = Field(
        [], description='Server names, or "tag:NAME" for every server with the tag.'
    )
    server_ids: list[int] = []
    tags: list[str] = []
    params: dict[str, ParamValue] = {}
    default_params: bool = Field(
        False,
        description="Parameters not in `params` take the action's defaults (stored now). "
        "Without it, leaving out a parameter that has a default is refused.",
    )
    enabled: bool = True
    catch_up: bool = Field(
        True, description="After downtime, start one catch-up run for the times missed."
    )


class SchedulePatchIn(Input):
    name: str | None = Field(None, min_length=1, max_length=100)
    cron: str | None = None
    timezone: str | None = None
    targets: list[str] | None = None
    server_ids: list[int] | None = None
    tags: list[str] | None = None
    params: dict[str, ParamValue] | None = Field(
        None,
        description="Replaces the stored values; secret values left out are kept.",
    )
    enabled: bool | None = None
    catch_up: bool | None = None


class ScheduleOut(Schema):
    id: int
    action_id: int
    action_name: str
    name: str
    cron: str
    timezone: str
    enabled: bool
    catch_up: bool
    server_ids: list[int]
    tags: list[str]
    params: ShownParams = Field(..., description="Secret values are masked.")
    next_run_at: datetime | None
    next_times: list[datetime] = Field(..., description="The next five times, in the zone.")
    last_fired_at: datetime | None
    last_outcome: ScheduleOutcome = Field(..., description="Empty until it first fires.")
    last_message: str
    last_run_id: int | None


def _schedule_out(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.pk,
        "action_id": schedule.action_id,
        "action_name": schedule.action.name,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "catch_up": schedule.catch_up,
        "server_ids": [s.pk for s in schedule.servers.all()],
        "tags": list(schedule.tags),
        "params": {
            **schedule.params,
            **dict.fromkeys(schedule.secret_param_values(), "••••••"),
        },
        "next_run_at": schedule.next_run_at if schedule.enabled else None,
        "next_times": schedules.schedule_next_times(schedule=schedule),
        "last_fired_at": schedule.last_fired_at,
        "last_outcome": schedule.last_outcome,
        "last_message": schedule.last_message,
        "last_run_id": schedule.last_run_id,
    }


@router.get(
    "/teams/{slug}/schedules",
    response=with_errors({200: Page[ScheduleOut]}, 400, 401, 404, 422, 429),
    operation_id="schedules_list",
)
def schedule_list(request: HttpRequest, slug: str, pagination: Query[PageParams]) -> dict[str, Any]:
    """The team's schedules, by action and name."""
    team = _membership(request, slug).team
    items = schedules.schedules_for_team(team=team).prefetch_related("servers")
    return paginate(request, items, pagination, transform=_schedule_out)


@router.post(
    "/teams/{slug}/actions/{action_id}/schedules",
    response=with_errors({201: ScheduleOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="schedules_create",
)
def schedule_create(request: HttpRequest, slug: str, action_id: int, payload: ScheduleIn) -> Status:
    """Schedule an action (operators and above). Targets and values are checked as
    a manual run's: no targets or a missing value is refused (400)."""
    team = _membership(request, slug, Role.OPERATOR).team
    action = selectors.action_get(team=team, action_id=action_id)
    server_ids, tags = _split_targets(team, payload.targets, payload.server_ids, payload.tags)
    schedule = schedules.schedule_create(
        action=action,
        actor=principal(request).user,
        name=payload.name,
        cron_expression=payload.cron,
        timezone_name=payload.timezone,
        server_ids=server_ids,
        tags=tags,
        values=payload.params,
        default_params=payload.default_params,
        enabled=payload.enabled,
        catch_up=payload.catch_up,
        request=request,
    )
    return Status(201, _schedule_out(schedule))


@router.get(
    "/teams/{slug}/schedules/{schedule_id}",
    response=with_errors({200: ScheduleOut}, 400, 401, 404, 429),
    operation_id="schedules_get",
)
def schedule_get(request: HttpRequest, slug: str, schedule_id: int) -> dict[str, Any]:
    """One schedule, with its next five times."""
    team = _membership(request, slug).team
    return _schedule_out(schedules.schedule_get(team=team, schedule_id=schedule_id))


@router.patch(
    "/teams/{slug}/schedules/{schedule_id}",
    response=with_errors({200: ScheduleOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="schedules_update",
)
def schedule_update(
    request: HttpRequest, slug: str, schedule_id: int, payload: SchedulePatchIn
) -> dict[str, Any]:
    """Change some fields of a schedule (operators and above)."""
    team = _membership(request, slug, Role.OPERATOR).team
    schedule = schedules.schedule_get(team=team, schedule_id=schedule_id)
    given = payload.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    for key, name in (("name", "name"), ("cron", "cron_expression"), ("timezone", "timezone_name")):
        if key in given:
            changes[name] = given[key]
    for key in ("enabled", "catch_up"):
        if key in given:
            changes[key] = given[key]
    if {"targets", "server_ids", "tags"} & set(given):
        changes["server_ids"], changes["tags"] = _split_targets(
            team, given.get("targets") or [], given.get("server_ids") or [], given.get("tags") or []
        )
    if "params" in given:
        changes["values"] = given["params"] or {}
        changes["keep_secrets"] = list(schedule.secret_param_values())
    schedule = schedules.schedule_update(
        schedule=schedule, actor=principal(request).user, request=request, **changes
    )
    return _schedule_out(schedule)


@router.delete(
    "/teams/{slug}/schedules/{schedule_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 429),
    operation_id="schedules_delete",
)
def schedule_delete(request: HttpRequest, slug: str, schedule_id: int) -> Status:
    """Delete a schedule; the runs it started stay in the history."""
    team = _membership(request, slug, Role.OPERATOR).team
    schedule = schedules.schedule_get(team=team, schedule_id=schedule_id)
    schedules.schedule_delete(schedule=schedule, actor=principal(request).user, request=request)
    return Status(204, None)


# --- webhooks ----------------------------------------------------------------------------


class WebhookIn(Input):
    name: str = Field(..., min_length=1, max_length=100)
    targets: list[str] = Field(
        [], description='Server names, or "tag:NAME" for every server with the tag.'
    )
    server_ids: list[int] = []
    tags: list[str] = []
    params: dict[str, ParamValue] = Field({}, description="Fixed values.")
    mapping: dict[str, str] = Field(
        {},
        description="Parameter name -> dotted path in the body of a delivery "
        '("ref", "head_commit.id"). A parameter is either fixed or mapped.',
    )
    require_signature: bool = True
    enabled: bool = True


class WebhookPatchIn(Input):
    name: str | None = Field(None, min_length=1, max_length=100)
    targets: list[str] | None = None
    server_ids: list[int] | None = None
    tags: list[str] | None = None
    params: dict[str, ParamValue] | None = Field(
        None, description="Replaces the fixed values; secret values left out are kept."
    )
    mapping: dict[str, str] | None = None
    require_signature: bool | None = None
    enabled: bool | None = None


class WebhookOut(Schema):
    id: int
    action_id: int
    action_name: str
    name: str
    url: str | None = Field(
        ..., description="The delivery URL; null for viewers (it is a credential)."
    )
    enabled: bool
    require_signature: bool
    server_ids: list[int]
    tags: list[str]
    params: ShownParams = Field(..., description="Fixed values; secret values are masked.")
    mapping: dict[str, str]


class WebhookSecretOut(WebhookOut):
    secret: str = Field(..., description="The signing secret: shown this once, never again.")


def _webhook_out(
    request: HttpRequest, hook: Webhook, *, show_url: bool, secret: str | None = None
) -> dict[str, Any]:
    out = {
        "id": hook.pk,
        "action_id": hook.action_id,
        "action_name": hook.action.name,
        "name": hook.name,
        "url": request.build_absolute_uri(webhooks.webhook_path(hook)) if show_url else None,
        "enabled": hook.enabled,
        "require_signature": hook.require_signature,
        "server_ids": [s.pk for s in hook.servers.all()],
        "tags": list(hook.tags),
        "params": {**hook.params, **dict.fromkeys(hook.secret_param_values(), "••••••")},
        "mapping": dict(hook.mapping),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _shows_url(membership: Membership) -> bool:
    return membership.role_enum.at_least(Role.OPERATOR)


@router.get(
    "/teams/{slug}/webhooks",
    response=with_errors({200: Page[WebhookOut]}, 400, 401, 404, 422, 429),
    operation_id="webhooks_list",
)
def webhook_list(request: HttpRequest, slug: str, pagination: Query[PageParams]) -> dict[str, Any]:
    """The team's webhooks, by action and name."""
    membership = _membership(request, slug)
    items = webhooks.webhooks_for_team(team=membership.team).prefetch_related("servers")
    show = _shows_url(membership)
    return paginate(
        request,
        items,
        pagination,
        transform=lambda hook: _webhook_out(request, hook, show_url=show),
    )


@router.post(
    "/teams/{slug}/actions/{action_id}/webhooks",
    response=with_errors({201: WebhookSecretOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="webhooks_create",
)
def webhook_create(request: HttpRequest, slug: str, action_id: int, payload: WebhookIn) -> Status:
    """Give an action a webhook (operators and above). The answer carries the
    signing secret, once. Targets and fixed values are checked as a run's."""
    team = _membership(request, slug, Role.OPERATOR).team
    action = selectors.action_get(team=team, action_id=action_id)
    server_ids, tags = _split_targets(team, payload.targets, payload.server_ids, payload.tags)
    hook, secret = webhooks.webhook_create(
        action=action,
        actor=principal(request).user,
        name=payload.name,
        server_ids=server_ids,
        tags=tags,
        values=payload.params,
        mapping=payload.mapping,
        require_signature=payload.require_signature,
        enabled=payload.enabled,
        request=request,
    )
    return Status(201, _webhook_out(request, hook, show_url=True, secret=secret))


@router.get(
    "/teams/{slug}/webhooks/{webhook_id}",
    response=with_errors({200: WebhookOut}, 400, 401, 404, 429),
    operation_id="webhooks_get",
)
def webhook_get(request: HttpRequest, slug: str, webhook_id: int) -> dict[str, Any]:
    """One webhook (never its secret; its URL only for operators and up)."""
    membership = _membership(request, slug)
    hook = webhooks.webhook_get(team=membership.team, webhook_id=webhook_id)
    return _webhook_out(request, hook, show_url=_shows_url(membership))


@router.patch(
    "/teams/{slug}/webhooks/{webhook_id}",
    response=with_errors({200: WebhookOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="webhooks_update",
)
def webhook_update(
    request: HttpRequest, slug: str, webhook_id: int, payload: WebhookPatchIn
) -> dict[str, Any]:
    """Change some fields of a webhook (operators and above); URL and secret stay."""
    team = _membership(request, slug, Role.OPERATOR).team
    hook = webhooks.webhook_get(team=team, webhook_id=webhook_id)
    given = payload.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {
        key: given[key]
        for key in ("name", "mapping", "require_signature", "enabled")
        if key in given and given[key] is not None
    }
    if {"targets", "server_ids", "tags"} & set(given):
        changes["server_ids"], changes["tags"] = _split_targets(
            team, given.get("targets") or [], given.get("server_ids") or [], given.get("tags") or []
        )
    if "params" in given:
        changes["values"] = given["params"] or {}
        changes["keep_secrets"] = list(hook.secret_param_values())
    hook = webhooks.webhook_update(
        webhook=hook, actor=principal(request).user, request=request, **changes
    )
    return _webhook_out(request, hook, show_url=True)


@router.post(
    "/teams/{slug}/webhooks/{webhook_id}/secret",
    response=with_errors({200: WebhookSecretOut}, 400, 401, 403, 404, 429),
    operation_id="webhooks_secret_rotate",
)
def webhook_secret(request: HttpRequest, slug: str, webhook_id: int) -> dict[str, Any]:
    """A new signing secret (operators and above), shown once; the old one stops working."""
    team = _membership(request, slug, Role.OPERATOR).team
    hook = webhooks.webhook_get(team=team, webhook_id=webhook_id)
    hook, secret = webhooks.webhook_secret_regenerate(
        webhook=hook, actor=principal(request).user, request=request
    )
    return _webhook_out(request, hook, show_url=True, secret=secret)


@router.delete(
    "/teams/{slug}/webhooks/{webhook_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 429),
    operation_id="webhooks_delete",
)
def webhook_delete(request: HttpRequest, slug: str, webhook_id: int) -> Status:
    """Delete a webhook: its URL answers 404; the runs it started stay in the history."""
    team = _membership(request, slug, Role.OPERATOR).team
    hook = webhooks.webhook_get(team=team, webhook_id=webhook_id)
    webhooks.webhook_delete(webhook=hook, actor=principal(request).user, request=request)
    return Status(204, None)
