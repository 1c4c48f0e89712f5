"""Aggregate counts only: no IP address, no user, no cookie identifier is stored.

A page view is one more on the row for (URL pattern, day); an experiment
exposure is one more on the row for (experiment, variant, day). Neither row can
be traced back to a person, so neither appears in the data map.
"""

from __future__ import annotations

from django.db import models


class PageView(models.Model):
    # The URL pattern ("/teams/<slug:team_slug>/servers/"), not the concrete
    # path: a concrete path can carry a team's or a person's name.
    path = models.CharField(max_length=255)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["path", "day"], name="analytics_pageview_path_day")
        ]
        ordering = ["-day", "-count", "path"]

    def __str__(self) -> str:
        return f"{self.path} on {self.day}: {self.count}"


class ExperimentExposure(models.Model):
    experiment = models.CharField(max_length=64)
    variant = models.CharField(max_length=64)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "variant", "day"], name="analytics_exposure_unique"
            )
        ]
        ordering = ["-day", "experiment", "variant"]

    def __str__(self) -> str:
        return f"{self.experiment}/{self.variant} on {self.day}: {self.count}"
