"""Actions (saved scripts) and their runs.

    Action ──< Run ──< RunTarget ──< OutputChunk
    template    one     one per       output as it arrived,
                launch  server        numbered per target

A run keeps a snapshot of the action it was started from (script, run-as user,
timeout, concurrency, failure limit, parameter definitions), so history stays
true after the action is edited or deleted.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from pipetower.core.fields import EncryptedTextField


class ParamKind(models.TextChoices):
    STRING = "string", "Text"
    INTEGER = "integer", "Integer"
    BOOLEAN = "boolean", "Yes/no"
    CHOICE = "choice", "Choice"
    SECRET = "secret", "Secret"


class Action(models.Model):
    """A saved script with typed parameters, run on servers over SSH."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    script = models.TextField()
    # [{"name", "label", "kind", "required", "default", "choices", "help"}]; a
    # secret parameter's default lives encrypted in `secret_defaults`.
    parameters = models.JSONField(default=list, blank=True)
    secret_defaults = EncryptedTextField(key_owner="team", blank=True)
    run_as = models.CharField(max_length=32, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=300)
    concurrency = models.PositiveIntegerField(default=10)
    failure_limit = models.PositiveIntegerField(null=True, blank=True)
    default_servers = models.ManyToManyField("servers.Server", blank=True, related_name="+")
    default_tags = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The number of the ActionVersion this row's script and settings are; read with
    # them in one row, so a run records exactly the version it ran.
    current_version = models.PositiveIntegerField(default=1)
    # Each run waits for another admin or owner to approve it (actions/approvals.py).
    # A setting of the action, not part of its versioned content.
    requires_approval = models.BooleanField(default=False)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=("team", "name"), name="unique_action_name_per_team"),
        ]

    def __str__(self) -> str:
        return self.name

    def secret_default_values(self) -> dict[str, str]:
        return json.loads(self.secret_defaults) if self.secret_defaults else {}


class RunStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class TargetStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    CONNECTING = "connecting", "Connecting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    UNREACHABLE = "unreachable", "Unreachable"
    HOST_KEY_MISMATCH = "host_key_mismatch", "Host key mismatch"
    WORKER_LOST = "worker_lost", "Worker lost"


# A run in one of these has not ended: it waits for approval, for a worker, or runs.
UNFINISHED_RUN_STATUSES = frozenset(
    {RunStatus.PENDING_APPROVAL, RunStatus.QUEUED, RunStatus.RUNNING}
)

ACTIVE_STATUSES = frozenset({TargetStatus.CONNECTING, TargetStatus.RUNNING})
PENDING_STATUSES = frozenset({TargetStatus.QUEUED, *ACTIVE_STATUSES})
FAILED_STATUSES = frozenset(
    {
        TargetStatus.FAILED,
        TargetStatus.TIMED_OUT,
        TargetStatus.UNREACHABLE,
        TargetStatus.HOST_KEY_MISMATCH,
        TargetStatus.WORKER_LOST,
    }
)


def run_status_from_targets(counts: dict[str, int]) -> str:
    """The run's status follows from its targets' statuses.

    Any target still queued or active: queued (none started) or running.
    All finished: succeeded if every one succeeded; failed if any failed in any
    way (failure wins over cancellation); otherwise cancelled.
    """
    total = sum(counts.values())
    if total == 0:
        return RunStatus.CANCELLED
    if any(counts.get(s, 0) for s in PENDING_STATUSES):
        if counts.get(TargetStatus.QUEUED, 0) == total:
            return RunStatus.QUEUED
        return RunStatus.RUNNING
    if counts.get(TargetStatus.SUCCEEDED, 0) == total:
        return RunStatus.SUCCEEDED
    if any(counts.get(s, 0) for s in FAILED_STATUSES):
        return RunStatus.FAILED
    return RunStatus.CANCELLED


