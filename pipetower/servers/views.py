"""Server pages under /teams/<slug>/servers/. Thin: parse input, call one service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.servers import selectors, services
from pipetower.servers.forms import (
    KnownHostsForm,
    PinConfirmForm,
    RepinForm,
    ServerForm,
    ServerSettingsForm,
)
from pipetower.servers.models import Server
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view

PAGE_SIZE = 25
ADMIN_ONLY = {"GET": Role.ADMIN, "HEAD": Role.ADMIN, "POST": Role.ADMIN}


def _role(request: HttpRequest) -> Role:
    return request.membership.role_enum  # type: ignore[attr-defined]


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    role = _role(request)
    return {
        "team": request.team,  # type: ignore[attr-defined]
        "can_manage": role.at_least(Role.ADMIN),
        "can_test": role.at_least(Role.OPERATOR),
        **extra,
    }


def _server(request: HttpRequest, server_id: int) -> Server:
    return selectors.server_get_for_user(
        user=request.user,
        team=request.team,  # type: ignore[attr-defined]
        server_id=server_id,
    )


def _to_detail(request: HttpRequest, server: Server) -> HttpResponse:
    return redirect("servers:detail", team_slug=server.team.slug, server_id=server.pk)


@team_view()
def server_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    tag = request.GET.get("tag", "").strip()
    query = request.GET.get("q", "").strip()
    servers = selectors.servers_for_team(team=team, tag=tag, query=query)
    page = Paginator(servers, PAGE_SIZE).get_page(request.GET.get("page"))
    context = _context(
        request,
        page=page,
        tag=tag,
        query=query,
        tags=selectors.tags_for_team(team=team),
        filtered=bool(tag or query),
    )
    if not page.object_list and not context["filtered"]:
        context["team_key"] = selectors.team_ssh_key_current(team=team)
    return render(request, "servers/server_list.html", context)


@team_view(roles=ADMIN_ONLY)
def server_add(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    form = ServerForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            server = services.server_create(
                team=team,
                actor=request.user,
                name=data["name"],
                host=data["host"],
                port=data["port"],
                username=data["username"],
                tags=data["tags"],
                credentials=form.credentials(),
                request=request,
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(
                request, f"Added {server.name}. Test the connection to pin its host key."
            )
            return _to_detail(request, server)
    team_key = selectors.team_ssh_key_current(team=team)
    return render(
        request,
        "servers/server_form.html",
        _context(request, form=form, team_key=team_key, server=None),
        status=400 if form.is_bound and form.errors else 200,
    )


@team_view()
def server_detail(request: HttpRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    return render(request, "servers/server_detail.html", _detail_context(request, server))


def _detail_context(request: HttpRequest, server: Server, **extra: Any) -> dict[str, Any]:
    team = server.team
    return _context(
        request,
        server=server,
        server_tags=list(server.tags.all()),
        uptime=services.format_uptime(server.remote_uptime_seconds),
        pin_form=PinConfirmForm(initial={"fingerprint": server.offered_host_key_fingerprint}),
        team_key=(
            selectors.team_ssh_key_current(team=team)
            if server.auth_method == Server.AuthMethod.TEAM_KEY
            else None
        ),
        team_key_next=(
            selectors.team_ssh_key_next(team=team)
            if server.auth_method == Server.AuthMethod.TEAM_KEY
            else None
        ),
        trust_on_first_use=selectors.team_server_settings_get(team=team).trust_on_first_use,
        **extra,
    )


@team_view(roles=ADMIN_ONLY)
def server_edit(request: HttpRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    form = ServerForm(request.POST or None, request.FILES or None, server=server)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.server_update(
                server=server,
                actor=request.user,
                name=data["name"],
                host=data["host"],
                port=data["port"],
                username=data["username"],
                tags=data["tags"],
                credentials=form.credentials(),
                request=request,
            )
        except ServiceError as exc:
            add_service_error(form, exc)
            server.refresh_from_db()
        else:
            messages.success(request, f"Saved {server.name}.")
            return _to_detail(request, server)
    return render(
        request,
        "servers/server_form.html",
        _context(
            request,
            form=form,
            server=server,
            team_key=selectors.team_ssh_key_current(team=server.team),
        ),
        status=400 if form.is_bound and form.errors else 200,
    )


@team_view(roles=ADMIN_ONLY)
def server_delete(request: HttpRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    if request.method == "POST":
        name = server.name
        services.server_delete(server=server, actor=request.user, request=request)
        messages.success(request, f"Deleted {name}.")
        return redirect("servers:list", team_slug=request.team.slug)  # type: ignore[attr-defined]
    return render(request, "servers/server_delete.html", _context(request, server=server))


@team_view(roles={"GET": Role.VIEWER, "POST": Role.OPERATOR})
def server_check(request: HttpRequest, server_id: int) -> HttpResponse:
    """POST asks for a connection test (it runs as a task, never in this request);
    GET is what the detail page polls while one is pending (htmx): 204 while it
    runs, then a full refresh to show the result."""
    server = _server(request, server_id)
    if request.method == "GET":
        if server.check_pending:
            return HttpResponse(status=204)
        response = HttpResponse(status=200)
        response["HX-Refresh"] = "true"
        return response
    try:
        services.server_check_request(server=server, actor=request.user, request=request)
    except services.TooManyChecks as exc:
        messages.error(request, exc.message)
    return _to_detail(request, server)


@require_POST
@team_view(roles=ADMIN_ONLY)
def server_pin(request: HttpRequest, server_id: int) -> HttpResponse:
    """Pin the host key an admin has just seen (first pin)."""
    server = _server(request, server_id)
    form = PinConfirmForm(request.POST)
    if form.is_valid():
        try:
            services.server_host_key_pin(
                server=server,
                actor=request.user,
                fingerprint=form.cleaned_data["fingerprint"],
                request=request,
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"Pinned host key {server.host_key_fingerprints[0]}. "
                "Test the connection to log in.",
            )
    else:
        messages.error(request, "Test the connection first: there is no fingerprint to confirm.")
    return _to_detail(request, server)


@team_view(roles=ADMIN_ONLY)
def server_repin(request: HttpRequest, server_id: int) -> HttpResponse:
    """Confirm step before trusting a changed host key."""
    server = _server(request, server_id)
    if not server.offered_host_key:
        messages.error(request, "There is no new host key to confirm: test the connection first.")
        return _to_detail(request, server)
    form = RepinForm(
        request.POST or None, initial={"fingerprint": server.offered_host_key_fingerprint}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.server_host_key_pin(
                server=server,
                actor=request.user,
                fingerprint=form.cleaned_data["fingerprint"],
                replace=True,
                request=request,
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"Re-pinned host key {server.host_key_fingerprints[0]}. "
                "Test the connection to log in.",
            )
            return _to_detail(request, server)
    return render(
        request,
        "servers/server_repin.html",
        _context(request, server=server, form=form),
        status=400 if form.is_bound and form.errors else 200,
    )


@team_view(roles=ADMIN_ONLY)
def server_paste_host_key(request: HttpRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    form = KnownHostsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.server_host_key_paste(
                server=server,
                actor=request.user,
                text=form.cleaned_data["known_hosts"],
                replace=form.cleaned_data["replace"],
                request=request,
            )
        except ServiceError as exc:
            field = "known_hosts" if exc.field == "known_hosts" else None
            form.add_error(field, exc.message)
        else:
            messages.success(
                request, "Pinned host key " + ", ".join(server.host_key_fingerprints) + "."
            )
            return _to_detail(request, server)
    return render(
        request,
        "servers/server_paste_host_key.html",
        _context(request, server=server, form=form),
        status=400 if form.is_bound and form.errors else 200,
    )


# --- team SSH key and settings -------------------------------------------------------------


@team_view()
def team_key(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    current = selectors.team_ssh_key_current(team=team)  # a GET creates nothing
    settings = selectors.team_server_settings_get(team=team)
    return render(
        request,
        "servers/team_key.html",
        _context(
            request,
            key=current,
            next_key=selectors.team_ssh_key_next(team=team),
            settings_form=ServerSettingsForm(
                initial={"trust_on_first_use": settings.trust_on_first_use}
            ),
        ),
    )


def _key_action(request: HttpRequest, action: Any, done: str) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    try:
        action(team=team, actor=request.user, request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("servers:team_key", team_slug=team.slug)


@require_POST
@team_view(roles=ADMIN_ONLY)
def team_key_create(request: HttpRequest) -> HttpResponse:
    """Create the team's key before any server uses it, then go back where the button was."""
    team = request.team  # type: ignore[attr-defined]
    services.team_ssh_key_ensure(team=team, actor=request.user, request=request)
    messages.success(request, "The team's SSH key is ready: add its line to your servers.")
    back = request.POST.get("next", "")
    if back.startswith(f"/teams/{team.slug}/") and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        return redirect(back)
    return redirect("servers:team_key", team_slug=team.slug)


