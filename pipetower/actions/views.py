"""Pages for actions and runs, and the run page's live-output endpoint.

Live output (`run_live`) waits on the event loop, not on a request thread:
`pipetower/actions/live.py` and docs/actions.md ("Live output") say how.
"""

from __future__ import annotations

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

from pipetower.actions import cron, live, schedules, selectors, services, webhooks
from pipetower.actions.approval_views import approval_context
from pipetower.actions.forms import (
    ActionForm,
    ParameterFormSet,
    RunFilterForm,
    RunForm,
    ScheduleForm,
    parameters_from_formset,
    parameters_initial,
)
from pipetower.actions.models import FAILED_STATUSES, Action, Run, RunStatus, Schedule
from pipetower.core.errors import ServiceError
from pipetower.core.outbox import outbox_waiting
from pipetower.core.query import whole_number
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view

RUNS_PER_PAGE = 25
LIVE_WAIT_MAX = 20.0


def _role(request: HttpRequest) -> Role:
    return request.membership.role_enum  # type: ignore[attr-defined]


def _can(request: HttpRequest, role: Role) -> bool:
    return _role(request).at_least(role)


# --- actions -----------------------------------------------------------------------


@team_view()
def action_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    actions = selectors.actions_for_team_with_last_run(team=team)
    page = Paginator(actions, 50).get_page(request.GET.get("page"))
    for action in page.object_list:
        status = action.last_run_status  # type: ignore[attr-defined]
        action.last_run_label = RunStatus(status).label if status else ""  # type: ignore[attr-defined]
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
                    before = action.current_version
                    action = services.action_update(
                        action=action, actor=request.user, request=request, **fields
                    )
                    new = action.current_version
                    messages.success(
                        request,
                        f"Action “{action.name}” saved"
                        + (f" as version {new}." if new != before else "."),
                    )
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
            "schedules": _schedule_rows(schedules.schedules_for_team(team=team, action=action)),
            "webhooks": webhooks.webhooks_for_team(team=team, action=action),
            "can_manage": _can(request, Role.ADMIN),
            "can_run": _can(request, Role.OPERATOR),
            "can_schedule": schedules.schedule_refusal(team=team, user=request.user) is None,
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


def _run_form_page(request: HttpRequest, action: Action, again_of: Run | None) -> HttpResponse:
    """The run form: for an action (pre-filled with its defaults) or to run a
    finished run again (pre-filled with its targets and values). What the form
    shows when Start is pressed is exactly what runs, or the form comes back."""
    team = request.team  # type: ignore[attr-defined]
    data = request.POST if request.method == "POST" else None  # all unticked is still a post
    form = RunForm(data, action=action, again_of=again_of)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            fields = form.service_fields()
            try:
                if again_of is None:
                    run = services.run_start(
                        action=action,
                        actor=request.user,
                        trigger=Run.Trigger.WEB,
                        request=request,
                        **fields,
                    )
                else:
                    run = services.run_again(
                        run=again_of,
                        actor=request.user,
                        trigger=Run.Trigger.WEB,
                        request=request,
                        **fields,
                    )
                return redirect("runs:detail", team.slug, run.pk)
            except ServiceError as exc:
                form.add_service_error(exc)
        form.mark_invalid()
    return render(
        request,
        "actions/run_form.html",
        {
            "action": action,
            "form": form,
            "again_of": again_of,
            "action_changed": again_of is not None and action.updated_at > again_of.created_at,
        },
        status=status,
    )


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def action_run(request: HttpRequest, action_id: int) -> HttpResponse:
    action = selectors.action_get(team=request.team, action_id=action_id)  # type: ignore[attr-defined]
    return _run_form_page(request, action, None)


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def run_again(request: HttpRequest, run_id: int) -> HttpResponse:
    """ "Run again": the run form, pre-filled with this finished run's targets and values."""
    team = request.team  # type: ignore[attr-defined]
    run = selectors.run_get(team=team, run_id=run_id)
    try:
        action = services.run_again_check(run=run)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("runs:detail", team.slug, run.pk)
    return _run_form_page(request, action, run)


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
            sort=data["sort"] or "newest",
        )
    runs = selectors.runs_for_team(team=team, filters=filters).only(
        *("id", "rerun_of_id", "action_name", "status", "created_at", "finished_at"),
        *("trigger", "schedule_name", "webhook_name"),
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
        status=400 if form.is_bound and form.errors else 200,
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
                "by": run.started_by_text,
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
        "status": run.status,
        "created": run.created_at.isoformat(),
        "total": len(targets),
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
            "can_run_again": run.is_finished and run.action_id is not None,
            **approval_context(run=run, user=request.user),
            # "broker" or "worker" while the run's tasks wait (core/outbox.py).
            "waiting_for": None
            if run.is_finished
            else outbox_waiting([services.run_subject(run.pk)]).get(services.run_subject(run.pk)),
        },
    )


def _wait_param(request: HttpRequest) -> float:
    try:
        return min(LIVE_WAIT_MAX, max(0.0, float(request.GET.get("wait", "0"))))
    except ValueError:
        return 0.0


def _revision_param(request: HttpRequest) -> int:
    return whole_number(request.GET.get("rev"), name="rev", default=0)


