"""Pages for export (/privacy/export/) and account deletion (/privacy/delete/). Thin."""

from __future__ import annotations

from typing import Any

from allauth.account.decorators import reauthentication_required
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from pipetower.accounts.mfa import has_two_factor, two_factor_code_refusal
from pipetower.core.errors import ServiceError
from pipetower.privacy import deletion, export, rights_requests
from pipetower.privacy.models import DataSubjectRequest, ExportJob

EXPORTS_SHOWN = 10


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def export_page(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if request.method == "POST":
        try:
            with transaction.atomic():
                export.export_request(user=user, request=request)
                rights_requests.data_subject_request_record_fulfilled(
                    user=user,
                    kind=DataSubjectRequest.Kind.ACCESS,
                    details="A copy of my data, exported from the privacy center.",
                    request=request,
                )
            messages.success(request, "Your export is being built. This page shows its progress.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("privacy:export")
    jobs = list(ExportJob.objects.filter(user=user)[:EXPORTS_SHOWN])
    rows = [
        {"job": job, "token": export.export_download_token(job) if job.is_downloadable else ""}
        for job in jobs
    ]
    building = any(job.is_building for job in jobs)
    template = (
        "privacy/export_status.html" if getattr(request, "htmx", False) else "privacy/export.html"
    )
    return render(request, template, {"rows": rows, "building": building})


@never_cache
@login_required
def export_download(request: HttpRequest, token: str) -> HttpResponse | FileResponse:
    user: Any = request.user
    try:
        job = export.export_get_for_download(user=user, token=token, request=request)
    except ServiceError as exc:
        return render(
            request, "privacy/export_link_error.html", {"message": exc.message}, status=exc.status
        )
    response = FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        filename=f"pipetower-export-{job.created_at:%Y%m%d}.zip",
        content_type="application/zip",
    )
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@reauthentication_required
def deletion_page(request: HttpRequest) -> HttpResponse:
    """Delete my account: after re-authentication, and a two-factor code when enabled."""
    user: Any = request.user
    blockers = deletion.deletion_blockers(user=user)
    two_factor = has_two_factor(user)
    error = code_error = ""
    if request.method == "POST":
        if request.POST.get("confirm", "").strip().lower() != user.email.lower():
            error = "Type your email address exactly to confirm."
        elif code_error := two_factor_code_refusal(user, request.POST.get("code", "")):
            pass
        else:
            try:
                scheduled = deletion.account_deletion_request(user=user, request=request)
            except ServiceError as exc:
                error = exc.message
            else:
                logout(request)
                request.session["deletion_scheduled_for"] = scheduled.scheduled_for.isoformat()
                return redirect("privacy:deletion_scheduled")
    context = {
        "blockers": blockers,
        "error": error,
        "code_error": code_error,
        "two_factor": two_factor,
        "owned_alone": deletion._only_owned(user),
    }
    return render(
        request, "privacy/deletion.html", context, status=400 if request.method == "POST" else 200
    )


def deletion_scheduled(request: HttpRequest) -> HttpResponse:
    when = request.session.get("deletion_scheduled_for", "")
    return render(request, "privacy/deletion_scheduled.html", {"when": when[:10]})