class Run(models.Model):
    class Trigger(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        RERUN = "rerun", "Re-run of failed targets"
        SCHEDULE = "schedule", "Schedule"
        WEBHOOK = "webhook", "Webhook"

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="runs")
    action = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    action_name = models.CharField(max_length=100)
    script = models.TextField()
    parameters = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    secret_params = EncryptedTextField(key_owner="team", blank=True)
    run_as = models.CharField(max_length=32, blank=True)
    timeout_seconds = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField()
    failure_limit = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.WEB)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    # Set when a schedule started the run; the name is kept for the history
    # after the schedule is renamed or deleted.
    schedule = models.ForeignKey(
        "Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    schedule_name = models.CharField(max_length=100, blank=True)
    # Set when a webhook delivery started the run; the name is kept likewise.
    webhook = models.ForeignKey(
        "Webhook", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    webhook_name = models.CharField(max_length=100, blank=True)
    shard_count = models.PositiveIntegerField(default=1)
    # Bumped whenever one of the run's targets changes status, so live views
    # can ask "anything new since revision N?" with one indexed read.
    revision = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The action's version (ActionVersion.number) the run ran; None for runs older
    # than the history.
    version_number = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("team", "-created_at"))]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.action_name}"

    @property
    def is_finished(self) -> bool:
        return self.status not in UNFINISHED_RUN_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if self.finished_at is None:
            return None
        return self.finished_at - self.created_at

    def secret_param_values(self) -> dict[str, str]:
        return json.loads(self.secret_params) if self.secret_params else {}

    @property
    def started_by_text(self) -> str:
        """What started the run, in words: "Scheduled: nightly backup", a person, "system"."""
        if self.trigger == self.Trigger.SCHEDULE:
            return f"Scheduled: {self.schedule_name}"
        if self.trigger == self.Trigger.WEBHOOK:
            return f"Webhook: {self.webhook_name}"
        return str(self.started_by) if self.started_by_id else "system"

    def masked_params(self) -> dict[str, Any]:
        """Every parameter value for display, secrets replaced by a mask."""
        shown: dict[str, Any] = dict(self.params)
        for spec in self.parameters:
            if spec.get("kind") == ParamKind.SECRET:
                shown[spec["name"]] = "••••••"
        return shown


