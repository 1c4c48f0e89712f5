"""Every change to servers, team SSH keys and host-key pins; each one audited.

Services check the actor's role themselves (admin for changes, operator for a
connection test), so the HTML views and the API cannot drift apart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core import netguard
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue
from pipetower.servers import keys as keylib
from pipetower.servers.errors import SshError
from pipetower.servers.models import Server, Tag, TeamServerSettings, TeamSshKey
from pipetower.servers.selectors import team_server_settings_get
from pipetower.servers.ssh import (
    ERROR_TITLES,
    RemoteFacts,
    check_connection,
    connection_spec_for,
    fetch_host_keys,
)
from pipetower.teams.models import Membership, Role, Team

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,39}$")
MAX_TAGS = 20
MAX_PASSWORD_CHARS = 1024


# --- validation shared by forms and API ------------------------------------------------


def normalise_host(value: str) -> str:
    """A DNS name, IPv4 or IPv6 address (brackets allowed around IPv6), or ServiceError."""
    host = (value or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    example = "for example web-1.example.com, 192.0.2.10 or 2001:db8::10"
    if not host:
        raise ServiceError(f"Enter the server's host name or IP address ({example}).", field="host")
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ServiceError(
                f"{value.strip()!r} is not a valid IPv6 address. Give the port in the Port "
                f"field, not after the host ({example}).",
                field="host",
            ) from None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ServiceError(
                f"{host!r} is not a valid IPv4 address ({example}).", field="host"
            ) from None
    name = host.rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ServiceError(
            f"{host!r} is not a valid host name: use letters, digits, hyphens and dots only, "
            f"with no user name, scheme or path ({example}).",
            field="host",
        )
    if labels[-1].isdigit():
        raise ServiceError(f"{host!r} is not a valid host name ({example}).", field="host")
    return name


def validate_port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ServiceError(
            "The port must be a whole number from 1 to 65535.", field="port"
        ) from None
    if not 1 <= port <= 65535:
        raise ServiceError("The port must be a whole number from 1 to 65535.", field="port")
    return port


def validate_username(value: str) -> str:
    username = (value or "").strip()
    if not _USERNAME.match(username):
        raise ServiceError(
            "Enter the SSH user name (letters, digits, '.', '_' and '-', for example deploy).",
            field="username",
        )
    return username


def parse_tags(value: str | Iterable[str]) -> list[str]:
    """Tags from "web, db eu-west" or a list: lower-cased, unique, in the order given."""
    parts = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    tags: list[str] = []
    for part in parts:
        tag = part.strip().lower()
        if not tag:
            continue
        if not _TAG.match(tag):
            raise ServiceError(
                f"{part.strip()!r} is not a valid tag: use up to 40 letters, digits, '-', '_', "
                "'.' or ':', starting with a letter or digit.",
                field="tags",
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ServiceError(f"A server can have at most {MAX_TAGS} tags.", field="tags")
    return tags


def _allowed_host(value: str) -> str:
    """The normalised host, refused when the operator forbids its address
    (PIPETOWER_FORBIDDEN_NETWORKS; checked again after DNS when connecting)."""
    host = normalise_host(value)
    netguard.check_host(host)
    return host


def _validate_name(value: str) -> str:
    name = (value or "").strip()
    if not name:
        raise ServiceError("Give the server a name.", field="name")
    if len(name) > 100:
        raise ServiceError("The name can be at most 100 characters.", field="name")
    return name


# --- roles -------------------------------------------------------------------------------


def _require_role(*, team: Team, actor: Any, role: Role, doing: str) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotAllowed(f"Sign in to {doing}.")
    membership = Membership.objects.filter(team=team, user=actor).first()
    if membership is None or not membership.role_enum.at_least(role):
        raise NotAllowed(f"Only a team {role.label.lower()} or owner can {doing}.")


# --- team SSH key ------------------------------------------------------------------------


def _key_comment(team: Team) -> str:
    return f"pipetower-{team.slug}"


def _team_key_create(*, team: Team, state: str, actor: Any) -> TeamSshKey:
    material = keylib.generate_ed25519()
    key = TeamSshKey(
        team=team,
        state=state,
        public_key=material.authorized_keys_line(_key_comment(team)),
        fingerprint=material.fingerprint,
        private_key=material.private_openssh,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    key.save()
    return key


def team_ssh_key_ensure(
    *, team: Team, actor: Any = None, request: HttpRequest | None = None
) -> TeamSshKey:
    """The team's current key, generated (and audited) the first time it is needed."""
    existing = TeamSshKey.objects.filter(team=team, state=TeamSshKey.State.CURRENT).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            key = _team_key_create(team=team, state=TeamSshKey.State.CURRENT, actor=actor)
            audit_record(
                actor=actor,
                team=team,
                verb="server.team_key_created",
                target=key,
                request=request,
                data={"fingerprint": key.fingerprint},
            )
    except IntegrityError:  # created by a concurrent request
        return TeamSshKey.objects.get(team=team, state=TeamSshKey.State.CURRENT)
    return key


