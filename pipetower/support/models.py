from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Correspondence(models.Model):
    """A message a person sent to Pipetower (contact form or email). Kept so that
    we can refer to it when they write again."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="correspondence",
    )
    email = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "correspondence"

    def __str__(self) -> str:
        return f"{self.subject} from {self.email}"


class Survey(models.Model):
    """An optional questionnaire. Sent only to people who agreed to product surveys."""

    title = models.CharField(max_length=200)
    questions = models.TextField(help_text="One question per line.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return self.title

    @property
    def question_list(self) -> list[str]:
        return [line.strip() for line in self.questions.splitlines() if line.strip()]


class SurveyResponse(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="survey_responses"
    )
    answers = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("survey", "user"), name="one_response_per_survey")
        ]

    def __str__(self) -> str:
        return f"answer to {self.survey_id} by {self.user_id}"


class Newsletter(models.Model):
    """An issue of the newsletter. Sent only to people who agreed to receive it."""

    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return self.subject


class Interview(models.Model):
    """A customer interview staff invited a person to. The person answers, for this
    interview alone, whether they take part and whether it may be recorded; a
    recording is kept (its reference stored) only after a yes, and goes when they
    withdraw it (`support.interviews`)."""

    class Status(models.TextChoices):
        INVITED = "invited", "Invited, no answer yet"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interviews"
    )
    topic = models.CharField(max_length=200)
    scheduled_for = models.DateTimeField()
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    answered_at = models.DateTimeField(null=True, blank=True)
    # None: not asked yet; True/False: the person's answer for this interview.
    recording_allowed = models.BooleanField(null=True, blank=True)
    recording_answered_at = models.DateTimeField(null=True, blank=True)
    recording_reference = models.CharField(max_length=500, blank=True)
    recording_kept_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-scheduled_for", "-id")

    def __str__(self) -> str:
        return f"interview #{self.pk}"

    @property
    def expired(self) -> bool:
        """The interview's time has passed: it can no longer be accepted or answered."""
        return self.scheduled_for <= timezone.now()