class RunTarget(models.Model):
    """One server's part in a run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="targets")
    server = models.ForeignKey(
        "servers.Server", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    server_name = models.CharField(max_length=255)
    shard = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=20, choices=TargetStatus.choices, default=TargetStatus.QUEUED
    )
    exit_code = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Written by the worker while it drives this target; the scheduler's reaper
    # ends targets whose heartbeat went stale as worker_lost.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    last_seq = models.PositiveIntegerField(default=0)
    output_bytes = models.PositiveBigIntegerField(default=0)
    truncated = models.BooleanField(default=False)
    revision = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("run", "server_name", "id")
        indexes = [
            models.Index(fields=("run", "status")),
            models.Index(fields=("status", "heartbeat_at")),
        ]

    def __str__(self) -> str:
        return f"{self.server_name} in run {self.run_id}"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def is_finished(self) -> bool:
        return self.status not in PENDING_STATUSES


class OutputChunk(models.Model):
    class Stream(models.TextChoices):
        STDOUT = "stdout", "Output"
        STDERR = "stderr", "Errors"
        SYSTEM = "system", "Pipetower"

    run_target = models.ForeignKey(RunTarget, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    stream = models.CharField(max_length=6, choices=Stream.choices)
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("run_target", "seq")
        constraints = [
            models.UniqueConstraint(fields=("run_target", "seq"), name="unique_chunk_seq"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.seq} of {self.run_target_id} ({self.stream})"


class Schedule(models.Model):
    """Runs an action at the times of a cron expression in a time zone, on the
    chosen targets with the chosen parameter values (checked as a manual run's).

    `next_run_at` is the next due time (UTC). A scheduler claims a due time by
    moving it forward with a conditional update, so with several schedulers
    running each time starts at most one run.
    """

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        CAUGHT_UP = "caught_up", "Started (catch-up after downtime)"
        SKIPPED_OVERLAP = "skipped_overlap", "Skipped: the previous run was still going"
        MISSED = "missed", "Missed while Pipetower was down"
        REFUSED = "refused", "Not started"

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="schedules")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    # After downtime: start one catch-up run for the times missed (True) or none.
    catch_up = models.BooleanField(default=True)
    servers = models.ManyToManyField("servers.Server", blank=True, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    secret_params = EncryptedTextField(key_owner="team", blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    last_message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("action", "name"), name="unique_schedule_name_per_action"
            ),
        ]
        indexes = [models.Index(fields=("enabled", "next_run_at"))]

    def __str__(self) -> str:
        return self.name

    def secret_param_values(self) -> dict[str, str]:
        return json.loads(self.secret_params) if self.secret_params else {}


class Webhook(models.Model):
    """Starts a run of an action when a JSON delivery arrives at `/hooks/<token>/`.

    The run goes to the fixed targets with the fixed values, plus values taken
    from the body at dotted paths (`mapping`: parameter name -> path), all
    checked as a manual run's. With `require_signature` the body must carry an
    HMAC-SHA256 signature made with `secret` (X-Hub-Signature-256).
    """

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="webhooks")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100)
    token = models.CharField(max_length=64, unique=True)
    secret = EncryptedTextField(key_owner="team")
    require_signature = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    servers = models.ManyToManyField("servers.Server", blank=True, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    secret_params = EncryptedTextField(key_owner="team", blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("action", "name"), name="unique_webhook_name_per_action"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def secret_param_values(self) -> dict[str, str]:
        return json.loads(self.secret_params) if self.secret_params else {}


class WebhookDelivery(models.Model):
    """One request to a webhook's URL, accepted or refused: the hook's delivery log
    and, for accepted ones, the delivery ids remembered against replays. Kept for
    the replay window, then purged."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    # The delivery id header as sent (at most 100 characters kept).
    delivery_id = models.CharField(max_length=100, blank=True)
    # Set to the delivery id once a delivery is accepted: unique per hook, so a
    # replay (even two at once) is refused.
    accepted_id = models.CharField(max_length=100, null=True, blank=True)
    status = models.PositiveSmallIntegerField()
    message = models.CharField(max_length=300, blank=True)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-received_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("webhook", "accepted_id"), name="unique_webhook_delivery_id"
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.delivery_id or self.pk} to {self.webhook_id} ({self.status})"


class ActionVersion(models.Model):
    """One numbered state of what an action runs: script, parameter definitions,
    secret defaults (encrypted, never shown) and run settings. Creation is version 1;
    every change to these (and every restore) adds the next number. Rows are never
    changed afterwards.
    """

    # The fields of an action a version keeps, and how a change to each is named.
    FIELDS = {
        "script": "script",
        "parameters": "parameters",
        "secret_defaults": "secret defaults",
        "run_as": "run as",
        "timeout_seconds": "timeout",
        "concurrency": "servers at once",
        "failure_limit": "failure limit",
    }

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    script = models.TextField()
    parameters = models.JSONField(default=list, blank=True)
    secret_defaults = EncryptedTextField(key_owner="team", blank=True)
    run_as = models.CharField(max_length=32, blank=True)
    timeout_seconds = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField()
    failure_limit = models.PositiveIntegerField(null=True, blank=True)
    # What changed from the version before, as FIELDS' words ([] for version 1).
    changes = models.JSONField(default=list, blank=True)
    # Set when this version was made by restoring an older one: its number.
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("action", "-number")
        constraints = [
            models.UniqueConstraint(
                fields=("action", "number"), name="unique_action_version_number"
            ),
        ]

    def __str__(self) -> str:
        return f"version {self.number} of action {self.action_id}"

    def secret_default_values(self) -> dict[str, str]:
        return json.loads(self.secret_defaults) if self.secret_defaults else {}


class ApprovalRequest(models.Model):
    """A run of an action that requires approval, waiting for (or decided by) a second
    person: an admin or owner of the team who is not the one who asked."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        EXPIRED = "expired", "Expired"

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="approval")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    reason = models.TextField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("team", "decision", "expires_at"))]

    def __str__(self) -> str:
        return f"approval of run {self.run_id} ({self.decision or 'waiting'})"

    @property
    def is_waiting(self) -> bool:
        return not self.decision
