"""`/teams/{slug}/servers/...` and `/teams/{slug}/ssh-key`: servers in the REST API.

The writes are the services the pages call, so roles, validation and audit are
the same. No answer ever carries a secret: private keys and passwords go in,
only fingerprints come out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.errors import error_response
from pipetower.api.pagination import Page, PageParams, paginate
from pipetower.api.schemas import Input
from pipetower.servers import inventory, selectors, services
from pipetower.servers.models import Server, TeamSshKey
from pipetower.teams.models import Role, Team
from pipetower.teams.selectors import team_get_for_user

router = Router(tags=["servers"])

AuthMethod = Literal["team_key", "private_key", "password"]


# --- schemas -----------------------------------------------------------------------------


class HostKeyOut(Schema):
    pinned: bool
    fingerprints: list[str] = Field(..., description="SHA256 fingerprints of the pinned keys.")
    source: Literal["", "confirmed", "trust_on_first_use", "pasted"] = Field(
        ..., description="How the pin was made; empty without a pin."
    )
    pinned_at: datetime | None
    offered_fingerprint: str = Field(
        ...,
        description="The key the host presented that awaits an admin's confirmation, and "
        "that the pin call pins: the Ed25519 one when the host has one.",
    )
    offered_keys: list[str] = Field(
        default_factory=list,
        description="Every key the host presented, one per type, as `ssh-keygen -l` names "
        "them ('ED25519 SHA256:…'): Ed25519 first, then ECDSA, then RSA.",
    )
    changed: bool = Field(..., description="The host presented a key that is not the pin.")


class LastCheckOut(Schema):
    at: datetime | None
    ok: bool | None
    error: str = Field(..., description="dns, refused, timeout, auth_failed, … or empty.")
    message: str
    hostname: str
    os: str
    uptime_seconds: int | None


class ServerOut(Schema):
    id: int
    name: str
    host: str
    port: int
    username: str
    address: str
    tags: list[str]
    auth_method: AuthMethod
    private_key_fingerprint: str = Field(..., description="Of an uploaded key; else empty.")
    host_key: HostKeyOut
    last_check: LastCheckOut
    created_at: datetime
    updated_at: datetime


class ServerCreateIn(Input):
    name: str = Field(..., min_length=1, max_length=100)
    host: str = Field(..., description="DNS name, IPv4 or IPv6 address.", max_length=255)
    port: int = Field(22, ge=1, le=65535)
    username: str = Field(..., min_length=1, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=services.MAX_TAGS)
    auth_method: AuthMethod = "team_key"
    private_key: str = Field("", description="OpenSSH or PEM private key (private_key method).")
    passphrase: str = Field("", description="The private key's passphrase, if it has one.")
    password: str = Field("", description="The SSH password (password method).")


class ServerUpdateIn(Input):
    name: str | None = Field(None, min_length=1, max_length=100)
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = Field(None, min_length=1, max_length=64)
    tags: list[str] | None = Field(None, max_length=services.MAX_TAGS)
    auth_method: AuthMethod | None = None
    private_key: str = ""
    passphrase: str = ""
    password: str = ""


class ServerFilters(Schema):
    tag: str = Field("", max_length=40, description="Only servers with this tag.")
    q: str = Field("", max_length=100, description="Name or host contains this.")
    pin: Literal["", "pinned", "unpinned", "changed"] = Field(
        "", description="Only pinned servers, unpinned ones, or those whose host key changed."
    )
    check: Literal["", "ok", "failed", "never"] = Field(
        "", description="By the last connection check: OK, failed, or never checked."
    )
    sort: Literal["name", "-name", "host", "last_check", "-last_check", "-created"] = Field(
        "name", description="Order: name, address, last check (oldest/newest), newest added."
    )


InventoryFormat = Literal["auto", "ansible_ini", "ansible_yaml", "ssh_config", "csv"]


class ImportIn(Input):
    text: str = Field(
        ...,
        max_length=inventory.MAX_INVENTORY_BYTES,
        description="The inventory: Ansible INI or YAML, an ssh_config, or CSV with the "
        "header name,address,port,user,tags.",
    )
    format: InventoryFormat = Field("auto", description="auto detects it from the content.")
    default_user: str = Field(
        "", max_length=64, description="SSH user for servers the inventory gives none."
    )
    dry_run: bool = Field(
        False, description="true: only check every line; false: import the valid ones (`created`)."
    )


class ImportRowOut(Schema):
    line: int = Field(..., description="The line of the file the server comes from.")
    name: str
    host: str
    port: str
    user: str
    tags: list[str]
    ok: bool
    errors: list[str] = Field(..., description="Why this line is not imported; empty if ok.")


class ImportNoteOut(Schema):
    line: int
    message: str = Field(..., description="A line that was skipped on purpose, and why.")


class ImportedServerOut(Schema):
    id: int
    name: str
    address: str


class ImportOut(Schema):
    format: str
    dry_run: bool
    rows: list[ImportRowOut]
    notes: list[ImportNoteOut]
    created: list[ImportedServerOut] = Field(
        ...,
        description="The servers added (empty for a dry run). Their host keys are not "
        "pinned yet: check each server, then pin the fingerprint you compared.",
    )


class TagsBulkIn(Input):
    server_ids: list[int] = Field(..., max_length=services.MAX_BULK_SERVERS)
    add: list[str] = Field(default_factory=list, max_length=services.MAX_TAGS)
    remove: list[str] = Field(default_factory=list, max_length=services.MAX_TAGS)


class ServerIdsIn(Input):
    server_ids: list[int] = Field(..., max_length=services.MAX_BULK_SERVERS)


class HostKeysFetchOut(Schema):
    requested: list[int] = Field(
        ...,
        description="Ids whose host keys are being fetched; pinned servers and servers with a "
        "check already pending are left out. GET each server (or its check) for the result.",
    )


class BulkPinIn(Input):
    fingerprints: dict[int, str] = Field(
        ...,
        description="Server id → the SHA256 fingerprint you compared (its "
        "host_key.offered_fingerprint).",
    )


class BulkPinRefusedOut(Schema):
    id: int
    message: str


class BulkPinOut(Schema):
    pinned: list[int]
    refused: list[BulkPinRefusedOut] = Field(
        ..., description="Servers not pinned, and why (e.g. the presented key changed)."
    )


class TagsBulkOut(Schema):
    changed: list[int] = Field(..., description="Ids of the servers whose tags changed.")
    unchanged: list[int] = Field(..., description="Ids that already had (or lacked) the tags.")


class CheckOut(Schema):
    status: Literal["pending", "done", "none"] = Field(
        ...,
        description="pending: a test is queued or running (ask again); done: the fields "
        "below are the last test's result; none: never tested.",
    )
    requested_at: datetime | None
    ok: bool | None
    error: str
    title: str
    message: str
    hostname: str
    os: str
    uptime_seconds: int | None
    host_key_pinned_now: bool = Field(
        ..., description="Trust on first use pinned the host key during the last test."
    )
    offered_fingerprint: str
    server: ServerOut


class PinIn(Input):
    fingerprint: str = Field(..., description="The SHA256 fingerprint you checked (SHA256:…).")
    replace: bool = Field(False, description="True to re-pin a server that already has a pin.")


class KnownHostsIn(Input):
    known_hosts: str = Field(..., description="known_hosts line(s) or host public key line(s).")
    replace: bool = False


class TeamKeyOut(Schema):
    fingerprint: str
    authorized_keys_line: str
    state: Literal["current", "next", "retired"]
    created_at: datetime


class TeamKeysOut(Schema):
    current: TeamKeyOut | None = Field(
        ..., description="Null until the team has a key: POST /teams/{slug}/ssh-key creates it."
    )
    next: TeamKeyOut | None = Field(
        None, description="The new key while a rotation is in progress (both are offered)."
    )


# --- helpers -----------------------------------------------------------------------------


def _team(request: HttpRequest, slug: str) -> Team:
    return team_get_for_user(user=principal(request).user, team_slug=slug)


def _server(request: HttpRequest, slug: str, server_id: int) -> Server:
    team = _team(request, slug)
    return selectors.server_get_for_user(
        user=principal(request).user, team=team, server_id=server_id
    )


def server_out(server: Server) -> dict[str, Any]:
    return {
        "id": server.pk,
        "name": server.name,
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "address": server.address,
        "tags": [tag.name for tag in server.tags.all()],
        "auth_method": server.auth_method,
        "private_key_fingerprint": server.private_key_fingerprint,
        "host_key": {
            "pinned": server.is_pinned,
            "fingerprints": server.host_key_fingerprints,
            "source": server.host_key_pin_source,
            "pinned_at": server.host_key_pinned_at,
            "offered_fingerprint": server.offered_host_key_fingerprint,
            "offered_keys": [label for label, _ in server.offered_host_key_choices],
            "changed": server.host_key_changed,
        },
        "last_check": {
            "at": server.last_check_at,
            "ok": server.last_check_ok,
            "error": server.last_check_error,
            "message": server.last_check_message,
            "hostname": server.remote_hostname,
            "os": server.remote_os,
            "uptime_seconds": server.remote_uptime_seconds,
        },
        "created_at": server.created_at,
        "updated_at": server.updated_at,
    }


def _key_out(key: TeamSshKey) -> dict[str, Any]:
    return {
        "fingerprint": key.fingerprint,
        "authorized_keys_line": key.public_key,
        "state": key.state,
        "created_at": key.created_at,
    }


# --- servers -----------------------------------------------------------------------------


@router.get(
    "/teams/{slug}/servers",
    response=with_errors({200: Page[ServerOut]}, 400, 401, 404, 422, 429),
    operation_id="servers_list",
)
def server_list(
    request: HttpRequest,
    slug: str,
    filters: Query[ServerFilters],
    pagination: Query[PageParams],
) -> dict[str, Any]:
    """The team's servers by name, with pin state and the last connection check."""
    team = _team(request, slug)
    servers = selectors.servers_for_team(
        team=team,
        tag=filters.tag,
        query=filters.q,
        pin=filters.pin,
        check=filters.check,
        sort=filters.sort,
    )
    return paginate(request, servers, pagination, transform=server_out)


