"""Team pages. Views parse input and call one service; the services hold the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from allauth.account.decorators import reauthentication_required
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from pipetower.accounts.mfa import has_two_factor, two_factor_code_refusal
from pipetower.accounts.models import User
from pipetower.audit.selectors import audit_events_for_team
from pipetower.core.errors import Conflict, Gone, ServiceError
from pipetower.core.forms import add_service_error
from pipetower.core.outbox import outbox_pending, outbox_waiting
from pipetower.teams import dashboard, permissions, retention, services, signup
from pipetower.teams.forms import (
    InvitationForm,
    MemberRoleForm,
    TeamForm,
    TeamRetentionForm,
    TeamSecurityForm,
)
from pipetower.teams.models import Membership, Role, Team
from pipetower.teams.permissions import team_view
from pipetower.teams.selectors import (
    invitation_find_by_token,
    invitation_get,
    member_get,
    memberships_for_user,
    team_members,
    team_open_invitations,
    team_owner_count,
)

RECENT_EVENTS = 5


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _team(request: HttpRequest) -> Team:
    return cast(Team, request.team)  # type: ignore[attr-defined]


def _membership(request: HttpRequest) -> Membership:
    return cast(Membership, request.membership)  # type: ignore[attr-defined]


def _members_url(team: Team) -> str:
    return reverse("teams:members", kwargs={"team_slug": team.slug})


# --- team list, create, overview, settings, leave ----------------------------


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    memberships = list(memberships_for_user(user=request.user))
    return render(request, "teams/team_list.html", {"memberships": memberships})


@login_required
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(
                user=_user(request), name=form.cleaned_data["name"], request=request
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Team {team.name} created. You are its owner.")
            return redirect("teams:detail", team_slug=team.slug)
    status = 400 if form.errors else 200
    return render(request, "teams/team_form.html", {"form": form}, status=status)


@team_view()
def team_detail(request: HttpRequest) -> HttpResponse:
    team, me = _team(request), _membership(request)
    members = team_members(team=team)
    owner_count = sum(1 for m in members if m.role == Role.OWNER)
    context: dict[str, Any] = {
        "team": team,
        "membership": me,
        "member_count": len(members),
        "role_counts": [
            (role, count) for role in Role if (count := sum(1 for m in members if m.role == role))
        ],
        "can_manage": permissions.can_manage_members(me.role),
        "leave_refusal": permissions.leave_refusal(me, owner_count),
        "recent_events": list(audit_events_for_team(team=team)[:RECENT_EVENTS]),
        "board": dashboard.team_dashboard(team=team, member_count=len(members)),
    }
    if context["can_manage"]:
        context["pending_count"] = sum(1 for i in team_open_invitations(team=team) if i.is_pending)
    return render(request, "teams/team_detail.html", context)


def _retention_initial(team: Team) -> dict[str, int]:
    return {
        "run_retention_days": team.run_retention_days,
        "output_limit_mb": retention.team_output_limit_mb(team),
    }


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def team_settings(request: HttpRequest) -> HttpResponse:
    team = _team(request)
    is_owner = _membership(request).role == Role.OWNER
    section = request.POST.get("section") if request.method == "POST" else None
    form = TeamForm(initial={"name": team.name})
    security_form = TeamSecurityForm(initial={"require_2fa": team.require_2fa}, can_change=is_owner)
    retention_form = TeamRetentionForm(initial=_retention_initial(team))
    if section == "security":
        security_form = TeamSecurityForm(
            request.POST, initial={"require_2fa": team.require_2fa}, can_change=is_owner
        )
        if security_form.is_valid():
            required = security_form.cleaned_data["require_2fa"]
            try:
                services.team_require_2fa_set(
                    team=team, actor=_user(request), required=required, request=request
                )
            except ServiceError as exc:
                add_service_error(security_form, exc)
            else:
                messages.success(
                    request,
                    "Two-factor authentication is now required in this team."
                    if required
                    else "Two-factor authentication is no longer required in this team.",
                )
                return redirect("teams:settings", team_slug=team.slug)
    elif section == "retention":
        retention_form = TeamRetentionForm(request.POST, initial=_retention_initial(team))
        if retention_form.is_valid():
            try:
                services.team_retention_set(
                    team=team, actor=_user(request), request=request, **retention_form.cleaned_data
                )
            except ServiceError as exc:
                add_service_error(retention_form, exc)
            else:
                messages.success(
                    request,
                    f"Finished runs are now kept for {team.run_retention_days} "
                    f"day{'s' if team.run_retention_days != 1 else ''}.",
                )
                return redirect("teams:settings", team_slug=team.slug)
    elif request.method == "POST":
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                services.team_update(
                    team=team, actor=_user(request), name=form.cleaned_data["name"], request=request
                )
            except ServiceError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, "Team settings saved.")
                return redirect("teams:settings", team_slug=team.slug)
    failed = bool(form.errors or security_form.errors or retention_form.errors)
    return render(
        request,
        "teams/team_settings.html",
        {
            "team": team,
            "membership": _membership(request),
            "form": form,
            "security_form": security_form,
            "retention_form": retention_form,
            "kept": retention.team_retention_rows(team=team),
            "grace_days": settings.DELETION_GRACE_DAYS,
        },
        status=400 if failed else 200,
    )


@team_view(roles={"POST": Role.VIEWER}, allow_without_2fa=True)
def team_leave(request: HttpRequest) -> HttpResponse:
    team, me = _team(request), _membership(request)
    error = None
    if request.method == "POST":
        try:
            services.team_leave(team=team, user=_user(request), request=request)
        except ServiceError as exc:
            error = exc.message
        else:
            messages.success(request, f"You left {team.name}.")
            return redirect("teams:list")
    else:
        refusal = permissions.leave_refusal(me, team_owner_count(team=team))
        error = refusal.message if refusal else None
    return render(
        request,
        "teams/team_leave.html",
        {"team": team, "error": error},
        status=409 if error and request.method == "POST" else 200,
    )


# --- deleting the team -------------------------------------------------------


@team_view(roles={"GET": Role.OWNER, "POST": Role.OWNER})
@reauthentication_required
def team_delete(request: HttpRequest) -> HttpResponse:
    """Schedule the team's deletion: owners only, after re-authentication, by typing
    its name, and with a current two-factor code when the account has two-factor
    authentication (as for deleting an account)."""
    team, user = _team(request), _user(request)
    two_factor = has_two_factor(user)
    error = code_error = ""
    if request.method == "POST":
        typed = request.POST.get("confirm_name", "")
        # The typed name first (the service checks it again), then the code.
        if refusal := services.team_confirmation_refusal(team=team, typed=typed):
            error = refusal.message
        elif not (code_error := two_factor_code_refusal(user, request.POST.get("code", ""))):
            try:
                services.team_deletion_schedule(
                    team=team, actor=user, confirm_name=typed, request=request
                )
            except ServiceError as exc:
                error = exc.message
            else:
                day = date_format(timezone.localtime(team.deletion_scheduled_for), "j F Y")
                messages.success(
                    request,
                    f"{team.name} will be deleted on {day}. Every member was told by email. "
                    "Until then no runs start, and you can cancel.",
                )
                return redirect("teams:delete", team_slug=team.slug)
    context = {
        "team": team,
        "error": error,
        "code_error": code_error,
        "two_factor": two_factor,
        "grace_days": settings.DELETION_GRACE_DAYS,
    }
    failed = bool(error or code_error)
    return render(request, "teams/team_delete.html", context, status=400 if failed else 200)


@team_view(roles={"POST": Role.OWNER})
@require_POST
def team_delete_cancel(request: HttpRequest) -> HttpResponse:
    team = _team(request)
    try:
        services.team_deletion_cancel(team=team, actor=_user(request), request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"The deletion of {team.name} is cancelled. Runs can start again."
        )
    return redirect("teams:detail", team_slug=team.slug)


# --- members and invitations -------------------------------------------------


@dataclass
class MemberRow:
    membership: Membership
    role_choices: list[Role]
    can_remove: bool
    is_me: bool


def _member_rows(me: Membership, members: list[Membership]) -> list[MemberRow]:
    """Each member with the controls `me` may use on them, asking the same rules
    the services enforce, so a control is shown exactly when it would work."""
    owner_count = sum(1 for m in members if m.role == Role.OWNER)
    rows = []
    for m in members:
        choices = [
            role
            for role in Role
            if role == m.role or permissions.role_change_refusal(me, m, role, owner_count) is None
        ]
        rows.append(
            MemberRow(
                membership=m,
                role_choices=choices if len(choices) > 1 else [],
                can_remove=permissions.removal_refusal(me, m, owner_count) is None,
                is_me=m.pk == me.pk,
            )
        )
    return rows


@team_view(roles={"POST": Role.ADMIN})
def members(request: HttpRequest) -> HttpResponse:
    """The member list; for owners and admins also invitations and the invite form (POST)."""
    team, me = _team(request), _membership(request)
    can_manage = permissions.can_manage_members(me.role)
    form = InvitationForm(
        request.POST if request.method == "POST" else None,
        roles=permissions.grantable_roles(me.role),
    )
    if request.method == "POST":
        if form.is_valid():
            try:
                invitation = services.invitation_create(
                    team=team,
                    actor=_user(request),
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    request=request,
                )
            except ServiceError as exc:
                add_service_error(form, exc)
            else:
                waiting = outbox_pending(services.invitation_subject(invitation))
                sent = "is being sent" if waiting else "sent"
                messages.success(
                    request,
                    f"Invitation {sent} to {invitation.email}. The link works for "
                    f"{settings.INVITATION_TTL.days} days.",
                )
                return redirect(_members_url(team))
        form.focus_first_error()
    invitations = list(team_open_invitations(team=team)) if can_manage else []
    sending = outbox_waiting([services.invitation_subject(inv) for inv in invitations])
    context = {
        "team": team,
        "membership": me,
        "rows": _member_rows(me, team_members(team=team)),
        "can_manage": can_manage,
        "invitations": [
            (inv, permissions.grant_refusal(me, Role(inv.role)) is None) for inv in invitations
        ],
        "sending": {inv.pk for inv in invitations if services.invitation_subject(inv) in sending},
        "form": form,
    }
    return render(request, "teams/members.html", context, status=400 if form.errors else 200)


@team_view()
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    team = _team(request)
    target = member_get(team=team, membership_id=membership_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role from the list.")
        return redirect(_members_url(team))
    try:
        services.membership_change_role(
            membership=target, actor=_user(request), role=form.cleaned_data["role"], request=request
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{target.user} is now {target.role_enum.label.lower()}.")
    return redirect(_members_url(team))


@team_view()
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    team = _team(request)
    target = member_get(team=team, membership_id=membership_id)
    try:
        services.membership_remove(membership=target, actor=_user(request), request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(_members_url(team))
    if target.user_id == request.user.pk:
        messages.success(request, f"You left {team.name}.")
        return redirect("teams:list")
    messages.success(request, f"{target.user} was removed from the team.")
    return redirect(_members_url(team))


@team_view()
@require_POST
def invitation_resend(request: HttpRequest, invitation_id: int) -> HttpResponse:
    team = _team(request)
    invitation = invitation_get(team=team, invitation_id=invitation_id)
    try:
        services.invitation_resend(invitation=invitation, actor=_user(request), request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"A new invitation link was sent to {invitation.email}.")
    return redirect(_members_url(team))


@team_view()
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    team = _team(request)
    invitation = invitation_get(team=team, invitation_id=invitation_id)
    try:
        services.invitation_revoke(invitation=invitation, actor=_user(request), request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation for {invitation.email} was revoked.")
    return redirect(_members_url(team))


# --- accepting an invitation -------------------------------------------------


def _invalid_invitation(request: HttpRequest, token: str, exc: ServiceError) -> HttpResponse:
    if request.session.get(signup.INVITATION_SESSION_KEY) == token:
        signup.forget_invitation(request)
    status = 410 if isinstance(exc, Gone) else 404
    return render(
        request,
        "teams/join_invalid.html",
        {"message": exc.message, "code": exc.code, "status": status},
        status=status,
    )


def join(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation link opens: who invites you to what, and how to accept."""
    user = request.user
    if user.is_authenticated:
        # Already accepted by this user, e.g. automatically on sign-up: go to the team.
        used = invitation_find_by_token(token=token)
        if used is not None and used.accepted_by_id == user.pk:
            signup.forget_invitation(request)
            if Membership.objects.filter(team=used.team, user=user).exists():
                return redirect("teams:detail", team_slug=used.team.slug)
    try:
        invitation = services.invitation_get_by_token(token=token)
    except ServiceError as exc:
        return _invalid_invitation(request, token, exc)
    join_url = reverse("teams:join", kwargs={"token": token})

    if not user.is_authenticated:
        if request.method == "POST":
            return redirect(reverse("account_login") + "?" + urlencode({"next": join_url}))
        signup.remember_invitation(request, token=token, invitation=invitation)
        return render(
            request,
            "teams/join.html",
            {
                "invitation": invitation,
                "signup_allowed": signup.signup_allowed(request),
                "next_query": urlencode({"next": join_url}),
            },
        )

    if request.method == "POST":
        try:
            membership = services.invitation_accept(
                token=token, user=_user(request), request=request
            )
        except Conflict as exc:
            signup.forget_invitation(request)
            messages.info(request, exc.message)
            return redirect("teams:detail", team_slug=invitation.team.slug)
        except ServiceError as exc:
            return _invalid_invitation(request, token, exc)
        signup.forget_invitation(request)
        messages.success(
            request,
            f"Welcome to {membership.team.name}. "
            f"You joined as {membership.role_enum.label.lower()}.",
        )
        return redirect("teams:detail", team_slug=membership.team.slug)

    return render(
        request,
        "teams/join.html",
        {
            "invitation": invitation,
            "already_member": Membership.objects.filter(team=invitation.team, user=user).exists(),
            "other_address": _user(request).email.lower() != invitation.email.lower(),
        },
    )
