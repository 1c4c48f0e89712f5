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


# Here rather than at the top: the field's crypto module needs DataKey, above.
from pipetower.core.fields import EncryptedTextField  # noqa: E402


class OutboxMessage(models.Model):
    """A task to send, written in the same transaction as the work that needs it.

    Committed work is therefore always eventually queued: the message is sent
    to the broker right after the commit (`outbox.outbox_publish`), and, if the
    broker was down, again by the scheduler's sweep until it gets through.
    `started_at` is set when a worker begins the task, so pages can tell
    "sending" from "sent" (`outbox.outbox_pending`). See pipetower/core/outbox.py.
    """

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    # Arguments that must not be stored in the clear (an invitation's raw
    # token): a JSON list appended to `args`, encrypted with `data_key`.
    secret_args = EncryptedTextField(blank=True)
    data_key = models.ForeignKey(
        DataKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    argsrepr = models.CharField(max_length=200, blank=True)
    # Celery's sending options for this task (e.g. `time_limit`).
    options = models.JSONField(default=dict, blank=True)
    # What the work is about, e.g. "teams.invitation:42", for `outbox_pending`.
    subject = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                name="core_outbox_unpublished",
                condition=models.Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        state = "started" if self.started_at else "sent" if self.published_at else "waiting"
        return f"{self.task} #{self.pk} ({state})"

    def encryption_key(self) -> DataKey:
        if self.data_key is None:
            raise ValueError("An outbox message with secret arguments needs a data key.")
        return self.data_key
