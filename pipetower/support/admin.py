from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.core.outbox import outbox_enqueue
from pipetower.support import interviews
from pipetower.support.models import (
    Correspondence,
    Interview,
    Newsletter,
    Survey,
    SurveyResponse,
)
from pipetower.support.tasks import newsletter_send_task, survey_send_task


@admin.register(Correspondence)
class CorrespondenceAdmin(admin.ModelAdmin):
    list_display = ("subject", "email", "created_at")
    search_fields = ("email", "subject")
    readonly_fields = ("user", "email", "subject", "body", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erased with the person (privacy.deletion), not by hand


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    list_display = ("subject", "created_at", "sent_at", "sent_count")
    readonly_fields = ("sent_at", "sent_count")
    actions = ("send",)

    @admin.action(description="Send to people who subscribed (and have not limited processing)")
    def send(self, request: HttpRequest, queryset: QuerySet[Newsletter]) -> None:
        for newsletter in queryset:
            if newsletter.sent_at is not None:
                self.message_user(request, f"{newsletter}: already sent.", messages.ERROR)
                continue
            pk = newsletter.pk
            outbox_enqueue(newsletter_send_task, pk)
            self.message_user(request, f"{newsletter}: sending now.")


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ("title", "created_at", "sent_at", "sent_count")
    readonly_fields = ("sent_at", "sent_count")
    actions = ("send",)

    @admin.action(
        description="Send to people who agreed to surveys (and have not limited processing)"
    )
    def send(self, request: HttpRequest, queryset: QuerySet[Survey]) -> None:
        for survey in queryset:
            if survey.sent_at is not None:
                self.message_user(request, f"{survey}: already sent.", messages.ERROR)
                continue
            if not survey.question_list:
                self.message_user(request, f"{survey}: add a question first.", messages.ERROR)
                continue
            pk = survey.pk
            outbox_enqueue(survey_send_task, pk)
            self.message_user(request, f"{survey}: sending now.")


@admin.register(SurveyResponse)
class SurveyResponseAdmin(admin.ModelAdmin):
    list_display = ("survey", "user", "created_at")
    readonly_fields = ("survey", "user", "answers", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erased with the person (privacy.deletion), not by hand


class InterviewForm(forms.ModelForm):
    """Inviting ("Add") goes through `interview_invite`; on an existing interview
    the one thing staff write is where the recording is kept, through
    `interview_recording_keep`, which refuses without the person's yes. The
    services' refusals show on the form; the services save and audit."""

    class Meta:
        model = Interview
        fields = ("user", "topic", "scheduled_for", "recording_reference")

    request: HttpRequest | None = None
    saved: Interview | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or self.request is None:
            return data
        staff: Any = self.request.user
        try:
            if self.instance.pk is None:
                self.saved = interviews.interview_invite(
                    staff=staff,
                    user=data.get("user"),  # type: ignore[arg-type]
                    topic=data.get("topic", ""),
                    scheduled_for=data.get("scheduled_for"),
                    request=self.request,
                )
            else:
                self.saved = interviews.interview_recording_keep(
                    staff=staff,
                    interview=Interview.objects.get(pk=self.instance.pk),
                    reference=data.get("recording_reference", ""),
                    request=self.request,
                )
        except ServiceError as exc:
            add_service_error(self, exc)
        return data


@admin.register(Interview)
class InterviewAdmin(admin.ModelAdmin):
    """Staff invite people to interviews and see, before each one, whether they may
    record it. A recording is noted as kept only after the person's yes."""

    form = InterviewForm
    list_display = (
        "id",
        "user",
        "topic",
        "scheduled_for",
        "status",
        "recording_answer",
        "recording_kept_at",
    )
    list_filter = ("status", "recording_allowed")
    search_fields = ("user__email", "topic")
    raw_id_fields = ("user",)
    ordering = ("-scheduled_for",)
    actions = None

    @admin.display(description="May we record it?")
    def recording_answer(self, obj: Interview) -> str:
        if obj.recording_allowed is None:
            return "not answered: do not record"
        return "yes" if obj.recording_allowed else "no: do not record"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["user", "topic", "scheduled_for"]
        return [
            "user",
            "topic",
            "scheduled_for",
            "status",
            "answered_at",
            "recording_answer",
            "recording_answered_at",
            "recording_reference",
            "recording_kept_at",
            "invited_by",
            "created_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [f for f in self.get_fields(request, obj) if f != "recording_reference"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return form.saved  # the service saved it while the form was checked

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erased with the person (privacy.deletion); withdrawn by the person
