"""Password rules, reset by email and change."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from pipetower.accounts.models import User
from pipetower.accounts.validators import StrengthValidator
from tests.accounts.conftest import STRONG_PASSWORD, link_in, sign_in
from tests.factories import PASSWORD


def test_real_settings_hash_passwords_with_argon2_first():
    real = importlib.import_module("pipetower.config.settings")
    assert real.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


@pytest.mark.parametrize("weak", ["password1234", "aaaaaaaaaaaa", "qwertyuiop12", "123456789012"])
def test_long_but_guessable_passwords_are_refused(weak, db):
    with pytest.raises(ValidationError) as refused:
        validate_password(weak, User(email="ada@example.com", name="Ada Lovelace"))
    assert refused.value.messages


def test_a_repetitive_password_is_refused_with_advice():
    with pytest.raises(ValidationError) as refused:
        StrengthValidator().validate("aaaaaaaaaaaa")
    message = refused.value.messages[0]
    assert message.startswith("This password is too easy to guess.")
    assert "Repeats" in message


def test_a_strong_passphrase_is_accepted(db):
    validate_password(STRONG_PASSWORD, User(email="ada@example.com", name="Ada Lovelace"))


def test_password_rules_are_explained_on_the_signup_form(client, db):
    html = client.get("/accounts/signup/").content.decode()
    assert "at least 12 characters" in html
    assert "long passphrase of unrelated words" in html


def reset_link(client, mailoutbox, committed, email="ada@example.com") -> str:
    with committed():
        client.post("/accounts/password/reset/", {"email": email})
    return link_in(mailoutbox[-1])


def test_password_reset_sends_a_link_that_sets_a_new_password(client, user, mailoutbox, committed):
    with committed():
        response = client.post("/accounts/password/reset/", {"email": "ada@example.com"})
    assert response["Location"] == "/accounts/password/reset/done/"
    assert mailoutbox[0].to == ["ada@example.com"]
    path = link_in(mailoutbox[0])

    form_page = client.get(path, follow=True)  # the key moves from the URL into the session
    assert 'name="password1"' in form_page.content.decode()
    with committed():
        done = client.post(
            form_page.redirect_chain[-1][0],
            {"password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD},
        )

    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG_PASSWORD)
    assert sign_in(client, "ada@example.com", STRONG_PASSWORD)


def test_a_reset_link_works_only_once(client, user, mailoutbox, committed):
    path = reset_link(client, mailoutbox, committed)
    page = client.get(path, follow=True)
    with committed():
        client.post(
            page.redirect_chain[-1][0],
            {"password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD},
        )
    again = client.get(path, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_reset_for_an_unknown_email_looks_the_same(client, user, mailoutbox, committed):
    with committed():
        known = client.post("/accounts/password/reset/", {"email": "ada@example.com"}, follow=True)
        unknown = client.post(
            "/accounts/password/reset/", {"email": "nobody@example.com"}, follow=True
        )
    assert known.redirect_chain == unknown.redirect_chain
    assert [t.name for t in known.templates] == [t.name for t in unknown.templates]
    # The address's owner, if any, learns that there is no account.
    assert mailoutbox[-1].to == ["nobody@example.com"]
    assert "no account with it" in mailoutbox[-1].body


def test_reset_refuses_a_weak_new_password_with_a_message(client, user, mailoutbox, committed):
    page = client.get(reset_link(client, mailoutbox, committed), follow=True)
    response = client.post(
        page.redirect_chain[-1][0], {"password1": "aaaaaaaaaaaa", "password2": "aaaaaaaaaaaa"}
    )
    assert "too easy to guess" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_needs_the_current_password(client, user):
    sign_in(client, "ada@example.com")
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": "wrong guess", "password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD},
    )
    assert "Please type your current password." in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_sets_the_new_password_and_tells_the_owner(
    client, user, mailoutbox, committed
):
    sign_in(client, "ada@example.com")
    with committed():
        response = client.post(
            "/accounts/password/change/",
            {"oldpassword": PASSWORD, "password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD},
        )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG_PASSWORD)
    assert client.get("/account/profile/").status_code == 200  # still signed in
    notice = mailoutbox[-1]
    assert notice.to == ["ada@example.com"]
    assert "The password of your Pipetower account was changed." in notice.body
    assert "Hello from Pipetower" in notice.body


def test_password_change_refuses_mismatched_new_passwords(client, user):
    sign_in(client, "ada@example.com")
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD + "x"},
    )
    assert "You must type the same password each time." in response.content.decode()