def team_ssh_key_rotation_start(
    *, team: Team, actor: Any, request: HttpRequest | None = None
) -> TeamSshKey:
    """Generate the next key. Both keys are offered until the rotation is finished."""
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="rotate the team's SSH key")
    team_ssh_key_ensure(team=team, actor=actor)
    if TeamSshKey.objects.filter(team=team, state=TeamSshKey.State.NEXT).exists():
        raise Conflict("A key rotation is already in progress: finish or cancel it first.")
    with transaction.atomic():
        key = _team_key_create(team=team, state=TeamSshKey.State.NEXT, actor=actor)
        audit_record(
            actor=actor,
            team=team,
            verb="server.team_key_rotation_started",
            target=key,
            request=request,
            data={"fingerprint": key.fingerprint},
        )
    return key


def team_ssh_key_rotation_finish(
    *, team: Team, actor: Any, request: HttpRequest | None = None
) -> TeamSshKey:
    """Make the new key current and retire the old one (its private half is wiped)."""
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="rotate the team's SSH key")
    with transaction.atomic():
        new = (
            TeamSshKey.objects.select_for_update()
            .filter(team=team, state=TeamSshKey.State.NEXT)
            .first()
        )
        if new is None:
            raise Conflict("No key rotation is in progress.")
        old = (
            TeamSshKey.objects.select_for_update()
            .filter(team=team, state=TeamSshKey.State.CURRENT)
            .first()
        )
        if old is not None:
            old.state = TeamSshKey.State.RETIRED
            old.private_key = ""
            old.retired_at = timezone.now()
            old.save(update_fields=["state", "private_key", "retired_at", "updated_at"])
        new.state = TeamSshKey.State.CURRENT
        new.save(update_fields=["state", "updated_at"])
        audit_record(
            actor=actor,
            team=team,
            verb="server.team_key_rotated",
            target=new,
            request=request,
            data={"fingerprint": new.fingerprint, "retired": old.fingerprint if old else ""},
        )
    return new


def team_ssh_key_rotation_cancel(
    *, team: Team, actor: Any, request: HttpRequest | None = None
) -> None:
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="rotate the team's SSH key")
    with transaction.atomic():
        new = TeamSshKey.objects.filter(team=team, state=TeamSshKey.State.NEXT).first()
        if new is None:
            raise Conflict("No key rotation is in progress.")
        audit_record(
            actor=actor,
            team=team,
            verb="server.team_key_rotation_cancelled",
            target=new,
            request=request,
            data={"fingerprint": new.fingerprint},
        )
        new.delete()


def team_server_settings_update(
    *, team: Team, actor: Any, trust_on_first_use: bool, request: HttpRequest | None = None
) -> TeamServerSettings:
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="change server settings")
    settings = team_server_settings_get(team=team)
    if settings.trust_on_first_use != trust_on_first_use:
        settings.trust_on_first_use = trust_on_first_use
        settings.save(update_fields=["trust_on_first_use", "updated_at"])
        audit_record(
            actor=actor,
            team=team,
            verb="server.settings_changed",
            request=request,
            data={"trust_on_first_use": trust_on_first_use},
        )
    return settings


# --- servers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What the admin entered. Empty secrets on update mean "keep the stored one"."""

    auth_method: str = Server.AuthMethod.TEAM_KEY
    private_key: str = ""
    passphrase: str = ""
    password: str = ""


def _apply_credentials(server: Server, credentials: Credentials, *, creating: bool) -> list[str]:
    """Validate and set the credentials on `server`; returns the names of what changed."""
    method = credentials.auth_method
    if method not in Server.AuthMethod.values:
        raise ServiceError("Choose how Pipetower logs in.", field="auth_method")
    changed: list[str] = []
    switching = creating or method != server.auth_method
    if method == Server.AuthMethod.PRIVATE_KEY:
        if credentials.private_key.strip():
            try:
                material = keylib.import_uploaded_key(
                    credentials.private_key, credentials.passphrase
                )
            except SshError as exc:
                field = "passphrase" if exc.kind == "passphrase" else "private_key"
                raise ServiceError(exc.message, field=field, code=exc.kind) from None
            server.private_key = material.private_openssh
            server.private_key_fingerprint = material.fingerprint
            server.private_key_type = material.algorithm
            changed.append("private_key")
        elif switching or not server.private_key_fingerprint:
            raise ServiceError("Paste or upload the private key.", field="private_key")
        server.password = ""
    elif method == Server.AuthMethod.PASSWORD:
        if credentials.password:
            if len(credentials.password) > MAX_PASSWORD_CHARS:
                raise ServiceError("That password is too long.", field="password")
            server.password = credentials.password
            changed.append("password")
        elif switching:
            raise ServiceError("Enter the SSH password.", field="password")
        server.private_key = ""
        server.private_key_fingerprint = ""
        server.private_key_type = ""
    else:
        server.private_key = ""
        server.private_key_fingerprint = ""
        server.private_key_type = ""
        server.password = ""
    if switching:
        changed.append("auth_method")
    server.auth_method = method
    return changed