@require_POST
@team_view(roles=ADMIN_ONLY)
def team_key_rotation_start(request: HttpRequest) -> HttpResponse:
    return _key_action(
        request,
        services.team_ssh_key_rotation_start,
        "New key created. Add its authorized_keys line to every server, then finish the "
        "rotation. Until then Pipetower offers both keys.",
    )


@require_POST
@team_view(roles=ADMIN_ONLY)
def team_key_rotation_finish(request: HttpRequest) -> HttpResponse:
    return _key_action(
        request,
        services.team_ssh_key_rotation_finish,
        "Rotation finished: the new key is the team's key and the old one is retired. "
        "You can remove the old line from your servers' authorized_keys.",
    )


@require_POST
@team_view(roles=ADMIN_ONLY)
def team_key_rotation_cancel(request: HttpRequest) -> HttpResponse:
    return _key_action(
        request,
        services.team_ssh_key_rotation_cancel,
        "Rotation cancelled: the new key was deleted.",
    )


@require_POST
@team_view(roles=ADMIN_ONLY)
def server_settings(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    form = ServerSettingsForm(request.POST)
    form.is_valid()
    services.team_server_settings_update(
        team=team,
        actor=request.user,
        trust_on_first_use=bool(form.cleaned_data.get("trust_on_first_use")),
        request=request,
    )
    messages.success(request, "Server settings saved.")
    return redirect("servers:team_key", team_slug=team.slug)
