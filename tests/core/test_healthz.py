"""/healthz: what load balancers and people see about the database and the workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from pipetower.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def beat(hostname: str, seconds_ago: float) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(
        hostname=hostname, seen_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_without_any_worker_heartbeat_the_worker_is_unknown_and_health_degraded(
    client: Client,
) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"status": "ok", "vendor": connection.vendor}
    assert body["worker"] == {"status": "unknown", "detail": "no worker has reported yet"}
    assert body["down"] == ["worker"]


def test_a_recent_heartbeat_means_the_worker_is_ok(client: Client) -> None:
    beat("celery@one", seconds_ago=3)

    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert body["worker"]["status"] == "ok"
    assert 2 <= body["worker"]["seconds_ago"] < 60


def test_an_old_heartbeat_means_the_worker_is_stale(client: Client) -> None:
    stale_after = settings.WORKER_HEARTBEAT_STALE_AFTER.total_seconds()
    beat("celery@one", seconds_ago=stale_after + 30)

    response = client.get("/healthz")

    assert response.status_code == 200  # the site still serves pages
    body = response.json()
    assert body["status"] == "degraded"
    assert body["worker"]["status"] == "stale"
    assert body["worker"]["seconds_ago"] >= stale_after + 30


def test_the_most_recent_of_several_workers_counts(client: Client) -> None:
    beat("celery@old", seconds_ago=3600)
    beat("celery@new", seconds_ago=1)

    assert client.get("/healthz").json()["worker"]["status"] == "ok"


def test_healthz_is_never_cached(client: Client) -> None:
    cache_control = client.get("/healthz")["Cache-Control"]

    assert "no-cache" in cache_control
    assert "max-age=0" in cache_control


def test_healthz_answers_without_signing_in(client: Client) -> None:
    assert client.get("/healthz").status_code == 200


def test_healthz_is_exempt_from_the_https_redirect(settings, client: Client) -> None:
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/").status_code == 301  # every other page moves to HTTPS
    assert client.get("/healthz").status_code == 200  # load balancers probe over plain HTTP


def test_the_status_page_says_in_words_how_each_part_is(client: Client) -> None:
    beat("worker-1", 5)

    response = client.get("/status")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for part in ("Web", "Database", "Worker", "Scheduler", "Broker"):
        assert f'<th scope="row">{part}</th>' in html
    assert "All working" in html and "last heartbeat 5 s ago" in html
    assert 'href="/status"' in html  # the footer links here
    assert client.get("/healthz")["Content-Type"] == "application/json"


def test_the_status_page_shows_a_silent_worker(client: Client) -> None:
    beat("worker-1", 3600)

    html = client.get("/status").content.decode()

    assert "Runs may wait" in html and "Silent" in html and "no heartbeat for 3600 s" in html


def test_favicon_ico_leads_to_the_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and "favicon" in response["Location"]
    assert response["Location"].endswith(".svg")
