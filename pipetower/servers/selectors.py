"""Reads of servers and their keys. Every lookup of a team's server goes through
`server_get_for_user`, which answers 404 for missing and forbidden alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.http import Http404

from pipetower.servers.models import Server, Tag, TeamServerSettings, TeamSshKey
from pipetower.teams.models import Membership, Team

# Never load secrets for pages that list servers.
_SECRETS = ("private_key", "password")


def _is_member(*, user: Any, team: Team) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return Membership.objects.filter(team=team, user=user).exists()


# Sort orders of the server list: value → (label, ordering).
SERVER_SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "name": ("Name", ("name", "id")),
    "-name": ("Name, Z to A", ("-name", "-id")),
    "host": ("Address", ("host", "port", "name", "id")),
    "-last_check": (
        "Last checked, newest first",
        (F("last_check_at").desc(nulls_last=True), "name", "id"),
    ),
    "last_check": (
        "Last checked, oldest first",
        (F("last_check_at").asc(nulls_first=True), "name", "id"),
    ),
    "-created": ("Added, newest first", ("-created_at", "-id")),
}
# Pin filters of the server list: value → label.
PIN_FILTERS = {
    "pinned": "Pinned",
    "unpinned": "Not pinned",
    "changed": "Host key changed",
}
CHECK_FILTERS = {
    "ok": "Last check OK",
    "failed": "Last check failed",
    "never": "Never checked",
}


def servers_for_team(
    *,
    team: Team,
    tag: str = "",
    query: str = "",
    pin: str = "",
    check: str = "",
    sort: str = "name",
) -> QuerySet[Server]:
    """The team's servers for listing (no secrets loaded), filtered and sorted in the
    database. Unknown filter or sort values are ignored (the list shows everything)."""
    servers = (
        Server.objects.filter(team=team)
        .defer(*_SECRETS)
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )
    if tag:
        servers = servers.filter(
            pk__in=Server.objects.filter(team=team, tags__name=tag.strip().lower()).values("pk")
        )
    if query:
        servers = servers.filter(Q(name__icontains=query) | Q(host__icontains=query))
    if pin == "pinned":
        servers = servers.exclude(host_keys="")
    elif pin == "unpinned":
        servers = servers.filter(host_keys="")
    elif pin == "changed":
        servers = servers.exclude(host_keys="").filter(last_check_error="host_key_changed")
    if check == "ok":
        servers = servers.filter(last_check_ok=True)
    elif check == "failed":
        servers = servers.filter(last_check_ok=False)
    elif check == "never":
        servers = servers.filter(last_check_at__isnull=True)
    ordering = SERVER_SORTS.get(sort, SERVER_SORTS["name"])[1]
    return servers.order_by(*ordering)


def servers_awaiting_pin(*, team: Team, limit: int = 1000) -> list[Server]:
    """The team's unpinned servers, for the bulk pin page (no secrets loaded)."""
    return list(
        Server.objects.filter(team=team, host_keys="")
        .defer(*_SECRETS)
        .order_by("name", "id")[:limit]
    )


def server_get_for_user(*, user: Any, team: Team, server_id: int | str) -> Server:
    """The team's server with this id, if `user` is a member of `team`; otherwise 404."""
    try:
        pk = int(server_id)
    except (TypeError, ValueError):
        raise Http404("No such server.") from None
    if not _is_member(user=user, team=team):
        raise Http404("No such server.")
    try:
        return Server.objects.select_related("team", "host_key_pinned_by").get(team=team, pk=pk)
    except Server.DoesNotExist:
        raise Http404("No such server.") from None


def servers_for_targets(
    *, team: Team, server_ids: Iterable[int] = (), tags: Iterable[str] = ()
) -> QuerySet[Server]:
    """The team's servers named by id or carrying any of the tags (a union), by name.

    Ids of other teams' servers are ignored, never an error that would reveal them.
    """
    ids = [int(pk) for pk in server_ids]
    names = [name.strip().lower() for name in tags if name.strip()]
    if not ids and not names:
        return Server.objects.none()
    wanted = Q(pk__in=ids) | Q(tags__team=team, tags__name__in=names)
    matching = Server.objects.filter(team=team).filter(wanted).values("pk")
    return Server.objects.filter(pk__in=matching).select_related("team").order_by("name", "id")


def tags_for_team(*, team: Team) -> QuerySet[Tag]:
    return Tag.objects.filter(team=team, servers__isnull=False).distinct().order_by("name")


def team_server_settings_get(*, team: Team) -> TeamServerSettings:
    settings, _created = TeamServerSettings.objects.get_or_create(team=team)
    return settings


def team_ssh_key_current(*, team: Team) -> TeamSshKey | None:
    return (
        TeamSshKey.objects.filter(team=team, state=TeamSshKey.State.CURRENT)
        .defer("private_key")
        .first()
    )


def team_ssh_key_next(*, team: Team) -> TeamSshKey | None:
    return (
        TeamSshKey.objects.filter(team=team, state=TeamSshKey.State.NEXT)
        .defer("private_key")
        .first()
    )


def team_ssh_keys_active(*, team: Team) -> list[TeamSshKey]:
    """Keys a connection offers: the new key of a rotation in progress first, then the current."""
    keys = TeamSshKey.objects.filter(
        team=team, state__in=(TeamSshKey.State.CURRENT, TeamSshKey.State.NEXT)
    )
    return sorted(keys, key=lambda key: 0 if key.state == TeamSshKey.State.NEXT else 1)
