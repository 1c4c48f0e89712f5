"""Pages for actions and runs, and the run page's live-output endpoints.

Live output is long-polled (`run_live`): docs/actions.md has the measurements
that decided it against Server-Sent Events (`run_stream`, kept for comparison).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from pipetower.actions import conf, selectors, services
from pipetower.actions.forms import (
    ActionForm,
    ParameterFormSet,
    RunFilterForm,
    RunForm,
    parameters_from_formset,
    parameters_initial,
)
from pipetower.actions.models import FAILED_STATUSES, Action, Run
from pipetower.core.errors import ServiceError
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view

RUNS_PER_PAGE = 25
LIVE_WAIT_MAX = 20.0
# How the run page polls (docs/actions.md, "Live output", has the measurements):
# a request may wait up to LIVE_WAIT seconds for something new, but only while
# fewer than `conf.live_waiters()` requests of this process are waiting; the
# others answer at once and ask the page to come back after LIVE_BUSY_RETRY_MS.
LIVE_WAIT = 10.0
LIVE_PAUSE_MS = 200
LIVE_BUSY_RETRY_MS = 1000
_waiting = 0
_waiting_lock = threading.Lock()


def _take_waiting_slot() -> bool:
    global _waiting
    with _waiting_lock:
        if _waiting >= conf.live_waiters():
            return False
        _waiting += 1
        return True


def _release_waiting_slot() -> None:
    global _waiting
    with _waiting_lock:
        _waiting -= 1


def _role(request: HttpRequest) -> Role:
    return request.membership.role_enum  # type: ignore[attr-defined]


def _can(request: HttpRequest, role: Role) -> bool:
    return _role(request).at_least(role)


# --- actions -----------------------------------------------------------------------


@team_view()
def action_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    page = Paginator(selectors.actions_for_team(team=team), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "actions/action_list.html",
        {
            "page": page,
            "can_manage": _can(request, Role.ADMIN),
            "can_run": _can(request, Role.OPERATOR),
        },
    )


def _action_form_page(request: HttpRequest, action: Action | None) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    if request.method == "POST":
        form = ActionForm(request.POST, team=team)
        formset = ParameterFormSet(request.POST, prefix="params")
        if form.is_valid() and formset.is_valid():
            fields = form.service_fields()
            fields["parameters"] = parameters_from_formset(
                formset, keep_secrets=action.secret_default_values() if action else None
            )
            try:
                if action is None:
                    action = services.action_create(
                        team=team, actor=request.user, request=request, **fields
                    )
                    messages.success(request, f"Action “{action.name}” created.")
                else:
                    action = services.action_update(
                        action=action, actor=request.user, request=request, **fields
                    )
                    messages.success(request, f"Action “{action.name}” saved.")
                return redirect("actions:detail", team.slug, action.pk)
            except ServiceError as exc:
                form.add_service_error(exc)
        form.mark_invalid()
    else:
        form = ActionForm(initial=ActionForm.initial_for(action) if action else None, team=team)
        formset = ParameterFormSet(initial=parameters_initial(action), prefix="params")
    return render(
        request,
        "actions/action_form.html",
        {"form": form, "formset": formset, "action": action},
        status=400 if request.method == "POST" else 200,
    )


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def action_create(request: HttpRequest) -> HttpResponse:
    return _action_form_page(request, None)


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def action_edit(request: HttpRequest, action_id: int) -> HttpResponse:
    action = selectors.action_get(team=request.team, action_id=action_id)  # type: ignore[attr-defined]
    return _action_form_page(request, action)


@team_view()
def action_detail(request: HttpRequest, action_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    action = selectors.action_get(team=team, action_id=action_id)
    recent = selectors.runs_for_team(team=team, filters=selectors.RunFilters(action=action.pk))[:10]
    return render(
        request,
        "actions/action_detail.html",
        {
            "action": action,
            "recent_runs": recent,
            "default_servers": action.default_servers.order_by("name"),
            "can_manage": _can(request, Role.ADMIN),
            "can_run": _can(request, Role.OPERATOR),
        },
    )


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def action_delete(request: HttpRequest, action_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    action = selectors.action_get(team=team, action_id=action_id)
    if request.method == "POST":
        name = action.name
        services.action_delete(action=action, actor=request.user, request=request)
        messages.success(request, f"Action “{name}” deleted. Its runs stay in the history.")
        return redirect("actions:list", team.slug)
    return render(request, "actions/action_delete.html", {"action": action})


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def action_run(request: HttpRequest, action_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    action = selectors.action_get(team=team, action_id=action_id)
    form = RunForm(request.POST or None, action=action)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                run = services.run_start(
                    action=action,
                    actor=request.user,
                    trigger=Run.Trigger.WEB,
                    request=request,
                    **form.service_fields(),
                )
                return redirect("runs:detail", team.slug, run.pk)
            except ServiceError as exc:
                form.add_service_error(exc)
        form.mark_invalid()
    return render(request, "actions/run_form.html", {"action": action, "form": form}, status=status)


# --- runs --------------------------------------------------------------------------


@team_view()
def run_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    form = RunFilterForm(request.GET or None, team=team)
    filters = selectors.RunFilters()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = selectors.RunFilters(
            action=int(data["action"]) if data["action"] else None,
            status=data["status"] or "",
            server=int(data["server"]) if data["server"] else None,
            who=int(data["who"]) if data["who"] else None,
            since=data["since"],
            until=data["until"],
        )
    runs = selectors.runs_for_team(team=team, filters=filters).only(
        *("id", "rerun_of_id", "action_name", "status", "created_at", "finished_at"),
        *("started_by__name", "started_by__email"),
    )
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "actions/run_list.html",
        {
            "page": page,
            "rows": _run_rows(page.object_list),
            "form": form,
            "query": query.urlencode(),
            "filtered": bool(query),
        },
    )


def _run_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """What each row of the run history shows, formatted here: template filters per
    row (date, floatformat) cost more than the rest of the page."""
    rows = []
    for run in runs:
        duration = run.duration
        rows.append(
            {
                "pk": run.pk,
                "rerun_of": run.rerun_of_id,
                "action": run.action_name,
                "status": run.status,
                "label": run.get_status_display(),
                "started": timezone.localtime(run.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                "duration": f"{duration.total_seconds():.1f} s" if duration else "",
                "by": str(run.started_by) if run.started_by else "system",
            }
        )
    return rows


@team_view()
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    run = selectors.run_get(team=team, run_id=run_id)
    targets = list(selectors.run_targets(run=run))
    for target in targets:  # formatted once here, not by a filter per row
        duration = target.duration
        target.duration_text = f"{duration.total_seconds():.1f} s" if duration else ""  # type: ignore[attr-defined]
    live = {
        "live": reverse("runs:live", args=[team.slug, run.pk]),
        "chunks": reverse("runs:chunks", args=[team.slug, run.pk, 0]),
        "revision": 0,
        "finished": run.is_finished,
        "wait": LIVE_WAIT,
        "pause": LIVE_PAUSE_MS,
    }
    return render(
        request,
        "actions/run_detail.html",
        {
            "run": run,
            "targets": targets,
            "counts": selectors.target_status_counts_for(runs=[run])[run.pk],
            "params": run.masked_params(),
            "live": live,
            "can_run": _can(request, Role.OPERATOR),
            "has_failed": any(t.status in FAILED_STATUSES for t in targets),
        },
    )


def _wait_param(request: HttpRequest) -> float:
    try:
        return min(LIVE_WAIT_MAX, max(0.0, float(request.GET.get("wait", "0"))))
    except ValueError:
        return 0.0


def _revision_param(request: HttpRequest) -> int:
    raw = request.GET.get("rev", "0")
    return int(raw) if raw.isdigit() else 0


@never_cache
@team_view()
def run_live(request: HttpRequest, run_id: int) -> JsonResponse:
    """Long-poll: new chunks of the followed targets and changed statuses.

    `?rev=N&after=TARGET:SEQ,...&wait=S` answers as soon as anything is new,
    or after S seconds (at most 20) with nothing.
    """
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    wait = _wait_param(request)
    holding = wait > 0 and _take_waiting_slot()
    try:
        body = selectors.live_wait(
            run=run,
            revision=_revision_param(request),
            cursor=selectors.parse_cursor(request.GET.get("after", "")),
            wait=wait if holding else 0.0,
        )
    finally:
        if holding:
            _release_waiting_slot()
    body["retry_ms"] = LIVE_PAUSE_MS if holding or wait == 0 else LIVE_BUSY_RETRY_MS
    return JsonResponse(body)


@never_cache
@team_view()
def run_stream(request: HttpRequest, run_id: int) -> HttpResponse:
    """The same changes as `run_live`, as Server-Sent Events (measured, not used by the page)."""
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    revision = _revision_param(request)
    cursor = selectors.parse_cursor(request.GET.get("after", ""))
    limit = _wait_param(request) or LIVE_WAIT_MAX

    def events() -> Iterator[str]:
        nonlocal revision
        deadline = time.monotonic() + limit
        yield "retry: 1000\n\n"
        while time.monotonic() < deadline:
            changes = selectors.live_changes(run=run, revision=revision, cursor=cursor)
            if changes is None:
                time.sleep(0.1)
                continue
            revision = changes["revision"]
            for chunk in changes["chunks"]:
                cursor[chunk["target"]] = chunk["seq"]
            yield f"data: {json.dumps(changes)}\n\n"
            if changes["run"]["finished"] and not changes["more"]:
                return

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["X-Accel-Buffering"] = "no"
    return response  # type: ignore[return-value]


@never_cache
@team_view()
def run_target_chunks(request: HttpRequest, run_id: int, target_id: int) -> JsonResponse:
    """The tail of a target's output (`?before=SEQ` pages back), oldest first."""
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    target = selectors.run_target_get(run=run, target_id=target_id)
    before = request.GET.get("before", "")
    rows, more = selectors.chunks_tail(
        target=target, before=int(before) if before.isdigit() else None
    )
    return JsonResponse(
        {
            "target": selectors.target_dict(target),
            "chunks": [selectors.chunk_dict(c) for c in rows],
            "more_before": more,
        }
    )


