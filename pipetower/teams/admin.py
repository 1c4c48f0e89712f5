from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from pipetower.teams.models import Invitation, Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at", "created_by")
    search_fields = ("name", "slug")
    readonly_fields = ("data_key", "created_at", "created_by")
    inlines = (MembershipInline,)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "user__name", "team__name", "team__slug")
    list_select_related = ("user", "team")
    raw_id_fields = ("user", "team")
    readonly_fields = ("created_at",)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made by the teams' own pages (which mail the token); the
    back office can look, extend or revoke, but never sees or edits the token hash."""

    list_display = ("email", "team", "role", "state", "sent_at", "expires_at")
    list_filter = ("role",)
    search_fields = ("email", "team__name", "team__slug")
    list_select_related = ("team",)
    exclude = ("token_hash",)
    raw_id_fields = ("team", "invited_by", "accepted_by")
    readonly_fields = (
        "team",
        "email",
        "invited_by",
        "created_at",
        "sent_at",
        "accepted_at",
        "accepted_by",
    )

    @admin.display(description="State")
    def state(self, obj: Invitation) -> str:
        return obj.state

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
