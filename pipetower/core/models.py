from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class DataKey(models.Model):
    """A per-owner (account or team) data key, stored wrapped by a master key.

    Destroying it (`crypto.data_key_destroy`) wipes the wrapped key, so every
    value encrypted under it can never be read again (crypto-shredding).
    """

    class Purpose(models.TextChoices):
        USER = "user", "Account"
        TEAM = "team", "Team"
        TEST = "test", "Test"

    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    master_key_id = models.CharField(max_length=16, blank=True)
    wrapped = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        state = "destroyed" if self.destroyed_at else f"master {self.master_key_id}"
        return f"data key {self.pk} ({self.purpose}, {state})"


class WorkerHeartbeat(models.Model):
    """The last time a worker ran the scheduler's heartbeat task."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
