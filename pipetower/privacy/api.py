"""`/me/exports`: your data export through the API, as on the export page.

Asking for an export queues it (the same service as the page, so the same
one-at-a-time rule and audit); `GET` shows its progress; the download answers
the zip archive. An export holds everything about you in every team, so a
token limited to one team may not ask for or fetch one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import FileResponse, Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status

from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.pagination import Page, PageParams, paginate
from pipetower.core.errors import Conflict, Gone, NotAllowed
from pipetower.privacy import export
from pipetower.privacy.models import ExportJob

router = Router(tags=["me"])


class ExportOut(Schema):
    id: int
    status: Literal["queued", "building", "ready", "failed", "expired"]
    progress: int = Field(..., description="Percent built.")
    size_bytes: int
    error: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(..., description="The archive is deleted then.")
    downloaded_at: datetime | None
    downloadable: bool


def _export_out(job: ExportJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "size_bytes": job.size_bytes,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "downloaded_at": job.downloaded_at,
        "downloadable": job.is_downloadable,
    }


def _caller(request: HttpRequest) -> Any:
    caller = principal(request)
    if caller.team_id is not None:
        raise NotAllowed(
            "This token is limited to one team, and an export holds your data from every "
            "team. Use a token for all your teams.",
            code="token_team_scope",
        )
    return caller.user


def _job(request: HttpRequest, export_id: int) -> ExportJob:
    job = ExportJob.objects.filter(pk=export_id, user=_caller(request)).first()
    if job is None:
        raise Http404("No such export.")
    return job


@router.get(
    "/me/exports",
    response=with_errors({200: Page[ExportOut]}, 400, 401, 403, 404, 422, 429),
    operation_id="exports_list",
)
def exports_list(request: HttpRequest, pagination: Query[PageParams]) -> dict[str, Any]:
    """Your data exports, newest first."""
    jobs = ExportJob.objects.filter(user=_caller(request))
    return paginate(request, jobs, pagination, transform=_export_out)


@router.post(
    "/me/exports",
    response=with_errors({202: ExportOut}, 400, 401, 403, 409, 429),
    operation_id="exports_request",
)
def exports_request(request: HttpRequest) -> Status[dict[str, Any]]:
    """Ask for an export of your data. It is built in the background (202): ask for
    it by id until `status` is `ready`. One at a time (409 while one is built)."""
    job = export.export_request(user=_caller(request), request=request)
    return Status(202, _export_out(job))


@router.get(
    "/me/exports/{export_id}",
    response=with_errors({200: ExportOut}, 400, 401, 403, 404, 429),
    operation_id="exports_get",
)
def exports_get(request: HttpRequest, export_id: int) -> dict[str, Any]:
    """One export: its status and progress."""
    return _export_out(_job(request, export_id))


@router.get(
    "/me/exports/{export_id}/download",
    response=with_errors({200: None}, 400, 401, 403, 404, 409, 410, 429),
    operation_id="exports_download",
    openapi_extra={
        "responses": {
            200: {
                "description": "The export archive (zip).",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def exports_download(request: HttpRequest, export_id: int) -> Any:
    """The archive of a ready export (zip). 409 while it is being built, 410 once
    expired. Each download is recorded in your activity, as on the page."""
    job = _job(request, export_id)
    if job.is_building:
        raise Conflict("The export is still being built; ask again when it is ready.")
    if not job.is_downloadable:
        raise Gone("This export has expired or been removed. Request a new export.")
    token = export.export_download_token(job)
    job = export.export_get_for_download(user=job.user, token=token, request=request)
    return FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        filename=f"pipetower-export-{job.created_at:%Y%m%d}.zip",
        content_type="application/zip",
    )
