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
