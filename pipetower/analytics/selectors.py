"""Reads for the staff statistics page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from pipetower.analytics.models import ExperimentExposure, PageView


def page_view_totals(*, days: int = 30) -> list[Any]:
    """Views per URL pattern over the last `days` days, most viewed first."""
    since = timezone.localdate() - timedelta(days=days - 1)
    return list(
        PageView.objects.filter(day__gte=since)
        .values("path")
        .annotate(views=Sum("count"))
        .order_by("-views", "path")
    )


def page_views_by_day(*, days: int = 30) -> list[Any]:
    since = timezone.localdate() - timedelta(days=days - 1)
    return list(
        PageView.objects.filter(day__gte=since)
        .values("day")
        .annotate(views=Sum("count"))
        .order_by("-day")
    )


def exposure_totals(*, days: int = 30) -> list[Any]:
    since = timezone.localdate() - timedelta(days=days - 1)
    return list(
        ExperimentExposure.objects.filter(day__gte=since)
        .values("experiment", "variant")
        .annotate(shown=Sum("count"))
        .order_by("experiment", "variant")
    )
