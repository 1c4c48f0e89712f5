"""`/tokens`: managing your own tokens through the API."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from pipetower.api.models import ApiToken
from tests.api.helpers import Api, error_of
from tests.factories import UserFactory


def test_list_shows_my_tokens_without_secrets(api, user, make_token):
    make_token(UserFactory(), name="someone else's")

    response = api.get("/tokens")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    [item] = body["items"]
    assert item["name"] == "script"
    assert item["scope"] == "write" and item["state"] == "active"
    token = ApiToken.objects.get(name="script")
    assert token.token_hash not in response.content.decode()
    assert "token_hash" not in item and "token" not in item


def test_read_token_may_list_tokens(client, user, read_token):
    response = Api(client, read_token).get("/tokens")

    assert response.status_code == 200
    assert response.json()["items"][0]["name"] == "reader"


def test_create_answers_the_token_once_and_it_works(api, client):
    response = api.post("/tokens", {"name": "ci", "scope": "read", "expires_in_days": 30})

    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith(f"ptk_{body['prefix']}_")
    assert body["scope"] == "read"
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - timezone.now() <= timedelta(days=30)

    me = Api(client, body["token"]).get("/me")
    assert me.status_code == 200
    listed = api.get("/tokens").json()["items"]
    assert all("token" not in item for item in listed)


def test_create_defaults_to_read_scope_and_no_expiry(api):
    body = api.post("/tokens", {"name": "plain"}).json()

    assert body["scope"] == "read"
    assert body["expires_at"] is None


def test_create_refuses_bad_input(api):
    for payload, field in [
        ({"name": 7}, "name"),
        ({"name": "x", "scope": "admin"}, "scope"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 366}, "expires_in_days"),
        ({"name": ""}, "name"),
    ]:
        response = api.post("/tokens", payload)
        assert response.status_code == 422, payload
        assert [d["field"] for d in error_of(response)["details"]] == [field], payload
    assert ApiToken.objects.count() == 1  # only the caller's own


def test_a_token_cannot_create_a_token_that_outlives_it(client, user, make_token):
    _, raw = make_token(user, expires_at=timezone.now() + timedelta(days=2))
    caller = Api(client, raw)

    too_late = caller.post("/tokens", {"name": "forever", "scope": "write", "expires_in_days": 30})
    assert too_late.status_code == 403
    error = error_of(too_late)
    assert error["code"] == "expiry_too_late"
    assert error["details"][0]["field"] == "expires_in_days"

    inherited = caller.post("/tokens", {"name": "child", "scope": "write"})
    assert inherited.status_code == 201
    child = ApiToken.objects.get(name="child")
    parent = ApiToken.objects.get(name="script")
    assert child.expires_at == parent.expires_at


def test_delete_revokes_my_token(api, user, make_token):
    token, _ = make_token(user, name="old")

    response = api.delete(f"/tokens/{token.pk}")

    assert response.status_code == 204
    assert response.content == b""
    token.refresh_from_db()
    assert token.state == "revoked"


def test_a_token_can_revoke_itself(client, user, make_token):
    token, raw = make_token(user, name="self")
    caller = Api(client, raw)

    assert caller.delete(f"/tokens/{token.pk}").status_code == 204
    assert caller.get("/me").status_code == 401


def test_someone_elses_token_is_404(api, make_token):
    theirs, _ = make_token(UserFactory(), name="theirs")

    response = api.delete(f"/tokens/{theirs.pk}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_token_id_must_be_a_number(api):
    response = api.delete("/tokens/abc")

    assert response.status_code == 422
    assert error_of(response)["details"][0]["field"] == "token_id"
