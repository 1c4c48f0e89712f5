"""An action's history: its versions, one version with its changes, and restoring one."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from pipetower.actions import selectors, services, versions
from pipetower.core.errors import ServiceError
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view

VERSIONS_PER_PAGE = 50


@team_view()
def action_history(request: HttpRequest, action_id: int) -> HttpResponse:
    action = selectors.action_get(team=request.team, action_id=action_id)  # type: ignore[attr-defined]
    page = Paginator(versions.versions_for_action(action=action), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "actions/action_history.html", {"action": action, "page": page})


@team_view()
def action_version(request: HttpRequest, action_id: int, n: int) -> HttpResponse:
    """Version `n`: its content, and what changed from `?against=` (the version
    before it unless another is chosen)."""
    action = selectors.action_get(team=request.team, action_id=action_id)  # type: ignore[attr-defined]
    version = versions.action_version_get(action=action, number=n)
    numbers = list(versions.versions_for_action(action=action).values_list("number", flat=True))
    against_error = ""
    raw = request.GET.get("against", "")
    against_number = version.number - 1
    if raw:
        try:
            against_number = int(raw)
        except ValueError:
            against_number = 0
        if against_number not in numbers:
            against_error = (
                f"There is no version {raw[:20]} to compare with; showing the one before."
            )
            against_number = version.number - 1
    old = (
        versions.action_version_get(action=action, number=against_number)
        if against_number in numbers and against_number != version.number
        else None
    )
    return render(
        request,
        "actions/action_version.html",
        {
            "action": action,
            "version": version,
            "diff": versions.version_diff(old=old, new=version),
            "numbers": numbers,
            "against_error": against_error,
            "is_current": version.number == action.current_version,
            "can_restore": services.action_version_restore_refusal(
                action=action, actor=request.user
            )
            is None,
        },
        status=400 if against_error else 200,
    )


@require_POST
@team_view(roles={"POST": Role.ADMIN})
def action_version_restore(request: HttpRequest, action_id: int, n: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    action = selectors.action_get(team=team, action_id=action_id)
    version = versions.action_version_get(action=action, number=n)
    try:
        new = services.action_version_restore(
            action=action, number=version.number, actor=request.user, request=request
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("actions:version", team.slug, action.pk, version.number)
    messages.success(
        request,
        f"Version {version.number} restored: the action now runs it as version {new.number}.",
    )
    return redirect("actions:version", team.slug, action.pk, new.number)