def _set_tags(server: Server, names: list[str]) -> None:
    tags = []
    for name in names:
        tag, _created = Tag.objects.get_or_create(team=server.team, name=name)
        tags.append(tag)
    server.tags.set(tags)


def _save_unique(server: Server) -> None:
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:
        raise Conflict(
            f"This team already has a server named {server.name!r}.", field="name"
        ) from None


def server_create(
    *,
    team: Team,
    actor: Any,
    name: str,
    host: str,
    port: int = 22,
    username: str,
    tags: str | Iterable[str] = (),
    credentials: Credentials | None = None,
    request: HttpRequest | None = None,
) -> Server:
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="add servers")
    server = Server(
        team=team,
        name=_validate_name(name),
        host=_allowed_host(host),
        port=validate_port(port),
        username=validate_username(username),
        created_by=actor,
    )
    tag_names = parse_tags(tags)
    credentials = credentials or Credentials()
    _apply_credentials(server, credentials, creating=True)
    if server.auth_method == Server.AuthMethod.TEAM_KEY:
        team_ssh_key_ensure(team=team, actor=actor)
    with transaction.atomic():
        _save_unique(server)
        _set_tags(server, tag_names)
        audit_record(
            actor=actor,
            team=team,
            verb="server.created",
            target=server,
            request=request,
            data={
                "address": server.address,
                "auth_method": server.auth_method,
                "tags": tag_names,
            },
        )
    return server


def server_update(
    *,
    server: Server,
    actor: Any,
    name: str,
    host: str,
    port: int,
    username: str,
    tags: str | Iterable[str],
    credentials: Credentials | None = None,
    request: HttpRequest | None = None,
) -> Server:
    """Change a server. A new host or port drops the pin: it is another machine now."""
    team = server.team
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="change servers")
    before = {
        "name": server.name,
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "tags": sorted(server.tags.values_list("name", flat=True)),
    }
    server.name = _validate_name(name)
    server.host = _allowed_host(host)
    server.port = validate_port(port)
    server.username = validate_username(username)
    tag_names = parse_tags(tags)
    changed_secrets = _apply_credentials(server, credentials, creating=False) if credentials else []
    after = {
        "name": server.name,
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "tags": sorted(tag_names),
    }
    changes = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
    pin_dropped = server.is_pinned and (
        before["host"] != server.host or before["port"] != server.port
    )
    if pin_dropped:
        _clear_pin(server)
    if server.auth_method == Server.AuthMethod.TEAM_KEY:
        team_ssh_key_ensure(team=team, actor=actor)
    with transaction.atomic():
        _save_unique(server)
        _set_tags(server, tag_names)
        if changes or changed_secrets:
            audit_record(
                actor=actor,
                team=team,
                verb="server.updated",
                target=server,
                request=request,
                data={
                    "changes": changes,
                    "credentials_changed": changed_secrets,
                    "auth_method": server.auth_method,
                    "host_key_unpinned": pin_dropped,
                },
            )
    return server


def server_delete(*, server: Server, actor: Any, request: HttpRequest | None = None) -> None:
    team = server.team
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="delete servers")
    with transaction.atomic():
        audit_record(
            actor=actor,
            team=team,
            verb="server.deleted",
            target=server,
            request=request,
            data={"address": server.address},
        )
        server.delete()


# --- host keys -----------------------------------------------------------------------------


def _clear_pin(server: Server) -> None:
    server.host_keys = ""
    server.host_key_pinned_at = None
    server.host_key_pinned_by = None
    server.host_key_pin_source = ""
    server.offered_host_key = ""
    server.offered_host_key_at = None


def _pin(server: Server, lines: list[str], *, actor: Any, source: str) -> None:
    server.host_keys = "\n".join(lines)
    server.host_key_pinned_at = timezone.now()
    server.host_key_pinned_by = actor if getattr(actor, "is_authenticated", False) else None
    server.host_key_pin_source = source
    server.offered_host_key = ""
    server.offered_host_key_at = None
    if server.last_check_error in {"host_key_changed", "host_key_unknown"}:
        server.last_check_error = ""
        server.last_check_ok = None
        server.last_check_message = "Host key pinned; test the connection again."


_PIN_FIELDS = [
    "host_keys",
    "host_key_pinned_at",
    "host_key_pinned_by",
    "host_key_pin_source",
    "offered_host_key",
    "offered_host_key_at",
    "last_check_error",
    "last_check_ok",
    "last_check_message",
    "updated_at",
]


