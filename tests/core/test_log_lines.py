"""A refused request is one line in the server log; a server error keeps its traceback."""

from __future__ import annotations

import io
import logging

import pytest
from django.test import Client

from pipetower.teams.models import Role
from tests.factories import member


@pytest.fixture
def console_log():  # type: ignore[no-untyped-def]
    """What the configured console handler (settings.LOGGING) writes, captured."""
    [handler] = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    # Swapped without setStream(): that flushes the old stream, which an earlier
    # test's output capture may have closed already.
    previous, handler.stream = handler.stream, stream
    try:
        yield stream
    finally:
        handler.stream = previous


def test_a_403_is_logged_as_one_line(team, console_log):
    client = Client()
    client.force_login(member(team, Role.VIEWER))

    response = client.get(f"/teams/{team.slug}/servers/new/")

    assert response.status_code == 403
    lines = [line for line in console_log.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1, console_log.getvalue()
    assert "Forbidden" in lines[0] and "/servers/new/" in lines[0]
    assert "Traceback" not in console_log.getvalue()


def test_a_server_error_keeps_its_traceback(console_log):
    logger = logging.getLogger("django.request")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.error("Internal Server Error: /x", exc_info=True, extra={"status_code": 500})
    assert "Traceback" in console_log.getvalue()