@router.post(
    "/teams/{slug}/servers/import",
    response=with_errors({200: ImportOut}, 400, 401, 403, 404, 422, 429),
    operation_id="servers_import",
)
def servers_import(request: HttpRequest, slug: str, payload: ImportIn) -> Status[dict[str, Any]]:
    """Add many servers from an inventory (admins); `dry_run` shows every line and its errors.

    Lines with errors are left out of the import; the answer lists them. The new
    servers log in with the team's key and have no pinned host key yet.
    """
    team = _team(request, slug)
    fields = {
        "team": team,
        "actor": principal(request).user,
        "text": payload.text,
        "format": payload.format,
        "default_user": payload.default_user,
    }
    if payload.dry_run:
        checked = services.servers_import_preview(**fields)
        return Status(200, _import_out(checked, [], dry_run=True))
    result = services.servers_import(**fields, request=request)
    return Status(200, _import_out(result.inventory, result.created, dry_run=False))


@router.post(
    "/teams/{slug}/servers/host-keys/fetch",
    response=with_errors({202: HostKeysFetchOut}, 400, 401, 403, 404, 422, 429),
    operation_id="servers_host_keys_fetch",
)
def servers_host_keys_fetch(
    request: HttpRequest, slug: str, payload: ServerIdsIn
) -> Status[dict[str, Any]]:
    """Fetch the host keys many unpinned servers present (admins), in the background.

    Answers 202 at once. Each server's `host_key.offered_keys` and `last_check`
    then show the keys, or why the host could not be reached.
    """
    team = _team(request, slug)
    asked = services.servers_host_keys_fetch_request(
        team=team, actor=principal(request).user, server_ids=payload.server_ids, request=request
    )
    return Status(202, {"requested": [server.pk for server in asked]})


