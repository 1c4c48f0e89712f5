from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD

STRONG_PASSWORD = "plum tractor violet harbour 93"


@pytest.fixture
def committed(
    django_capture_on_commit_callbacks: Any,
) -> Callable[[], AbstractContextManager[Any]]:
    """Runs what a request scheduled for after commit (emails, file deletions).

    Tests run inside a transaction that never commits; this plays the commit.
    """
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """Uploaded files go to a fresh folder for this test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def link_in(message: mail.EmailMessage) -> str:
    """The path of the (single) Pipetower link in an email body."""
    from django.conf import settings

    links = re.findall(re.escape(settings.BASE_URL) + r"(/\S+)", str(message.body))
    assert len(links) == 1, message.body
    return links[0]


def sign_in(client: Client, email: str, password: str = PASSWORD) -> Any:
    """Sign in through the real sign-in form (allauth then knows when we authenticated)."""
    response = client.post("/accounts/login/", {"login": email, "password": password})
    assert response.status_code == 302, response.content.decode()
    return response


def input_tag(html: str, name: str) -> str:
    """The HTML of the <input> with this name attribute."""
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, f"no input named {name}"
    return match.group(0)