@never_cache
@team_view()
def run_live(request: HttpRequest, run_id: int) -> JsonResponse:
    """New chunks of the followed targets and changed statuses (live.live_answer).

    `?rev=N&after=TARGET:SEQ,...` answers what is new; with `&wait=S` (at most
    20) it answers as soon as anything is new or after S seconds; with
    `&stream=1` it streams every change as Server-Sent Events until the run ends.
    """
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    return live.live_answer(
        request,
        run=run,
        revision=_revision_param(request),
        cursor=selectors.parse_cursor(request.GET.get("after", "")),
        wait=_wait_param(request),
        stream=request.GET.get("stream") == "1",
    )


@never_cache
@team_view()
def run_target_chunks(request: HttpRequest, run_id: int, target_id: int) -> JsonResponse:
    """The tail of a target's output (`?before=SEQ` pages back), oldest first."""
    run = selectors.run_get(team=request.team, run_id=run_id)  # type: ignore[attr-defined]
    target = selectors.run_target_get(run=run, target_id=target_id)
    before = request.GET.get("before")
    rows, more = selectors.chunks_tail(
        target=target, before=whole_number(before, name="before") if before else None
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


# --- schedules -----------------------------------------------------------------------

SCHEDULES_PER_PAGE = 25


def _schedule_rows(items: Iterable[Schedule]) -> list[dict[str, Any]]:
    rows = []
    for schedule in items:
        zone = cron.zone_for_display(schedule.timezone)
        next_at = schedule.next_run_at if schedule.enabled else None
        rows.append(
            {
                "schedule": schedule,
                "next": next_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if next_at else "",
                "last_fired": (
                    schedule.last_fired_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
                    if schedule.last_fired_at
                    else ""
                ),
            }
        )
    return rows


@team_view()
def schedule_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    page = Paginator(schedules.schedules_for_team(team=team), SCHEDULES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "actions/schedule_list.html",
        {
            "page": page,
            "rows": _schedule_rows(page.object_list),
            "can_manage": schedules.schedule_refusal(team=team, user=request.user) is None,
        },
    )


def _schedule_form_page(
    request: HttpRequest, action: Action, schedule: Schedule | None
) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    preview: list[str] = []
    status = 200
    if request.method == "POST":
        form = ScheduleForm(request.POST, action=action, schedule=schedule)
        previewing = "preview" in request.POST
        valid = form.is_valid()
        if previewing:
            # A preview is about the times: only their fields' errors are shown.
            for name in [n for n in form.errors if n not in ("cron", "timezone")]:
                del form.errors[name]
        data = form.cleaned_data
        if "cron" in data and "timezone" in data and (valid or previewing):
            try:
                times = schedules.schedule_preview(
                    cron_expression=data["cron"], timezone_name=data["timezone"]
                )
                preview = [t.strftime("%a %Y-%m-%d %H:%M %Z") for t in times]
            except ServiceError as exc:
                form.add_service_error(exc)
                valid = False
        if valid and not previewing:
            fields = form.service_fields()
            try:
                if schedule is None:
                    schedule = schedules.schedule_create(
                        action=action, actor=request.user, request=request, **fields
                    )
                    messages.success(request, f"Schedule “{schedule.name}” created.")
                else:
                    schedule = schedules.schedule_update(
                        schedule=schedule, actor=request.user, request=request, **fields
                    )
                    messages.success(request, f"Schedule “{schedule.name}” saved.")
                return redirect("schedules:list", team.slug)
            except ServiceError as exc:
                form.add_service_error(exc)
        if form.errors:
            status = 400
            form.mark_invalid()
    else:
        form = ScheduleForm(action=action, schedule=schedule)
        if schedule is not None:
            zone = cron.zone_for_display(schedule.timezone)
            preview = [
                t.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")
                for t in schedules.schedule_next_times(schedule=schedule)
            ]
    return render(
        request,
        "actions/schedule_form.html",
        {"action": action, "form": form, "schedule": schedule, "preview": preview},
        status=status,
    )


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def schedule_create(request: HttpRequest, action_id: int) -> HttpResponse:
    action = selectors.action_get(team=request.team, action_id=action_id)  # type: ignore[attr-defined]
    return _schedule_form_page(request, action, None)


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def schedule_edit(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = schedules.schedule_get(team=request.team, schedule_id=schedule_id)  # type: ignore[attr-defined]
    return _schedule_form_page(request, schedule.action, schedule)


@require_POST
@team_view(roles={"POST": Role.OPERATOR})
def schedule_toggle(request: HttpRequest, schedule_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    schedule = schedules.schedule_get(team=team, schedule_id=schedule_id)
    enable = not schedule.enabled
    try:
        schedule = schedules.schedule_set_enabled(
            schedule=schedule, actor=request.user, enabled=enable, request=request
        )
    except ServiceError as exc:
        messages.error(request, f"“{schedule.name}” was not enabled: {exc.message}")
        return redirect("schedules:list", team.slug)
    messages.success(request, f"Schedule “{schedule.name}” {'enabled' if enable else 'disabled'}.")
    return redirect("schedules:list", team.slug)


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def schedule_delete(request: HttpRequest, schedule_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    schedule = schedules.schedule_get(team=team, schedule_id=schedule_id)
    if request.method == "POST":
        name = schedule.name
        schedules.schedule_delete(schedule=schedule, actor=request.user, request=request)
        messages.success(request, f"Schedule “{name}” deleted. Its runs stay in the history.")
        return redirect("schedules:list", team.slug)
    return render(request, "actions/schedule_delete.html", {"schedule": schedule})