def server_host_key_pin(
    *,
    server: Server,
    actor: Any,
    fingerprint: str,
    replace: bool = False,
    request: HttpRequest | None = None,
) -> Server:
    """Pin the key the host presented at the last check, after an admin confirmed its fingerprint.

    `fingerprint` must be the one the admin saw, so a key that changed in the
    meantime is never pinned unseen. Replacing an existing pin (`replace=True`)
    is the explicit re-pin after a host key change.
    """
    team = server.team
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="pin host keys")
    with transaction.atomic():
        locked = Server.objects.select_for_update().select_related("team").get(pk=server.pk)
        offered = locked.offered_host_key_line  # Ed25519 when the host has one
        if not offered:
            raise Conflict(
                "There is no presented host key to confirm: test the connection first.",
                field="fingerprint",
            )
        offered_fingerprint = keylib.fingerprint_of_line(offered)
        others = {keylib.fingerprint_of_line(line) for line in locked.offered_host_keys[1:]}
        if fingerprint.strip() in others:
            raise Conflict(
                f"Pipetower pins the host's {keylib.key_type_of_line(offered)} key: compare "
                f"and confirm its fingerprint, {offered_fingerprint}.",
                field="fingerprint",
            )
        if fingerprint.strip() != offered_fingerprint:
            raise Conflict(
                "The fingerprint you confirmed is not the one the host presented. Test the "
                "connection again and compare the fingerprint before pinning.",
                field="fingerprint",
            )
        old = locked.host_key_fingerprints
        if locked.is_pinned and not replace:
            raise Conflict(
                "This server already has a pinned host key. Re-pinning replaces it: confirm "
                "the re-pin explicitly.",
                field="fingerprint",
            )
        _pin(locked, [offered], actor=actor, source=Server.PinSource.CONFIRMED)
        locked.save(update_fields=_PIN_FIELDS)
        audit_record(
            actor=actor,
            team=team,
            verb="server.host_key_repinned" if old else "server.host_key_pinned",
            target=locked,
            request=request,
            data={"fingerprint": offered_fingerprint, "previous": old, "how": "confirmed"},
        )
    _copy_pin(locked, server)
    return server


def server_host_key_paste(
    *,
    server: Server,
    actor: Any,
    text: str,
    replace: bool = False,
    request: HttpRequest | None = None,
) -> Server:
    """Pin host keys from a pasted known_hosts line (or public key lines)."""
    team = server.team
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="pin host keys")
    try:
        lines = keylib.parse_host_keys(text)
    except SshError as exc:
        raise ServiceError(exc.message, field="known_hosts", code=exc.kind) from None
    with transaction.atomic():
        locked = Server.objects.select_for_update().select_related("team").get(pk=server.pk)
        old = locked.host_key_fingerprints
        if locked.is_pinned and not replace:
            raise Conflict(
                "This server already has a pinned host key. Re-pinning replaces it: confirm "
                "the re-pin explicitly.",
                field="known_hosts",
            )
        _pin(locked, lines, actor=actor, source=Server.PinSource.PASTED)
        locked.save(update_fields=_PIN_FIELDS)
        audit_record(
            actor=actor,
            team=team,
            verb="server.host_key_repinned" if old else "server.host_key_pinned",
            target=locked,
            request=request,
            data={
                "fingerprint": ", ".join(keylib.fingerprint_of_line(line) for line in lines),
                "previous": old,
                "how": "pasted",
            },
        )
    _copy_pin(locked, server)
    return server


def server_host_key_trust_first_use(
    *, server_id: int, key_line: str, actor: Any = None, request: HttpRequest | None = None
) -> bool:
    """Pin `key_line` because the team trusts on first use. Returns True if it pinned.

    Safe to call from several connections at once: only the first pins; a server
    that was pinned meanwhile keeps its pin. This is what the run engine calls
    (on the task's thread) after `ssh_connect(on_first_use=...)` reported a key.
    """
    with transaction.atomic():
        server = (
            Server.objects.select_for_update().select_related("team").filter(pk=server_id).first()
        )
        if server is None or server.is_pinned:
            return False
        if not team_server_settings_get(team=server.team).trust_on_first_use:
            return False
        lines = keylib.parse_host_keys(key_line)
        _pin(server, lines, actor=actor, source=Server.PinSource.TRUST_ON_FIRST_USE)
        server.host_key_pinned_by = None
        server.save(update_fields=_PIN_FIELDS)
        audit_record(
            actor=actor,
            team=server.team,
            verb="server.host_key_pinned",
            target=server,
            request=request,
            data={
                "fingerprint": keylib.fingerprint_of_line(lines[0]),
                "previous": [],
                "how": "trust_on_first_use",
            },
        )
    return True


def _copy_pin(source: Server, target: Server) -> None:
    for name in _PIN_FIELDS:
        if name == "host_key_pinned_by":
            target.host_key_pinned_by = source.host_key_pinned_by
        else:
            setattr(target, name, getattr(source, name))


