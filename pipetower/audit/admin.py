"""The staff back office for the activity log: when, which team and what kind of
event; never who in the team, on what, from where or with what details."""

from __future__ import annotations

from django.contrib import admin

from pipetower.audit.models import AuditEvent
from pipetower.privacy.staff_admin import TeamContentAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(TeamContentAdmin):
    # The verb is a code Pipetower writes ("action.updated"), not the team's words;
    # the actor is left out too: who did what in a team is the team's business.
    shown_text_fields = ("verb",)
    list_filter = ("verb",)
    date_hierarchy = "created_at"
    list_select_related = ("team",)
    ordering = ("-created_at", "-id")

    def get_list_display(self, request):
        return ["id", "created_at", "team", "verb"]

    def get_fields(self, request, obj=None):
        return ["created_at", "team", "verb"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at", "team", "verb"]
