"""The staff back office: read-mostly views of actions and runs. Secrets never show."""

from __future__ import annotations

from django.contrib import admin

from pipetower.actions.models import Action, Run, RunTarget


@admin.register(Action)
class ActionAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "run_as", "timeout_seconds", "concurrency", "updated_at")
    list_filter = ("team",)
    search_fields = ("name", "team__name")
    exclude = ("secret_defaults",)
    readonly_fields = ("created_by", "created_at", "updated_at")


class RunTargetInline(admin.TabularInline):
    model = RunTarget
    extra = 0
    can_delete = False
    fields = ("server_name", "status", "exit_code", "started_at", "finished_at", "error", "worker")
    readonly_fields = fields


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "action_name", "team", "status", "trigger", "created_at", "finished_at")
    list_filter = ("status", "trigger", "team")
    search_fields = ("action_name", "team__name")
    exclude = ("secret_params", "script", "parameters")
    readonly_fields = (
        "team",
        "action",
        "action_name",
        "params",
        "run_as",
        "timeout_seconds",
        "concurrency",
        "failure_limit",
        "status",
        "trigger",
        "started_by",
        "rerun_of",
        "shard_count",
        "revision",
        "created_at",
        "finished_at",
        "cancel_requested_at",
        "cancelled_by",
    )
    inlines = (RunTargetInline,)
