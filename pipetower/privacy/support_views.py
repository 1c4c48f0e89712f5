"""The team's support access page: grant, revoke, and what staff did."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.privacy import support_access
from pipetower.privacy.forms import SupportGrantForm
from pipetower.teams.models import Membership, Role, Team
from pipetower.teams.permissions import team_view

LOG_PAGE_SIZE = 50


@team_view(roles={"POST": Role.ADMIN})
def support_access_page(request: HttpRequest) -> HttpResponse:
    team = cast(Team, request.team)  # type: ignore[attr-defined]
    me = cast(Membership, request.membership)  # type: ignore[attr-defined]
    # A staff member's stand-in membership never manages grants.
    can_manage = me.pk is not None and support_access.support_grant_refusal(me) is None
    form = SupportGrantForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            grant = support_access.support_grant_create(
                team=team,
                actor=cast(User, request.user),
                scope=form.cleaned_data["scope"],
                reason=form.cleaned_data["reason"],
                duration=timedelta(days=form.cleaned_data["days"]),
                request=request,
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            until = timezone.localtime(grant.expires_at)
            messages.success(
                request,
                f"Pipetower staff have {grant.get_scope_display().lower()} access "
                f"until {until:%d %B %Y, %H:%M}.",
            )
            return redirect("support_access:list", team_slug=team.slug)
    grants = list(support_access.support_grants_for_team(team=team))
    log = Paginator(support_access.staff_accesses_for_team(team=team), LOG_PAGE_SIZE)
    return render(
        request,
        "privacy/support_access.html",
        {
            "team": team,
            "form": form,
            "can_manage": can_manage,
            "active": [g for g in grants if g.is_active()],
            "past": [g for g in grants if not g.is_active()],
            "log": log.get_page(request.GET.get("page")),
            "max_days": support_access.SUPPORT_GRANT_MAX_DAYS,
        },
        status=400 if form.errors else 200,
    )


@team_view(roles={"POST": Role.ADMIN})
def support_grant_revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    team = cast(Team, request.team)  # type: ignore[attr-defined]
    if request.method != "POST":
        return redirect("support_access:list", team_slug=team.slug)
    grant = support_access.support_grant_get(team=team, grant_id=grant_id)
    try:
        support_access.support_grant_revoke(
            grant=grant, actor=cast(User, request.user), request=request
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Support access revoked. Staff can no longer see this team.")
    return redirect("support_access:list", team_slug=team.slug)
