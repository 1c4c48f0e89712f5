from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from pipetower.core.outbox import outbox_enqueue
from pipetower.support.models import Correspondence, Newsletter, Survey, SurveyResponse
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
