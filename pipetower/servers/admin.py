"""Back office views of servers. Secrets are never shown or editable here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from pipetower.servers.models import Server, Tag, TeamServerSettings, TeamSshKey


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "host", "port", "username", "auth_method", "last_check_ok")
    list_filter = ("auth_method", "last_check_ok")
    search_fields = ("name", "host", "team__slug")
    list_select_related = ("team",)
    exclude = ("private_key", "password", "tags")
    readonly_fields = (
        "team",
        "private_key_fingerprint",
        "private_key_type",
        "host_keys",
        "host_key_pinned_at",
        "host_key_pinned_by",
        "host_key_pin_source",
        "offered_host_key",
        "offered_host_key_at",
        "last_check_at",
        "last_check_ok",
        "last_check_error",
        "last_check_message",
        "remote_hostname",
        "remote_os",
        "remote_uptime_seconds",
        "created_by",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Changes go through the team's pages, where they are validated and audited.
        return False


@admin.register(TeamSshKey)
class TeamSshKeyAdmin(admin.ModelAdmin):
    list_display = ("team", "state", "fingerprint", "created_at", "retired_at")
    list_filter = ("state",)
    search_fields = ("team__slug", "fingerprint")
    exclude = ("private_key",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "team")
    search_fields = ("name", "team__slug")


@admin.register(TeamServerSettings)
class TeamServerSettingsAdmin(admin.ModelAdmin):
    list_display = ("team", "trust_on_first_use", "updated_at")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
