from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from pipetower.privacy.models import ConsentEvent, DataSubjectRequest, ProcessingRestriction


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "user", "status", "created_at", "due_at", "overdue")
    list_filter = ("status", "kind")
    ordering = ("due_at",)
    search_fields = ("user__email",)
    readonly_fields = ("user", "kind", "details", "created_at", "due_at", "answered_at")
    fields = ("user", "kind", "details", "created_at", "due_at", "status", "answer", "answered_at")

    @admin.display(boolean=True, description="Overdue")
    def overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.is_open and obj.due_at < timezone.now()

    def save_model(self, request, obj, form, change):
        if obj.status in (obj.Status.DONE, obj.Status.REJECTED) and obj.answered_at is None:
            obj.answered_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    """Read only: the ledger is written by the people it is about, never edited."""

    list_display = ("created_at", "user", "anonymous_id", "purpose", "granted", "channel")
    list_filter = ("purpose", "granted", "channel")
    search_fields = ("user__email", "anonymous_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProcessingRestriction)
class ProcessingRestrictionAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "lift_requested_at", "lifted_at")
    readonly_fields = ("user", "created_at", "lift_requested_at", "lifted_at")

    def has_add_permission(self, request):
        return False
