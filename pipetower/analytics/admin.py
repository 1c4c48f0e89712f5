from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from pipetower.analytics.models import ExperimentExposure, PageView


class _ReadOnly(admin.ModelAdmin):
    """Counts are written only by the middleware and the experiment tag."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PageView)
class PageViewAdmin(_ReadOnly):
    list_display = ("day", "path", "count")
    list_filter = ("day",)
    search_fields = ("path",)
    date_hierarchy = "day"


@admin.register(ExperimentExposure)
class ExperimentExposureAdmin(_ReadOnly):
    list_display = ("day", "experiment", "variant", "count")
    list_filter = ("experiment", "variant")
    date_hierarchy = "day"
