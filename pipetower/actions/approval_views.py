"""Pages for approvals: the team's Approvals page and the run page's Approve and Deny
buttons. Thin: they parse the input and call actions/approvals.py."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from pipetower.actions import approvals, selectors
from pipetower.actions.models import ApprovalRequest
from pipetower.core.errors import ServiceError
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view

APPROVALS_PER_PAGE = 25


@team_view()
def approval_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    state = request.GET.get("state", "")
    if state not in ("", "waiting", "decided"):
        state = ""
    rows = selectors.approvals_for_team(team=team, state=state)
    page = Paginator(rows, APPROVALS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "actions/approval_list.html",
        {"page": page, "state": state},
    )


def approval_context(*, run: Any, user: Any) -> dict[str, Any]:
    """What the run page's Approval card shows (nothing for a run without a request)."""
    approval = (
        ApprovalRequest.objects.filter(run_id=run.pk)
        .select_related("requested_by", "decided_by")
        .first()
    )
    if approval is None:
        return {"approval": None}
    refusal = approvals.approval_refusal(run=run, actor=user)
    return {
        "approval": approval,
        "can_decide": refusal is None,
        "approval_refusal": refusal.message if refusal and approval.is_waiting else "",
    }


@require_POST
@team_view(roles={"POST": Role.ADMIN})
def run_approve(request: HttpRequest, run_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    run = selectors.run_get(team=team, run_id=run_id)
    try:
        approvals.approval_approve(run=run, actor=request.user, request=request)
        messages.success(request, "Approved: the run is queued and starts shortly.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("runs:detail", team.slug, run.pk)


@require_POST
@team_view(roles={"POST": Role.ADMIN})
def run_deny(request: HttpRequest, run_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    run = selectors.run_get(team=team, run_id=run_id)
    try:
        approvals.approval_deny(
            run=run, actor=request.user, reason=request.POST.get("reason", ""), request=request
        )
        messages.success(request, "Denied: the run will not start.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("runs:detail", team.slug, run.pk)
