"""Signing in and out."""

from __future__ import annotations

from tests.accounts.conftest import input_tag, sign_in
from tests.factories import PASSWORD


def test_sign_in_with_email_and_password_opens_the_app(client, user):
    response = sign_in(client, "ada@example.com")
    assert response["Location"] == "/"
    assert client.get("/account/profile/").status_code == 200


def test_sign_in_ignores_the_case_of_the_email_address(client, user):
    sign_in(client, "ADA@Example.com")
    assert client.get("/account/profile/").status_code == 200


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, user):
    response = client.post(
        "/accounts/login/", {"login": "ada@example.com", "password": "not the password"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The email address and/or password you specified are not correct." in html
    assert client.get("/account/profile/").status_code == 302


def test_unknown_email_gets_the_same_answer_as_a_wrong_password(client, user):
    wrong_password = client.post(
        "/accounts/login/", {"login": "ada@example.com", "password": "not the password"}
    )
    unknown = client.post(
        "/accounts/login/", {"login": "nobody@example.com", "password": "not the password"}
    )
    assert unknown.context["form"].errors == wrong_password.context["form"].errors


def test_sign_in_page_uses_the_pipetower_layout_with_the_email_field_focused(client, db):
    response = client.get("/accounts/login/")
    html = response.content.decode()
    assert "pipetower/pipetower.css" in html
    assert '<main id="main" class="entrance">' in html
    assert "Sign in to Pipetower" in html
    assert "autofocus" in input_tag(html, "login")
    assert "/accounts/password/reset/" in html


def test_sign_out_asks_to_confirm_then_signs_out(client, user):
    sign_in(client, "ada@example.com")
    page = client.get("/accounts/logout/")
    assert page.status_code == 200
    assert client.get("/account/profile/").status_code == 200  # a GET alone changes nothing

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert client.get("/account/profile/").status_code == 302


def test_pages_that_need_an_account_send_visitors_to_sign_in(client, db):
    response = client.get("/account/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/account/profile/")


def test_sign_in_returns_to_the_page_asked_for(client, user):
    response = client.post(
        "/accounts/login/?next=/account/profile/",
        {"login": "ada@example.com", "password": PASSWORD, "next": "/account/profile/"},
    )
    assert response["Location"] == "/account/profile/"
