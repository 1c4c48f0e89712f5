from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from pipetower.core import health
from pipetower.core.models import WorkerHeartbeat
from pipetower.core.outbox import outbox_backlog


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("teams:list")
    return render(request, "core/landing.html")


def worker_status() -> dict[str, Any]:
    latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if latest is None:
        return {"status": "unknown", "detail": "no worker has reported yet"}
    age = timezone.now() - latest.seen_at
    fresh = age <= settings.WORKER_HEARTBEAT_STALE_AFTER
    return {
        "status": "ok" if fresh else "stale",
        "last_seen": latest.seen_at.isoformat(),
        "seconds_ago": round(age.total_seconds(), 1),
    }


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker, cache and worker health for load balancers and people.

    `status` is "error" (HTTP 503) when the database does not answer, "degraded"
    when the site serves pages but something behind it is down (the broker, the
    cache, or no recent worker), and `down` lists which, by name.
    """
    body: dict[str, Any] = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = {"status": "ok", "vendor": connection.vendor}
        body["worker"] = worker_status()
        body["outbox"] = outbox_backlog()
    except DatabaseError as exc:
        body["database"] = {"status": "error", "detail": exc.__class__.__name__}
        body["worker"] = {"status": "unknown", "detail": "database unavailable"}
    body["broker"] = health.broker_status()
    body["cache"] = health.cache_status()
    down = [part for part in ("database", "broker", "cache") if body[part]["status"] != "ok"]
    if body["worker"]["status"] != "ok":
        down.append("worker")
    if body["database"]["status"] != "ok":
        body["status"] = "error"
    elif down:
        body["status"] = "degraded"
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if body["status"] == "error" else 200)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(
        request,
        "core/error.html",
        {
            "code": 403,
            "title": "Not allowed",
            "message": "Your role does not allow this. Ask a team owner or admin if you need it.",
        },
        status=403,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(
        request,
        "core/error.html",
        {
            "code": 404,
            "title": "Not found",
            "message": "There is nothing here, or you do not have access to it.",
        },
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/error.html",
        {
            "code": 500,
            "title": "Something broke",
            "message": "Pipetower hit an unexpected error. Nothing you entered was lost; "
            "please try again in a moment.",
        },
        status=500,
    )