@router.post(
    "/teams/{slug}/servers/host-keys/pin",
    response=with_errors({200: BulkPinOut}, 400, 401, 403, 404, 422, 429),
    operation_id="servers_host_keys_pin",
)
def servers_host_keys_pin(request: HttpRequest, slug: str, payload: BulkPinIn) -> dict[str, Any]:
    """Pin the presented keys of many servers (admins), each naming the fingerprint compared."""
    team = _team(request, slug)
    result = services.servers_host_keys_pin(
        team=team,
        actor=principal(request).user,
        fingerprints=payload.fingerprints,
        request=request,
    )
    return {
        "pinned": [server.pk for server in result.pinned],
        "refused": [{"id": server.pk, "message": reason} for server, reason in result.refused],
    }


def _import_out(checked: Any, created: list[Server], *, dry_run: bool) -> dict[str, Any]:
    return {
        "format": checked.format,
        "dry_run": dry_run,
        "rows": [
            {
                "line": row.line,
                "name": row.name,
                "host": row.host,
                "port": row.port,
                "user": row.user,
                "tags": row.tags,
                "ok": row.ok,
                "errors": row.errors,
            }
            for row in checked.rows
        ],
        "notes": [{"line": line, "message": message} for line, message in checked.notes],
        "created": [{"id": s.pk, "name": s.name, "address": s.address} for s in created],
    }


