"""Notification rules (who is told what when a run ends) and their delivery log.

A rule belongs to a team and optionally to one action (else it covers all the
team's actions). It mails team members (never a typed address) or posts to a
webhook URL, signed with the rule's secret. Every attempt to deliver is a row
of the delivery log, shown on the rule's page.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from pipetower.core.fields import EncryptedTextField


class Channel(models.TextChoices):
    EMAIL = "email", "Email to team members"
    WEBHOOK = "webhook", "Webhook (an HTTPS POST)"


class When(models.TextChoices):
    FAILURE = "failure", "When a run fails"
    SUCCESS = "success", "When a run succeeds"
    ALWAYS = "always", "When a run ends, whatever the result"
    BACK_TO_NORMAL = "back_to_normal", "When a run succeeds after a failed one (back to normal)"


class Recipients(models.TextChoices):
    """Who an email rule mails: the rule's creator, or members with at least a role."""

    CREATOR = "creator", "Only the person who made the rule"
    OWNER = "owner", "Owners"
    ADMIN = "admin", "Admins and owners"
    OPERATOR = "operator", "Operators, admins and owners"
    VIEWER = "viewer", "Every member of the team"


class Format(models.TextChoices):
    JSON = "json", "JSON (Pipetower's own fields)"
    SLACK = "slack", 'Slack-compatible ({"text": "…"})'


class NotificationRule(models.Model):
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, related_name="notification_rules"
    )
    # None: every action of the team.
    action = models.ForeignKey(
        "actions.Action",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_rules",
    )
    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    when = models.CharField(max_length=16, choices=When.choices, default=When.FAILURE)
    enabled = models.BooleanField(default=True)
    # Email rules.
    recipients = models.CharField(max_length=8, choices=Recipients.choices, blank=True)
    # Webhook rules: where to POST, in which shape, signed with `secret`.
    url = models.CharField(max_length=2000, blank=True)
    format = models.CharField(max_length=8, choices=Format.choices, blank=True)
    secret = EncryptedTextField(key_owner="team", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("team", "name"), name="unique_notification_rule_name_per_team"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_webhook(self) -> bool:
        return self.channel == Channel.WEBHOOK


class Event(models.TextChoices):
    """What a delivery tells."""

    FAILED = "failed", "Run failed"
    SUCCEEDED = "succeeded", "Run succeeded"
    CANCELLED = "cancelled", "Run cancelled"
    BACK_TO_NORMAL = "back_to_normal", "Back to normal"
    TEST = "test", "Test"


class Outcome(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed"


class NotificationDelivery(models.Model):
    """One attempt to deliver one notification (a webhook POST, or the emails of one run)."""

    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="deliveries")
    run = models.ForeignKey(
        "actions.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event = models.CharField(max_length=16, choices=Event.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    # The receiver's HTTP status, when it answered.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # What happened, in words ("Answered 500 Internal Server Error.", "Mailed 3 members.").
    message = models.CharField(max_length=300, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("rule", "-created_at"))]

    def __str__(self) -> str:
        return f"delivery {self.pk} of rule {self.rule_id} ({self.outcome})"