def _download(name: str, body: Iterator[str]) -> HttpResponse:
    response = StreamingHttpResponse(
        (part.encode() for part in body), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response  # type: ignore[return-value]


@team_view()
def run_target_download(request: HttpRequest, run_id: int, target_id: int) -> HttpResponse:
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    target = selectors.run_target_get(run=run, target_id=target_id)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in target.server_name)
    return _download(
        f"run-{run.pk}-{safe}.txt", selectors.output_text(targets=[target], headers=False)
    )


@team_view()
def run_download(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    targets = list(selectors.run_targets(run=run))
    return _download(f"run-{run.pk}.txt", selectors.output_text(targets=targets, headers=True))


@require_POST
@team_view(roles={"POST": Role.OPERATOR})
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    run = selectors.run_get(team=team, run_id=run_id)
    try:
        services.run_cancel(run=run, actor=request.user, request=request)
        messages.success(
            request, "Cancelling: servers not started are skipped, running scripts are stopped."
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("runs:detail", team.slug, run.pk)


@require_POST
@team_view(roles={"POST": Role.OPERATOR})
def run_rerun(request: HttpRequest, run_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    run = selectors.run_get(team=team, run_id=run_id)
    try:
        new_run = services.run_rerun_failed(run=run, actor=request.user, request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("runs:detail", team.slug, run.pk)
    messages.success(request, f"Re-running the failed servers of run {run.pk}.")
    return redirect("runs:detail", team.slug, new_run.pk)