@router.post(
    "/teams/{slug}/servers/tags",
    response=with_errors({200: TagsBulkOut}, 400, 401, 403, 404, 422, 429),
    operation_id="servers_tags_bulk",
)
def servers_tags_bulk(request: HttpRequest, slug: str, payload: TagsBulkIn) -> dict[str, Any]:
    """Add and/or remove tags on many servers at once (admins). Ids of other teams'
    servers are ignored."""
    team = _team(request, slug)
    change = services.servers_tags_bulk(
        team=team,
        actor=principal(request).user,
        server_ids=payload.server_ids,
        add=payload.add,
        remove=payload.remove,
        request=request,
    )
    return {
        "changed": [server.pk for server in change.changed],
        "unchanged": [server.pk for server in change.unchanged],
    }


@router.post(
    "/teams/{slug}/servers",
    response=with_errors({201: ServerOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="servers_create",
)
def server_create(
    request: HttpRequest, slug: str, payload: ServerCreateIn
) -> Status[dict[str, Any]]:
    """Add a server (admins). Its host key is pinned later: test the connection, then pin."""
    team = _team(request, slug)
    server = services.server_create(
        team=team,
        actor=principal(request).user,
        name=payload.name,
        host=payload.host,
        port=payload.port,
        username=payload.username,
        tags=payload.tags,
        credentials=services.Credentials(
            auth_method=payload.auth_method,
            private_key=payload.private_key,
            passphrase=payload.passphrase,
            password=payload.password,
        ),
        request=request,
    )
    return Status(201, server_out(server))


@router.get(
    "/teams/{slug}/servers/{server_id}",
    response=with_errors({200: ServerOut}, 400, 401, 404, 429),
    operation_id="servers_get",
)
def server_get(request: HttpRequest, slug: str, server_id: int) -> dict[str, Any]:
    """One server: address, tags, pin state, last check (never a secret)."""
    return server_out(_server(request, slug, server_id))


@router.patch(
    "/teams/{slug}/servers/{server_id}",
    response=with_errors({200: ServerOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="servers_update",
)
def server_update(
    request: HttpRequest, slug: str, server_id: int, payload: ServerUpdateIn
) -> dict[str, Any]:
    """Change a server (admins). Omitted fields stay; a new host or port drops the pin."""
    server = _server(request, slug, server_id)
    credentials = None
    if payload.auth_method or payload.private_key or payload.password:
        credentials = services.Credentials(
            auth_method=payload.auth_method or server.auth_method,
            private_key=payload.private_key,
            passphrase=payload.passphrase,
            password=payload.password,
        )
    services.server_update(
        server=server,
        actor=principal(request).user,
        name=payload.name if payload.name is not None else server.name,
        host=payload.host if payload.host is not None else server.host,
        port=payload.port if payload.port is not None else server.port,
        username=payload.username if payload.username is not None else server.username,
        tags=(
            payload.tags if payload.tags is not None else [tag.name for tag in server.tags.all()]
        ),
        credentials=credentials,
        request=request,
    )
    return server_out(server)


@router.delete(
    "/teams/{slug}/servers/{server_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 409, 429),
    operation_id="servers_delete",
)
def server_delete(request: HttpRequest, slug: str, server_id: int) -> Status[None]:
    """Delete a server (admins): its credentials and pin are forgotten."""
    server = _server(request, slug, server_id)
    services.server_delete(server=server, actor=principal(request).user, request=request)
    return Status(204, None)


def _check_out(server: Server) -> dict[str, Any]:
    pending = server.check_pending
    done = server.last_check_at is not None and not pending
    first_use = (
        server.host_key_pin_source == Server.PinSource.TRUST_ON_FIRST_USE
        and server.check_requested_at is not None
        and server.host_key_pinned_at is not None
        and server.host_key_pinned_at >= server.check_requested_at
    )
    return {
        "status": "pending" if pending else ("done" if done else "none"),
        "requested_at": server.check_requested_at,
        "ok": server.last_check_ok if done else None,
        "error": server.last_check_error if done else "",
        "title": server.last_check_title if done else "",
        "message": server.last_check_message if done else "",
        "hostname": server.remote_hostname if done and server.last_check_ok else "",
        "os": server.remote_os if done and server.last_check_ok else "",
        "uptime_seconds": server.remote_uptime_seconds if done and server.last_check_ok else None,
        "host_key_pinned_now": done and first_use,
        "offered_fingerprint": server.offered_host_key_fingerprint if done else "",
        "server": server_out(server),
    }


@router.post(
    "/teams/{slug}/servers/{server_id}/check",
    response=with_errors({202: CheckOut}, 400, 401, 403, 404, 429),
    operation_id="servers_check",
)
def server_check(request: HttpRequest, slug: str, server_id: int) -> Status[dict[str, Any]]:
    """Ask for a connection test (operators and up); it runs in the background.

    Answers 202 at once; `GET` the same address until `status` is `done` for
    the result: hostname, OS and uptime, or a specific error. Without a pin
    (and without trust on first use) the test only fetches the host key:
    `offered_fingerprint` is then what an admin confirms with the pin call.
    One test per server at a time; at most 3 pending per person (429).
    """
    server = _server(request, slug, server_id)
    try:
        server = services.server_check_request(
            server=server, actor=principal(request).user, request=request
        )
    except services.TooManyChecks as exc:
        refused = error_response(429, exc.code, exc.message)
        refused["Retry-After"] = str(exc.retry_after)
        return refused  # type: ignore[return-value]
    return Status(202, _check_out(server))


@router.get(
    "/teams/{slug}/servers/{server_id}/check",
    response=with_errors({200: CheckOut}, 400, 401, 404, 429),
    operation_id="servers_check_result",
)
def server_check_result(request: HttpRequest, slug: str, server_id: int) -> dict[str, Any]:
    """The connection test in progress, or the last one's result."""
    return _check_out(_server(request, slug, server_id))


@router.post(
    "/teams/{slug}/servers/{server_id}/host-key/pin",
    response=with_errors({200: ServerOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="servers_host_key_pin",
)
def server_host_key_pin(
    request: HttpRequest, slug: str, server_id: int, payload: PinIn
) -> dict[str, Any]:
    """Pin the key the host presented at the last check (admins), naming its fingerprint.

    A server that already has a pin needs `replace: true` (the re-pin after a change).
    """
    server = _server(request, slug, server_id)
    services.server_host_key_pin(
        server=server,
        actor=principal(request).user,
        fingerprint=payload.fingerprint,
        replace=payload.replace,
        request=request,
    )
    return server_out(server)


@router.post(
    "/teams/{slug}/servers/{server_id}/host-key/known-hosts",
    response=with_errors({200: ServerOut}, 400, 401, 403, 404, 409, 422, 429),
    operation_id="servers_known_hosts_pin",
)
def server_host_key_paste(
    request: HttpRequest, slug: str, server_id: int, payload: KnownHostsIn
) -> dict[str, Any]:
    """Pin host keys from known_hosts or public key lines (admins)."""
    server = _server(request, slug, server_id)
    services.server_host_key_paste(
        server=server,
        actor=principal(request).user,
        text=payload.known_hosts,
        replace=payload.replace,
        request=request,
    )
    return server_out(server)


# --- team SSH key ------------------------------------------------------------------------


def _keys_out(team: Team) -> dict[str, Any]:
    current = selectors.team_ssh_key_current(team=team)
    upcoming = selectors.team_ssh_key_next(team=team)
    return {
        "current": _key_out(current) if current else None,
        "next": _key_out(upcoming) if upcoming else None,
    }


@router.get(
    "/teams/{slug}/ssh-key",
    response=with_errors({200: TeamKeysOut}, 400, 401, 404, 429),
    operation_id="ssh_key_get",
)
def team_ssh_key(request: HttpRequest, slug: str) -> dict[str, Any]:
    """The team's public key and its authorized_keys line (never the private key).

    Only reads: `current` is null until the key exists (it is created with the
    first server that uses it, or with `POST` here)."""
    return _keys_out(_team(request, slug))


@router.post(
    "/teams/{slug}/ssh-key",
    response=with_errors({200: TeamKeysOut}, 400, 401, 403, 404, 429),
    operation_id="ssh_key_create",
)
def team_ssh_key_create(request: HttpRequest, slug: str) -> dict[str, Any]:
    """Create the team's key if it has none (admins), so it can be installed on
    servers before they are added; answers the key either way."""
    team = team_get_for_user(user=principal(request).user, team_slug=slug, role=Role.ADMIN)
    services.team_ssh_key_ensure(team=team, actor=principal(request).user, request=request)
    return _keys_out(team)
