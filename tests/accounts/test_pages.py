"""Every allauth page renders inside Pipetower's layout."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import sign_in

ENTRANCE_PAGES = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/confirm-email/",
    "/accounts/confirm-email/not-a-real-key/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/password/reset/key/1-not-a-real-key/",
]
MANAGE_PAGES = [
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
]


def assert_pipetower_layout(html: str) -> None:
    assert "pipetower/pipetower.css" in html
    assert '<a class="brand" href="/">' in html
    assert "· Pipetower</title>" in html
    assert '<footer class="footer">' in html


@pytest.mark.parametrize("path", ENTRANCE_PAGES)
def test_entrance_pages_use_the_pipetower_layout(client, db, path):
    response = client.get(path, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert_pipetower_layout(html)
    assert '<main id="main" class="entrance">' in html


@pytest.mark.parametrize("path", MANAGE_PAGES)
def test_account_pages_use_the_pipetower_layout_with_account_navigation(client, user, path):
    sign_in(client, "ada@example.com")
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert_pipetower_layout(html)
    assert 'aria-label="Your account"' in html


def test_the_current_account_page_is_marked_in_the_navigation(client, user):
    sign_in(client, "ada@example.com")
    html = client.get("/accounts/password/change/").content.decode()
    assert '<a href="/accounts/password/change/" aria-current="page">Password</a>' in html


def test_an_expired_confirmation_link_says_so(client, db):
    html = client.get("/accounts/confirm-email/not-a-real-key/").content.decode()
    assert "This confirmation link no longer works" in html