# --- connection test --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    message: str
    error_kind: str = ""
    facts: RemoteFacts | None = None
    first_use_key: str = ""  # trust on first use accepted this key during the check
    offered_fingerprint: str = ""  # a key awaiting an admin's confirmation

    @property
    def title(self) -> str:
        return "Connected" if self.ok else ERROR_TITLES.get(self.error_kind, "Failed")


def run_async[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code (views, services, tasks).

    If this thread already runs an event loop (an async caller, or a test
    driver), the coroutine gets a fresh loop in a helper thread instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipetower-ssh") as pool:
        return pool.submit(asyncio.run, coro).result()


def format_uptime(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if not days and (minutes or not hours):
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return ", ".join(parts)


def server_check(
    *,
    server: Server,
    actor: Any,
    connect_timeout: float = 10.0,
    request: HttpRequest | None = None,
) -> CheckOutcome:
    """Test the connection: log in and read hostname, OS and uptime; record the result.

    With no pin and no trust on first use, only the host key is fetched (no
    login is attempted to an unverified host) and kept for an admin to confirm.
    """
    team = server.team
    _require_role(team=team, actor=actor, role=Role.OPERATOR, doing="test connections")
    outcome = _check(server, connect_timeout=connect_timeout)
    if outcome.first_use_key:
        server_host_key_trust_first_use(
            server_id=server.pk, key_line=outcome.first_use_key, actor=actor, request=request
        )
    server.refresh_from_db()
    server.last_check_at = timezone.now()
    server.last_check_ok = outcome.ok
    server.last_check_error = outcome.error_kind
    server.last_check_message = outcome.message
    fields = ["last_check_at", "last_check_ok", "last_check_error", "last_check_message"]
    if outcome.facts is not None:
        server.remote_hostname = outcome.facts.hostname
        server.remote_os = outcome.facts.os
        server.remote_uptime_seconds = outcome.facts.uptime_seconds
        fields += ["remote_hostname", "remote_os", "remote_uptime_seconds"]
    server.save(update_fields=[*fields, "updated_at"])
    return outcome


# A test asked for more than this long ago and not finished counts as lost (its
# task died with its worker): the server may be tested again.
CHECK_LOST_AFTER = timedelta(seconds=90)
# Connection tests one person may have waiting or running at once, over all servers.
CHECKS_PER_USER = 3


class TooManyChecks(ServiceError):
    code = "too_many_requests"
    status = 429
    retry_after = 10


def check_is_pending(server: Server) -> bool:
    requested = server.check_requested_at
    if requested is None or requested < timezone.now() - CHECK_LOST_AFTER:
        return False
    return server.last_check_at is None or server.last_check_at < requested


def server_check_request(
    *, server: Server, actor: Any, request: HttpRequest | None = None
) -> Server:
    """Ask for a connection test; it runs as a task (`server_check_task`), never in
    the web request, and its result lands in the server's last_check fields.

    One test per server at a time (asking again while one is pending changes
    nothing), and at most CHECKS_PER_USER pending per person.
    """
    from pipetower.servers.tasks import server_check_task

    _require_role(team=server.team, actor=actor, role=Role.OPERATOR, doing="test connections")
    now = timezone.now()
    with transaction.atomic():
        locked = Server.objects.select_for_update().get(pk=server.pk)
        if check_is_pending(locked):
            return locked
        mine = Server.objects.filter(
            check_requested_by=actor, check_requested_at__gte=now - CHECK_LOST_AFTER
        ).filter(Q(last_check_at__isnull=True) | Q(last_check_at__lt=F("check_requested_at")))
        if mine.count() >= CHECKS_PER_USER:
            raise TooManyChecks(
                f"You already have {CHECKS_PER_USER} connection tests running. "
                "Wait for one to finish, then try again."
            )
        locked.check_requested_at = now
        locked.check_requested_by = actor
        locked.save(update_fields=["check_requested_at", "check_requested_by", "updated_at"])
        # Through the outbox, like every task: a broker outage delays the test, never loses it.
        outbox_enqueue(server_check_task, locked.pk, actor.pk, subject=f"servers.check:{locked.pk}")
    return locked


def server_check_run(
    *, server_id: int, actor_id: int, connect_timeout: float = 10.0
) -> CheckOutcome | None:
    """The task's work: test the connection as the person who asked (roles re-checked)."""
    from django.contrib.auth import get_user_model

    server = Server.objects.select_related("team").filter(pk=server_id).first()
    actor = get_user_model().objects.filter(pk=actor_id).first()
    if server is None or actor is None:
        return None
    try:
        return server_check(server=server, actor=actor, connect_timeout=connect_timeout)
    except NotAllowed as exc:  # the role was taken away meanwhile
        Server.objects.filter(pk=server_id).update(
            last_check_at=timezone.now(), last_check_ok=False, last_check_message=exc.message
        )
        return None


def _check(server: Server, *, connect_timeout: float) -> CheckOutcome:
    try:
        spec = connection_spec_for(server)
    except SshError as exc:
        return CheckOutcome(ok=False, message=exc.message, error_kind=exc.kind)
    if not spec.pinned_host_keys and not spec.trust_on_first_use:
        return _fetch_for_confirmation(server, connect_timeout=connect_timeout)
    first_use: list[str] = []
    try:
        facts = run_async(
            check_connection(spec, connect_timeout=connect_timeout, on_first_use=first_use.append)
        )
    except SshError as exc:
        if exc.kind == "host_key_changed" and exc.presented_host_key:
            _remember_offer(server, exc.presented_host_key)
        return CheckOutcome(
            ok=False,
            message=exc.message,
            error_kind=exc.kind,
            first_use_key=first_use[0] if first_use else "",
            offered_fingerprint=(
                keylib.fingerprint_of_line(exc.presented_host_key)
                if exc.kind == "host_key_changed" and exc.presented_host_key
                else ""
            ),
        )
    message = (
        f"Logged in to {facts.hostname or server.host} as {server.username}: {facts.os}, "
        f"up {format_uptime(facts.uptime_seconds)}."
    )
    return CheckOutcome(
        ok=True, message=message, facts=facts, first_use_key=first_use[0] if first_use else ""
    )


def _fetch_for_confirmation(server: Server, *, connect_timeout: float) -> CheckOutcome:
    """Fetch every host key the host has (no login) for an admin to compare and confirm."""
    try:
        lines = run_async(
            fetch_host_keys(server.host, server.port, connect_timeout=connect_timeout)
        )
    except SshError as exc:
        return CheckOutcome(ok=False, message=exc.message, error_kind=exc.kind)
    return _offer_outcome(server, lines)


def _offer_outcome(server: Server, lines: list[str]) -> CheckOutcome:
    """Keep the keys a host presented for an admin to confirm, and say so."""
    lines = keylib.host_key_lines("\n".join(lines))
    _remember_offer(server, "\n".join(lines))
    pinned = lines[0]
    fingerprint = keylib.fingerprint_of_line(pinned)
    others = [keylib.host_key_label_of_line(line) for line in lines[1:]]
    return CheckOutcome(
        ok=False,
        error_kind="host_key_unknown",
        message=(
            f"The host presented the {keylib.key_type_of_line(pinned)} key {fingerprint}"
            + (f" (and {', '.join(others)})" if others else "")
            + ". Compare it with the fingerprint the server itself shows (run ssh-keygen -lf "
            f"{keylib.host_key_file_of_line(pinned)} on it) and confirm to pin it; Pipetower "
            "logs in only after that."
        ),
        offered_fingerprint=fingerprint,
    )


def _remember_offer(server: Server, line: str) -> None:
    Server.objects.filter(pk=server.pk).update(
        offered_host_key=line, offered_host_key_at=timezone.now()
    )
    server.offered_host_key = line
    server.offered_host_key_at = timezone.now()


# --- fleets: import, bulk tags, bulk host-key fetch and pin -----------------------------------


def _inventory_checked(*, team: Team, inventory: Any, default_user: str) -> Any:
    from pipetower.servers.inventory import inventory_check

    existing = Server.objects.filter(team=team).values_list("name", "username", "host", "port")
    names = []
    addresses: dict[tuple[str, str, int], str] = {}
    for name, username, host, port in existing:
        names.append(name)
        addresses[(username, host, port)] = name
    return inventory_check(
        inventory,
        existing_names=names,
        existing_addresses=addresses,
        default_user=default_user.strip(),
    )


def servers_import_preview(
    *, team: Team, actor: Any, text: str, format: str = "auto", default_user: str = ""
) -> Any:
    """What `servers_import` would do with this inventory: every row, and its errors."""
    from pipetower.servers.inventory import inventory_parse

    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="import servers")
    inventory = inventory_parse(text, format=format)
    return _inventory_checked(team=team, inventory=inventory, default_user=default_user)


@dataclass(frozen=True)
class ImportResult:
    inventory: Any  # pipetower.servers.inventory.Inventory, every row with its errors
    created: list[Server]


def servers_import(
    *,
    team: Team,
    actor: Any,
    text: str,
    format: str = "auto",
    default_user: str = "",
    request: HttpRequest | None = None,
) -> ImportResult:
    """Add every valid server of an inventory in one go; lines with errors are left out.

    The servers log in with the team's key and start unpinned: fetch and confirm
    their host keys next (`servers_host_keys_fetch_request`, `servers_host_keys_pin`).
    """
    from pipetower.servers.inventory import inventory_parse

    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="import servers")
    inventory = inventory_parse(text, format=format)
    team_ssh_key_ensure(team=team, actor=actor)
    with transaction.atomic():
        # One import at a time per team: names and addresses are checked against what is there.
        list(Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True))
        _inventory_checked(team=team, inventory=inventory, default_user=default_user)
        rows = inventory.valid_rows
        if not rows:
            raise ServiceError(
                "Nothing to import: every line has an error. Fix them and preview again.",
                field="text",
            )
        servers = [
            Server(
                team=team,
                name=row.name,
                host=row.host,
                port=int(row.port),
                username=row.user,
                created_by=actor,
            )
            for row in rows
        ]
        Server.objects.bulk_create(servers)
        if not all(server.pk for server in servers):  # a database without RETURNING
            by_name = dict(
                Server.objects.filter(team=team, name__in=[s.name for s in servers]).values_list(
                    "name", "pk"
                )
            )
            for server in servers:
                server.pk = by_name[server.name]
        tag_names = sorted({tag for row in rows for tag in row.tags})
        tags = _tags_ensure(team=team, names=tag_names)
        Through = Server.tags.through
        Through.objects.bulk_create(
            [
                Through(server_id=server.pk, tag_id=tags[name].pk)
                for server, row in zip(servers, rows, strict=True)
                for name in row.tags
            ]
        )
        for server, row in zip(servers, rows, strict=True):
            audit_record(
                actor=actor,
                team=team,
                verb="server.created",
                target=server,
                request=request,
                data={
                    "address": server.address,
                    "auth_method": server.auth_method,
                    "tags": row.tags,
                    "imported_from": inventory.format,
                    "line": row.line,
                },
            )
    return ImportResult(inventory=inventory, created=servers)


