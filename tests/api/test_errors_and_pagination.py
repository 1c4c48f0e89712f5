"""Every failure has one JSON shape; every list pages the same way."""

from __future__ import annotations

import pytest

from pipetower.api.endpoints import me as me_endpoints
from tests.api.helpers import error_of


@pytest.fixture
def five_more_tokens(user, make_token):
    for n in range(5):
        make_token(user, name=f"token {n}")


def test_lists_are_paginated_with_links(api, five_more_tokens):
    first = api.get("/tokens?page_size=2").json()

    assert first["count"] == 6
    assert (first["page"], first["page_size"]) == (1, 2)
    assert len(first["items"]) == 2
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/v1/tokens?page_size=2&page=2"

    last = api.get("/tokens?page=3&page_size=2").json()
    assert [t["name"] for t in last["items"]] == ["token 0", "script"]
    assert last["next"] is None
    assert last["previous"] == "http://testserver/api/v1/tokens?page=2&page_size=2"


def test_pages_cover_every_item_once(api, five_more_tokens):
    seen, url = [], "/tokens?page_size=4"
    while url:
        body = api.get(url).json()
        seen += [t["id"] for t in body["items"]]
        url = body["next"] and body["next"].removeprefix("http://testserver/api/v1")
    assert len(seen) == len(set(seen)) == 6


def test_page_links_keep_the_filters(api, team):
    for n in range(3):
        api.patch("/teams/engines", {"name": f"Name {n}"})

    body = api.get("/teams/engines/audit-events?verb=team.renamed&page_size=1").json()

    assert body["count"] == 3
    assert "verb=team.renamed" in body["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=ten", "page_size"),
    ],
)
def test_invalid_page_numbers_are_422(api, query, field):
    response = api.get(f"/tokens?{query}")

    assert response.status_code == 422
    [detail] = error_of(response)["details"]
    assert (detail["field"], detail["location"]) == (field, "query")


def test_a_page_past_the_end_is_404_saying_how_many_there_are(api, five_more_tokens):
    response = api.get("/tokens?page=4&page_size=2")

    assert response.status_code == 404
    assert error_of(response)["message"] == "Page 4 is past the end: there are 3 pages."


def test_page_size_100_is_allowed(api):
    assert api.get("/tokens?page_size=100").json()["page_size"] == 100


def test_unknown_endpoint_is_a_json_404(api):
    for path in ("/nowhere", "/", "/teams/engines/servers/1"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert error_of(response)["code"] == "not_found"


def test_post_to_an_unknown_endpoint_is_a_json_404_not_a_csrf_page(anon_api):
    response = anon_api.post("/nowhere", {"x": 1})

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_unsupported_method_is_a_json_405(api):
    response = api.call("put", "/me", {"name": "Ada"})

    assert response.status_code == 405
    error = error_of(response)
    assert error["code"] == "method_not_allowed"
    assert error["message"] == "PUT is not supported here. Allowed: GET, PATCH."
    assert response["Allow"] == "GET, PATCH"


def test_an_unexpected_error_is_a_json_500_without_internals(api, monkeypatch, caplog):
    # Fault injection: no real input makes /me fail, so a collaborator is made to raise.
    def explode(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(me_endpoints, "user_update_profile", explode)

    response = api.patch("/me", {"name": "Ada"})

    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "server_error"
    assert "hunter2" not in response.content.decode()
    assert "hunter2" in caplog.text  # logged for the operators


def test_no_answer_ever_contains_a_token_hash(api, user, make_token):
    token, raw = make_token(user, name="watch me")
    answers = [
        api.get("/tokens"),
        api.get("/me"),
        api.post("/tokens", {"name": "new"}),
        api.get("/teams/engines/audit-events"),
    ]
    for response in answers:
        assert token.token_hash not in response.content.decode()
        assert raw not in response.content.decode()
