from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from pipetower.core.errors import ServiceError
from pipetower.core.outbox import outbox_pending
from pipetower.privacy import legal_requests, rights_requests, subprocessors
from pipetower.privacy.models import (
    ConsentEvent,
    DataSubjectRequest,
    LegalRequest,
    PolicyVersion,
    ProcessingRestriction,
    Purpose,
    StaffAccess,
    Subprocessor,
    SubprocessorChange,
    SupportGrant,
)
from pipetower.privacy.policy import (
    policy_announce_progress,
    policy_announce_resume,
    policy_announce_subject,
    policy_version_publish,
    policy_versions_for_staff,
)
from pipetower.privacy.staff_admin import TeamContentAdmin


class DataSubjectRequestStepForm(forms.ModelForm):
    """The staff queue's one form: each step calls its service in
    `privacy.rights_requests` (start, extend, answer, deny, switch purposes off).
    Its refusals show on the form, and it writes the audit rows."""

    STEPS = (
        ("", "Choose…"),
        ("start", "Start working on it"),
        ("extend", "Extend the deadline once (the text is the reason the person reads)"),
        ("done", "Answer: done (the text is the answer the person reads)"),
        ("rejected", "Deny (the text is the reason; the complaint route is added)"),
        ("objection", "Objection: switch off the purposes ticked below, and answer"),
    )
    step = forms.ChoiceField(choices=STEPS, error_messages={"required": "Choose a step."})
    text = forms.CharField(
        label="Text for the person",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=5000,
    )
    purposes = forms.MultipleChoiceField(
        choices=Purpose.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="For an objection only.",
    )

    class Meta:
        model = DataSubjectRequest
        fields = ()

    request: HttpRequest | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or self.request is None:
            return data
        staff: Any = self.request.user
        dsr = DataSubjectRequest.objects.get(pk=self.instance.pk)
        step, text = data.get("step", ""), data.get("text", "")
        try:
            if step == "start":
                rights_requests.data_subject_request_start(staff=staff, dsr=dsr)
            elif step == "extend":
                rights_requests.data_subject_request_extend(staff=staff, dsr=dsr, reason=text)
            elif step == "objection":
                rights_requests.data_subject_request_objection_fulfil(
                    staff=staff, dsr=dsr, purposes=data.get("purposes", [])
                )
            else:
                rights_requests.data_subject_request_answer(
                    staff=staff, dsr=dsr, status=step, answer=text
                )
        except ServiceError as exc:
            field = {"answer": "text", "reason": "text"}.get(exc.field or "", exc.field)
            self.add_error(field if field in self.fields else None, exc.message)
        return data


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    """The staff queue of privacy requests, oldest deadline first, with days left."""

    list_display = (
        "id",
        "kind",
        "requester",
        "status",
        "received_at",
        "due_at",
        "days_left",
        "overdue",
        "extended",
    )
    list_filter = ("status", "kind", "source")
    ordering = ("due_at",)
    search_fields = ("user__email", "email")
    form = DataSubjectRequestStepForm
    actions = ("start_selected",)
    readonly_fields = (
        "requester",
        "kind",
        "details",
        "source",
        "status",
        "created_at",
        "received_at",
        "due_at",
        "days_left",
        "overdue",
        "extended_at",
        "extension_reason",
        "answer",
        "answered_at",
    )
    fields = (*readonly_fields, "step", "text", "purposes")

    def get_queryset(self, request: HttpRequest) -> Any:
        # Unconfirmed requests are not received yet: nothing for staff to do.
        return (
            super()
            .get_queryset(request)
            .exclude(status=DataSubjectRequest.Status.UNCONFIRMED)
            .select_related("user")
        )

    @admin.display(description="From")
    def requester(self, obj: DataSubjectRequest) -> str:
        return obj.reply_to + ("" if obj.user_id else " (no account)")

    @admin.display(description="Days left")
    def days_left(self, obj: DataSubjectRequest) -> str:
        left = obj.days_left
        return "—" if left is None else str(left)

    @admin.display(boolean=True, description="Overdue")
    def overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.is_overdue

    @admin.display(boolean=True, description="Extended")
    def extended(self, obj: DataSubjectRequest) -> bool:
        return obj.extended_at is not None

    @admin.action(description="Start working on the selected requests")
    def start_selected(self, request: HttpRequest, queryset: Any) -> None:
        started = 0
        for dsr in queryset:
            try:
                rights_requests.data_subject_request_start(
                    staff=request.user,  # type: ignore[arg-type]
                    dsr=dsr,
                )
            except ServiceError as exc:
                self.message_user(request, f"Request {dsr.pk}: {exc.message}", messages.WARNING)
            else:
                started += 1
        if started:
            self.message_user(request, f"Started {started} request(s).", messages.SUCCESS)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people make requests from their privacy center

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An answered request stays as answered. Asked of the database: the form
        # puts what was typed on `obj` before the page is drawn again.
        return obj is None or (
            DataSubjectRequest.objects.filter(
                pk=obj.pk,
                status__in=(DataSubjectRequest.Status.OPEN, DataSubjectRequest.Status.IN_PROGRESS),
            ).exists()
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # the service saved it while the form was checked (DataSubjectRequestStepForm)


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    """Read only: the ledger is written by the people it is about, never edited."""

    list_display = ("created_at", "user", "anonymous_id", "purpose", "granted", "channel")
    list_filter = ("purpose", "granted", "channel")
    search_fields = ("user__email", "anonymous_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProcessingRestriction)
class ProcessingRestrictionAdmin(admin.ModelAdmin):
    """Read only: people start and lift a restriction from their privacy center."""

    list_display = ("user", "created_at", "lift_requested_at", "lifted_at")
    readonly_fields = ("user", "created_at", "lift_requested_at", "lifted_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SupportGrant)
class SupportGrantAdmin(TeamContentAdmin):
    """Which teams let staff in, how far and until when. Granting and revoking is
    the team's: only its owners and admins do it, on its support access page."""

    # The reason is written by the team for staff to read.
    shown_text_fields = ("scope", "reason")
    list_filter = ("scope",)
    ordering = ("-created_at",)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return ["id", "team", "scope", "reason", "created_at", "expires_at", "revoked_at"]


@admin.register(StaffAccess)
class StaffAccessAdmin(TeamContentAdmin):
    """The log of staff requests under support access: written only by the check itself."""

    shown_text_fields = ("staff_label", "kind", "method", "path", "page")
    list_filter = ("kind",)
    date_hierarchy = "created_at"


# --------------------------------------------------------------- public registers


class _CheckedForm(forms.ModelForm):
    """A back-office form whose fields are checked by the service's own check, so
    the admin shows the same errors the service would raise; the admin then saves
    through the service (`save_model`), never by writing the model itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False  # the service's check says what is missing, in its words

    def check(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.check(data)
        except ServiceError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


class SubprocessorForm(_CheckedForm):
    class Meta:
        model = Subprocessor
        fields = ("name", "purpose", "location", "since")
        help_texts = {
            "since": "The day it started processing personal data. A later day announces "
            "one that has not started yet.",
        }

    def check(self, data: dict[str, Any]) -> None:
        subprocessors.subprocessor_fields_check(
            name=data.get("name", ""),
            purpose=data.get("purpose", ""),
            location=data.get("location", ""),
            since=data.get("since"),
            exclude_id=self.instance.pk,
        )


@admin.register(Subprocessor)
class SubprocessorAdmin(admin.ModelAdmin):
    """The public list of subprocessors. Every save and removal goes through
    `privacy.subprocessors`, which audits it and mails the subscribers."""

    form = SubprocessorForm
    list_display = ("name", "purpose", "location", "since", "updated_at")
    search_fields = ("name", "location")
    ordering = ("name",)
    actions = None  # removal one by one, through the service

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {k: data.get(k) for k in ("name", "purpose", "location", "since")}
        if change:
            saved = subprocessors.subprocessor_change(
                actor=request.user,  # type: ignore[arg-type]
                subprocessor_id=obj.pk,
                request=request,
                **fields,
            )
        else:
            saved = subprocessors.subprocessor_add(
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                **fields,
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        subprocessors.subprocessor_remove(
            actor=request.user,  # type: ignore[arg-type]
            subprocessor_id=obj.pk,
            request=request,
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subprocessor]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(SubprocessorChange)
class SubprocessorChangeAdmin(admin.ModelAdmin):
    """Read only: written by the list's services, mailed by the worker."""

    list_display = ("created_at", "kind", "name", "sent_at", "sent_count")
    list_filter = ("kind",)
    readonly_fields = ("kind", "name", "summary", "created_at", "sent_at", "sent_count")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LegalRequestForm(_CheckedForm):
    class Meta:
        model = LegalRequest
        fields = legal_requests.FIELDS
        labels = {
            "received_on": "Date received",
            "disclosed": "Data was disclosed",
            "customer_notified": "The customer was told",
        }
        help_texts = {
            "scope": "What was asked for: which accounts or data, and for which period.",
            "reason": "Why data was or was not disclosed (required when nothing was).",
        }

    def check(self, data: dict[str, Any]) -> None:
        legal_requests.legal_request_fields_check(
            authority=data.get("authority", ""),
            received_on=data.get("received_on"),
            scope=data.get("scope", ""),
            disclosed=data.get("disclosed"),
            reason=data.get("reason", ""),
            customer_notified=data.get("customer_notified"),
        )


@admin.register(LegalRequest)
class LegalRequestAdmin(admin.ModelAdmin):
    """The register of government and legal requests. Only yearly counts are
    published; recording and correcting go through `privacy.legal_requests`."""

    form = LegalRequestForm
    list_display = ("id", "received_on", "authority", "disclosed", "customer_notified")
    list_filter = ("disclosed", "customer_notified")
    date_hierarchy = "received_on"
    search_fields = ("authority",)
    readonly_fields = ("recorded_by", "created_at", "updated_at")
    actions = None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {k: data.get(k) for k in legal_requests.FIELDS}
        if change:
            saved = legal_requests.legal_request_update(
                actor=request.user,  # type: ignore[arg-type]
                legal_request_id=obj.pk,
                request=request,
                **fields,
            )
        else:
            saved = legal_requests.legal_request_record(
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                **fields,
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the register is a record; correct a row instead


class PolicyVersionPublishForm(forms.ModelForm):
    """Publishing goes through `policy_version_publish`: its refusals (a text
    identical to the current version, a missing summary) show on the form, and
    it writes the version, the audit row and the announcement in one go."""

    class Meta:
        model = PolicyVersion
        fields = ("text", "summary", "significant")

    request: HttpRequest | None = None
    published: PolicyVersion | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or self.request is None:
            return data
        try:
            self.published = policy_version_publish(
                staff=self.request.user,  # type: ignore[arg-type]
                text=data.get("text", ""),
                summary=data.get("summary", ""),
                significant=bool(data.get("significant")),
                request=self.request,
            )
        except ServiceError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Staff publish a new version here ("Add"); published versions are read only."""

    form = PolicyVersionPublishForm
    list_display = ("number", "published_at", "significant", "short_summary", "announcement")
    list_filter = ("significant",)
    ordering = ("-number",)
    actions = ("resume_announcement",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PolicyVersion]:
        return policy_versions_for_staff()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["text", "summary", "significant"]
        return ["number", "published_at", "significant", "summary", "text", "announcement"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    @admin.display(description="Summary of changes")
    def short_summary(self, obj: PolicyVersion) -> str:
        return obj.summary if len(obj.summary) <= 80 else obj.summary[:79] + "…"

    @admin.display(description="Announcement emails sent")
    def announcement(self, obj: PolicyVersion) -> str:
        if not obj.significant:
            return "not announced (not significant)"
        sent = getattr(obj, "notices_sent", None)
        total = getattr(obj, "notices_total", None)
        if sent is None or total is None:
            progress = policy_announce_progress(number=obj.number)
            sent, total = progress.sent, progress.total
        text = f"{sent} / {total}"
        if sent < total and outbox_pending(policy_announce_subject(obj.number)):
            text += " (waiting for a worker)"
        return text

    @admin.action(description="Send the rest of the announcement again (after a mail outage)")
    def resume_announcement(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> None:
        for version in queryset:
            try:
                progress = policy_announce_resume(
                    staff=request.user,  # type: ignore[arg-type]
                    version=version,
                    request=request,
                )
            except ServiceError as exc:
                self.message_user(request, f"{version}: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request, f"{version}: sending to the {progress.total - progress.sent} left."
            )

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return form.published  # the service saved it while the form was checked

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a published version never changes: publish a new one

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