def _tags_ensure(*, team: Team, names: list[str]) -> dict[str, Tag]:
    tags = {tag.name: tag for tag in Tag.objects.filter(team=team, name__in=names)}
    missing = [Tag(team=team, name=name) for name in names if name not in tags]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        tags = {tag.name: tag for tag in Tag.objects.filter(team=team, name__in=names)}
    return tags


MAX_BULK_SERVERS = 1000


def _team_servers_locked(*, team: Team, server_ids: Iterable[int | str]) -> list[Server]:
    try:
        ids = sorted({int(pk) for pk in server_ids})
    except (TypeError, ValueError):
        raise ServiceError("Choose servers from the list.", field="server_ids") from None
    if not ids:
        raise ServiceError("Choose at least one server.", field="server_ids")
    if len(ids) > MAX_BULK_SERVERS:
        raise ServiceError(
            f"Choose at most {MAX_BULK_SERVERS} servers at once.", field="server_ids"
        )
    # Other teams' ids are ignored, never an error that would reveal them.
    return list(
        Server.objects.select_for_update(of=("self",))
        .select_related("team")
        .filter(team=team, pk__in=ids)
        .defer("private_key", "password")
        .order_by("name", "id")
    )


@dataclass(frozen=True)
class TagsChange:
    changed: list[Server]
    unchanged: list[Server]


