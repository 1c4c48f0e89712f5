"""Server pages under /teams/<slug>/servers/. Thin: parse input, call one service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.servers import inventory, selectors, services
from pipetower.servers.forms import (
    ImportForm,
    KnownHostsForm,
    PinConfirmForm,
    RepinForm,
    ServerForm,
    ServerSettingsForm,
    TagsBulkForm,
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
    pin = request.GET.get("pin", "").strip()
    pin = pin if pin in selectors.PIN_FILTERS else ""
    check = request.GET.get("check", "").strip()
    check = check if check in selectors.CHECK_FILTERS else ""
    sort = request.GET.get("sort", "name").strip()
    sort = sort if sort in selectors.SERVER_SORTS else "name"
    servers = selectors.servers_for_team(
        team=team, tag=tag, query=query, pin=pin, check=check, sort=sort
    )
    page = Paginator(servers, PAGE_SIZE).get_page(request.GET.get("page"))
    context = _context(
        request,
        page=page,
        tag=tag,
        query=query,
        pin=pin,
        check=check,
        sort=sort,
        pin_filters=selectors.PIN_FILTERS,
        check_filters=selectors.CHECK_FILTERS,
        sorts={value: label for value, (label, _order) in selectors.SERVER_SORTS.items()},
        tags=selectors.tags_for_team(team=team),
        filtered=bool(tag or query or pin or check),
        here=request.GET.urlencode(),
        tags_form=TagsBulkForm(),
    )
    if not page.object_list and not context["filtered"]:
        context["team_key"] = selectors.team_ssh_key_current(team=team)
    return render(request, "servers/server_list.html", context)


@require_POST
@team_view(roles=ADMIN_ONLY)
def server_tags_bulk(request: HttpRequest) -> HttpResponse:
    """Add or remove a tag on the servers ticked in the list, then back to the same list."""
    team = request.team  # type: ignore[attr-defined]
    form = TagsBulkForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    try:
        change = services.servers_tags_bulk(
            team=team,
            actor=request.user,
            server_ids=data.get("server") or [],
            add=data.get("add", ""),
            remove=data.get("remove", ""),
            request=request,
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        done = f"Changed the tags of {len(change.changed)} server{pluralize(len(change.changed))}"
        if change.unchanged:
            done += f"; {len(change.unchanged)} already had them"
        messages.success(request, done + ".")
    query = QueryDict(data.get("query", "")).urlencode()
    url = reverse("servers:list", kwargs={"team_slug": team.slug})
    return redirect(f"{url}?{query}" if query else url)


@team_view(roles=ADMIN_ONLY)
def server_import(request: HttpRequest) -> HttpResponse:
    """Paste or upload an inventory, see every line and its errors, then import the valid ones."""
    team = request.team  # type: ignore[attr-defined]
    form = ImportForm(request.POST or None, request.FILES or None)
    preview = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {
            "team": team,
            "actor": request.user,
            "text": data["text"],
            "format": data["format"],
            "default_user": data["default_user"],
        }
        try:
            if request.POST.get("confirm"):
                result = services.servers_import(**fields, request=request)
            else:
                preview = services.servers_import_preview(**fields)
        except ServiceError as exc:
            add_service_error(form, exc)
            status = 400
        else:
            if preview is None:
                count = len(result.created)
                skipped = len(result.inventory.invalid_rows)
                messages.success(
                    request,
                    f"Imported {count} server{pluralize(count)}"
                    + (
                        f"; {skipped} line{pluralize(skipped)} with errors left out"
                        if skipped
                        else ""
                    )
                    + ". Fetch their host keys next, compare the fingerprints and pin them.",
                )
                return redirect("servers:host_keys", team_slug=team.slug)
    elif form.is_bound:
        status = 400
    return render(
        request,
        "servers/server_import.html",
        _context(request, form=form, preview=preview, formats=inventory.FORMATS),
        status=status,
    )


@require_safe
@team_view(roles=ADMIN_ONLY)
def server_host_keys(request: HttpRequest) -> HttpResponse:
    """Every unpinned server with the host keys it presented: fetch them, tick, pin."""
    team = request.team  # type: ignore[attr-defined]
    servers = selectors.servers_awaiting_pin(team=team)
    return render(
        request,
        "servers/server_host_keys.html",
        _context(
            request,
            servers=servers,
            pending=any(server.check_pending for server in servers),
            offered=sum(1 for server in servers if server.offered_host_key_line),
        ),
    )


@team_view(roles=ADMIN_ONLY)
def server_host_keys_fetch(request: HttpRequest) -> HttpResponse:
    """POST asks for the host keys of the servers listed (tasks fetch them); GET is what
    the page polls while some are pending: 204 until all are in, then a refresh."""
    team = request.team  # type: ignore[attr-defined]
    if request.method == "GET":
        if any(server.check_pending for server in selectors.servers_awaiting_pin(team=team)):
            return HttpResponse(status=204)
        response = HttpResponse(status=200)
        response["HX-Refresh"] = "true"
        return response
    try:
        asked = services.servers_host_keys_fetch_request(
            team=team,
            actor=request.user,
            server_ids=request.POST.getlist("server"),
            request=request,
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Fetching the host keys of {len(asked)} server{pluralize(len(asked))}; "
            "this page shows them as they come in.",
        )
    return redirect("servers:host_keys", team_slug=team.slug)


@require_POST
@team_view(roles=ADMIN_ONLY)
def server_host_keys_pin(request: HttpRequest) -> HttpResponse:
    """Pin the keys whose fingerprints were ticked (each tick carries the fingerprint shown)."""
    team = request.team  # type: ignore[attr-defined]
    fingerprints: dict[int, str] = {}
    for value in request.POST.getlist("pin"):
        server_id, _sep, fingerprint = value.partition(":")
        if server_id.isdigit() and fingerprint:
            fingerprints[int(server_id)] = fingerprint
    try:
        result = services.servers_host_keys_pin(
            team=team, actor=request.user, fingerprints=fingerprints, request=request
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if result.pinned:
            count = len(result.pinned)
            messages.success(request, f"Pinned the host keys of {count} server{pluralize(count)}.")
        for server, reason in result.refused:
            messages.error(request, f"{server.name}: {reason}")
    return redirect("servers:host_keys", team_slug=team.slug)


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
