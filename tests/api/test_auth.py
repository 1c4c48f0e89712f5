"""Who may call the API: bearer tokens, their scopes, and the browser session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_revoke
from tests.api.helpers import Api, error_of


def test_no_credentials_is_401_with_the_error_shape(anon_api):
    response = anon_api.get("/me")

    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "unauthenticated"
    assert "Bearer" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer not-a-token", "token_malformed"),
        ("Bearer ", "token_malformed"),
        ("Basic dXNlcjpwYXNz", "token_malformed"),
        ("Token ptk_abc", "token_malformed"),
        (f"Bearer ptk_{'0' * 12}_{'A' * 43}", "token_invalid"),
    ],
)
def test_malformed_or_unknown_tokens_are_401(client, db, header, code):
    response = Api(client).get("/me", headers={"Authorization": header})

    assert response.status_code == 401
    assert error_of(response)["code"] == code


def test_a_bad_token_is_refused_even_with_a_signed_in_session(client, user):
    client.force_login(user)

    response = Api(client, "ptk_nonsense").get("/me")

    assert response.status_code == 401


def test_revoked_token_is_401(client, user, make_token):
    token, raw = make_token(user)
    api_token_revoke(token=token, actor=user)

    response = Api(client, raw).get("/me")

    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "token_revoked"
    assert error["message"] == "This API token has been revoked."


def test_expired_token_is_401(client, user, make_token):
    token, raw = make_token(user, expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = Api(client, raw).get("/me")

    assert response.status_code == 401
    assert error_of(response)["code"] == "token_expired"


def test_a_valid_token_identifies_its_owner_and_records_the_use(client, user, make_token):
    token, raw = make_token(user)

    response = Api(client, raw).get("/me", REMOTE_ADDR="192.0.2.44")

    assert response.status_code == 200
    assert response.json()["email"] == user.email
    token.refresh_from_db()
    assert token.last_used_ip == "192.0.2.44"
    assert token.last_used_at is not None


def test_read_token_may_get(client, user, read_token):
    assert Api(client, read_token).get("/me").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("patch", "/me", {"name": "Ada"}),
        ("post", "/teams", {"name": "Newco"}),
        ("post", "/tokens", {"name": "escalate", "scope": "write"}),
        ("delete", "/tokens/1", None),
    ],
)
def test_read_token_cannot_change_anything(client, user, team, read_token, method, path, data):
    response = Api(client, read_token).call(method, path, data)

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "token_read_only"
    assert "read scope" in error["message"]
    user.refresh_from_db()
    assert user.name == "Ada Lovelace"
    assert ApiToken.objects.filter(name="escalate").count() == 0


def test_signed_in_session_can_read(client, user):
    client.force_login(user)

    response = Api(client).get("/me")

    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_signed_in_session_needs_the_csrf_token_to_write(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    refused = Api(browser).patch("/me", {"name": "Ada King"})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "csrf_failed"

    browser.get("/api/v1/docs")  # the docs page hands out the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    accepted = Api(browser).patch("/me", {"name": "Ada King"}, headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 200
    user.refresh_from_db()
    assert user.name == "Ada King"


def test_bearer_token_needs_no_csrf_token(user, write_token):
    browser = Client(enforce_csrf_checks=True)

    response = Api(browser, write_token).patch("/me", {"name": "Ada King"})

    assert response.status_code == 200


def test_too_many_requests_is_429_with_retry_after(client, user, read_token, settings):
    settings.API_RATE_LIMIT = "3/m"
    caller = Api(client, read_token)

    statuses = [caller.get("/me").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = caller.get("/me")
    assert error_of(response)["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
