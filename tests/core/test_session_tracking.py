"""Where-you-are-signed-in tracking without a database write on every request."""

from __future__ import annotations

from typing import Any

from allauth.usersessions.models import UserSession
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


def _writes(client: Client, **headers: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/teams/", headers=headers).status_code == 200
    return [q["sql"] for q in captured if "usersessions_usersession" in q["sql"].lower()]


def test_a_session_is_tracked_once_then_again_when_its_browser_changes(
    client: Client, user: Any
) -> None:
    client.force_login(user)

    assert _writes(client, user_agent="Firefox/140")  # new to this process: tracked
    assert _writes(client, user_agent="Firefox/140") == []  # nothing new: no query at all
    assert _writes(client, user_agent="Chrome/150")  # another browser: tracked at once

    session = UserSession.objects.get(session_key=client.session.session_key)
    assert session.user_agent == "Chrome/150"
