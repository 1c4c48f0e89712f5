from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from pipetower.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by services and never edited by hand."""

    list_display = ("created_at", "team", "actor_label", "verb", "target_label", "ip")
    list_filter = ("verb",)
    search_fields = ("actor_label", "verb", "target_label", "team__name", "team__slug")
    date_hierarchy = "created_at"
    list_select_related = ("team",)
    ordering = ("-created_at", "-id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