def servers_tags_bulk(
    *,
    team: Team,
    actor: Any,
    server_ids: Iterable[int | str],
    add: str | Iterable[str] = (),
    remove: str | Iterable[str] = (),
    request: HttpRequest | None = None,
) -> TagsChange:
    """Add and/or remove tags on many servers at once; one audit row per server changed."""
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="change servers")
    to_add = parse_tags(add)
    to_remove = [tag for tag in parse_tags(remove) if tag not in to_add]
    if not to_add and not to_remove:
        raise ServiceError("Name a tag to add or to remove.", field="add")
    with transaction.atomic():
        servers = _team_servers_locked(team=team, server_ids=server_ids)
        if not servers:
            raise ServiceError("None of these servers is in this team.", field="server_ids")
        current: dict[int, set[str]] = {server.pk: set() for server in servers}
        Through = Server.tags.through
        for server_id, name in Through.objects.filter(server__in=servers).values_list(
            "server_id", "tag__name"
        ):
            current[server_id].add(name)
        tags = _tags_ensure(team=team, names=to_add)
        changed, unchanged = [], []
        for server in servers:
            before = current[server.pk]
            after = (before | set(to_add)) - set(to_remove)
            if len(after) > MAX_TAGS:
                raise ServiceError(
                    f"{server.name} would have {len(after)} tags; a server can have at most "
                    f"{MAX_TAGS}.",
                    field="add",
                )
            if after == before:
                unchanged.append(server)
                continue
            changed.append(server)
            audit_record(
                actor=actor,
                team=team,
                verb="server.updated",
                target=server,
                request=request,
                data={"changes": {"tags": [sorted(before), sorted(after)]}, "bulk": True},
            )
        ids = [server.pk for server in changed]
        if to_remove:
            Through.objects.filter(
                server_id__in=ids, tag__team=team, tag__name__in=to_remove
            ).delete()
        if to_add:
            Through.objects.bulk_create(
                [
                    Through(server_id=server.pk, tag_id=tags[name].pk)
                    for server in changed
                    for name in to_add
                    if name not in current[server.pk]
                ]
            )
        Server.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    return TagsChange(changed=changed, unchanged=unchanged)


