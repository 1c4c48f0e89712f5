"""The staff back office for servers: no names, addresses, keys or check output.

Those are the team's content; staff see them only through the team's pages
under its support access (privacy.support_access)."""

from __future__ import annotations

from django.contrib import admin

from pipetower.privacy.staff_admin import TeamContentAdmin
from pipetower.servers.models import Server, Tag, TeamServerSettings, TeamSshKey


@admin.register(Server)
class ServerAdmin(TeamContentAdmin):
    list_filter = ("auth_method", "last_check_ok")


@admin.register(TeamSshKey)
class TeamSshKeyAdmin(TeamContentAdmin):
    list_filter = ("state",)


@admin.register(Tag)
class TagAdmin(TeamContentAdmin):
    pass


@admin.register(TeamServerSettings)
class TeamServerSettingsAdmin(TeamContentAdmin):
    pass
