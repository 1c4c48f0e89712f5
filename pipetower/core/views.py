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
    body, _rows = _parts()
    return JsonResponse(body, status=503 if body["status"] == "error" else 200)


def _parts() -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The health body (as /healthz answers it) and the same facts as rows for people."""
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
    worker = body["worker"]
    broker = "Redis" if settings.CELERY_BROKER_URL.startswith("redis") else "built-in (no service)"
    database = body["database"]
    db_name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
        str(database.get("vendor", "")), str(database.get("vendor", ""))
    )
    if worker["status"] == "ok":
        seen = f"last heartbeat {worker['seconds_ago']:.0f} s ago"
    elif worker["status"] == "stale":
        seen = f"no heartbeat for {worker['seconds_ago']:.0f} s"
    else:
        seen = str(worker.get("detail", "no heartbeat yet"))
    rows = [
        {"part": "Web", "status": "ok", "detail": "answering (you are reading this page)"},
        {
            "part": "Database",
            "status": database["status"],
            "detail": db_name if database["status"] == "ok" else str(database.get("detail")),
        },
        {"part": "Worker", "status": worker["status"], "detail": seen},
        {
            "part": "Scheduler",
            "status": worker["status"],
            "detail": "sends the heartbeat every 15 s; " + seen,
        },
        {
            "part": "Broker",
            "status": body["broker"]["status"],
            "detail": broker
            if body["broker"]["status"] == "ok"
            else f"{broker}: {body['broker'].get('detail', 'not answering')}",
        },
        {
            "part": "Cache",
            "status": body["cache"]["status"],
            "detail": "stores and returns values"
            if body["cache"]["status"] == "ok"
            else str(body["cache"].get("detail", "not answering")),
        },
    ]
    return body, rows


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that do not name an icon (JSON, the API docs)."""
    from django.templatetags.static import static

    return redirect(static("pipetower/favicon.svg"), permanent=True)


@never_cache
def status_page(request: HttpRequest) -> HttpResponse:
    """The same checks as /healthz, in words, for people (linked from every footer)."""
    body, rows = _parts()
    return render(
        request,
        "core/status.html",
        {"overall": body["status"], "rows": rows, "checked_at": timezone.now()},
        status=503 if body["status"] == "error" else 200,
    )


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
