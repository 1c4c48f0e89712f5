"""A used invitation's token never reaches the web log (issue 9, finding 12).

Django logs the path of every 4xx answer ("Gone: /teams/join/…/"); the log
handler redacts tokens of every secret-bearing route of the URL configuration.
The log is read as the operator would: what the process writes to stderr.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from pipetower.core.logsafe import RedactSecrets, redact, secret_routes
from pipetower.teams import services
from tests.factories import UserFactory


@pytest.fixture
def web_log() -> Iterator[io.StringIO]:
    """What the configured console handler (LOGGING in settings) writes."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    # Not setStream(): it flushes the previous stream, which another test may have closed.
    previous, handler.stream = handler.stream, written
    yield written
    handler.stream = previous


def test_a_used_invitation_link_is_logged_without_its_token(
    client: Any, invite: Any, web_log: io.StringIO
) -> None:
    _, token = invite()
    services.invitation_accept(token=token, user=UserFactory())

    response = client.get(reverse("teams:join", args=[token]))

    assert response.status_code == 410
    logged = web_log.getvalue()
    assert "/teams/join/[redacted]/" in logged
    assert token not in logged


@pytest.mark.parametrize(
    ("logged", "secret"),
    [
        ("Gone: /teams/join/tok3nValue_-x/", "tok3nValue_-x"),
        ("Not Found: /account/security/not-me/abc.def:ghi/", "abc.def:ghi"),
        ("Gone: /privacy/unsubscribe/u-n-s-u-b/", "u-n-s-u-b"),
        ("Forbidden: /privacy/export/download/dl:Tok3n/", "dl:Tok3n"),
        ("Gone: /privacy/restriction/lift/LiftTok/", "LiftTok"),
        ("Not Found: /accounts/confirm-email/Mjk:1abc:xyz/", "Mjk:1abc:xyz"),
        ("Bad Request: /accounts/password/reset/key/1x-set-password/", "set-password"),
        ("GET /somewhere?next=/&token=s3cr3t&page=2", "s3cr3t"),
    ],
)
def test_secret_parts_of_paths_and_queries_are_redacted(db: None, logged: str, secret: str) -> None:
    assert secret not in redact(logged)
    assert "[redacted]" in redact(logged)


def test_other_paths_are_left_alone(db: None) -> None:
    assert redact("Not Found: /teams/engines/runs/12/") == "Not Found: /teams/engines/runs/12/"


def test_every_route_with_a_token_is_known(db: None) -> None:
    """Taken from the URL configuration: a new secret-bearing route is covered by itself."""
    assert len(secret_routes()) >= 7


def test_the_filter_rewrites_the_record_and_keeps_it() -> None:
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "%s: %s", ("Gone", "/teams/join/abc/"), None
    )
    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == "Gone: /teams/join/[redacted]/"