# Host keys fetched together by one task: all at once, so a batch of unreachable
# hosts costs one connect timeout, not one each.
FETCH_BATCH = 25


def servers_host_keys_fetch_request(
    *,
    team: Team,
    actor: Any,
    server_ids: Iterable[int | str],
    request: HttpRequest | None = None,
) -> list[Server]:
    """Ask for the host keys of many unpinned servers (after an import). They are
    fetched by tasks (`servers_host_keys_fetch_task`), FETCH_BATCH servers each,
    never in the web request; results land in each server's last-check fields
    and presented keys, as a single "Test connection" would leave them.

    Pinned servers and servers with a test already pending are left out.
    """
    from pipetower.servers.tasks import servers_host_keys_fetch_task

    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="fetch host keys")
    now = timezone.now()
    with transaction.atomic():
        servers = [
            server
            for server in _team_servers_locked(team=team, server_ids=server_ids)
            if not server.is_pinned and not check_is_pending(server)
        ]
        ids = [server.pk for server in servers]
        Server.objects.filter(pk__in=ids).update(
            check_requested_at=now, check_requested_by=actor, updated_at=now
        )
        for start in range(0, len(ids), FETCH_BATCH):
            batch = ids[start : start + FETCH_BATCH]
            outbox_enqueue(
                servers_host_keys_fetch_task,
                batch,
                actor.pk,
                subject=f"servers.fetch_host_keys:{team.pk}",
            )
    for server in servers:
        server.check_requested_at = now
    return servers


def servers_host_keys_fetch_run(
    *, server_ids: list[int], actor_id: int, connect_timeout: float = 10.0
) -> None:
    """The task's work: fetch the presented keys of these servers concurrently (no login)."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first()
    # A server pinned meanwhile keeps its pin and its last check.
    servers = list(Server.objects.select_related("team").filter(pk__in=server_ids, host_keys=""))
    if actor is None or not servers:
        return
    team = servers[0].team
    try:
        _require_role(team=team, actor=actor, role=Role.ADMIN, doing="fetch host keys")
    except NotAllowed as exc:  # the role was taken away meanwhile
        Server.objects.filter(pk__in=server_ids).update(
            last_check_at=timezone.now(), last_check_ok=False, last_check_message=exc.message
        )
        return

    async def fetch_all() -> list[list[str] | SshError]:
        async def one(server: Server) -> list[str] | SshError:
            try:
                return await fetch_host_keys(
                    server.host, server.port, connect_timeout=connect_timeout
                )
            except SshError as exc:
                return exc

        return list(await asyncio.gather(*(one(server) for server in servers)))

    results = run_async(fetch_all())
    for server, result in zip(servers, results, strict=True):
        if isinstance(result, SshError):
            outcome = CheckOutcome(ok=False, message=result.message, error_kind=result.kind)
        else:
            outcome = _offer_outcome(server, result)
        Server.objects.filter(pk=server.pk).update(
            last_check_at=timezone.now(),
            last_check_ok=outcome.ok,
            last_check_error=outcome.error_kind,
            last_check_message=outcome.message,
        )


@dataclass(frozen=True)
class PinResult:
    pinned: list[Server]
    refused: list[tuple[Server, str]]


def servers_host_keys_pin(
    *,
    team: Team,
    actor: Any,
    fingerprints: dict[int, str],
    request: HttpRequest | None = None,
) -> PinResult:
    """Pin the presented keys of many servers, each after the person saw its fingerprint.

    `fingerprints` maps server ids to the fingerprint shown next to the tick box;
    each is pinned by `server_host_key_pin` (same checks, same audit row), and a
    server whose key changed meanwhile is refused, not pinned unseen.
    """
    _require_role(team=team, actor=actor, role=Role.ADMIN, doing="pin host keys")
    try:
        fingerprints = {int(pk): str(value).strip() for pk, value in fingerprints.items()}
    except (TypeError, ValueError):
        raise ServiceError("Choose servers from the list.", field="pin") from None
    if not fingerprints:
        raise ServiceError("Tick the servers whose fingerprints you compared.", field="pin")
    pinned: list[Server] = []
    refused: list[tuple[Server, str]] = []
    with transaction.atomic():
        servers = _team_servers_locked(team=team, server_ids=fingerprints)
        for server in servers:
            try:
                with transaction.atomic():
                    server_host_key_pin(
                        server=server,
                        actor=actor,
                        fingerprint=fingerprints[server.pk],
                        request=request,
                    )
            except ServiceError as exc:
                refused.append((server, exc.message))
            else:
                pinned.append(server)
    return PinResult(pinned=pinned, refused=refused)
