"""`/me`: the caller's own account."""

from __future__ import annotations

from pipetower.audit.models import AuditEvent
from tests.api.helpers import error_of


def test_me_shows_who_is_calling(api, user):
    response = api.get("/me")

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "date_joined": response.json()["date_joined"],
    }
    assert "password" not in response.content.decode()


def test_patch_me_changes_the_name_through_the_profile_service(api, user):
    response = api.patch("/me", {"name": "  Ada   King  "})

    assert response.status_code == 200
    assert response.json()["name"] == "Ada King"
    user.refresh_from_db()
    assert user.name == "Ada King"
    assert AuditEvent.objects.filter(verb="account.profile_updated", actor=user).exists()


def test_patch_me_with_a_number_as_name_is_422_with_details(api, user):
    response = api.patch("/me", {"name": 42})

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["message"] == "Some fields are invalid: name."
    [detail] = error["details"]
    assert detail["field"] == "name"
    assert detail["location"] == "body"
    assert "string" in detail["message"]


def test_patch_me_with_an_empty_name_is_422(api):
    response = api.patch("/me", {"name": "   "})

    assert response.status_code == 422
    assert error_of(response)["details"][0]["field"] == "name"


def test_patch_me_refuses_fields_it_does_not_know(api, user):
    response = api.patch("/me", {"name": "Ada", "email": "evil@example.com"})

    assert response.status_code == 422
    assert [d["field"] for d in error_of(response)["details"]] == ["email"]
    user.refresh_from_db()
    assert user.email == "ada@example.com"


def test_patch_me_with_broken_json_is_400(api):
    response = api.patch("/me", "{name: ")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "bad_request"
    assert error["message"] == "The request body is not valid JSON."
