"""Changing the email address: the new one counts only once confirmed; the old one is told."""

from __future__ import annotations

from allauth.account.models import EmailAddress

from tests.accounts.conftest import input_tag, link_in, sign_in
from tests.factories import PASSWORD, UserFactory


def ask_for_change(client, committed, new_email="ada@newmail.example"):
    with committed():
        return client.post("/accounts/email/", {"action_add": "", "email": new_email})


def test_email_page_shows_the_current_address_and_a_change_form(client, user):
    sign_in(client, "ada@example.com")
    html = client.get("/accounts/email/").content.decode()
    assert 'value="ada@example.com"' in html
    assert "autofocus" in input_tag(html, "email")
    assert 'class="container account-page"' in html
    assert 'href="/account/profile/"' in html  # the account pages link to each other


def test_changing_email_end_to_end(client, user, mailoutbox, committed):
    sign_in(client, "ada@example.com")

    response = ask_for_change(client, committed)

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "ada@example.com"  # not yet: the new address is unconfirmed
    confirmation = mailoutbox[-1]
    assert confirmation.to == ["ada@newmail.example"]
    assert "Confirm your email address" in confirmation.subject
    pending = client.get("/accounts/email/").content.decode()
    assert "ada@newmail.example" in pending
    assert "pending verification" in pending

    with committed():
        confirmed = client.post(link_in(confirmation))

    assert confirmed.status_code == 302
    user.refresh_from_db()
    assert user.email == "ada@newmail.example"
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified")) == [
        ("ada@newmail.example", True)
    ]
    notice = mailoutbox[-1]
    assert notice.to == ["ada@example.com"]
    assert "ada@example.com to ada@newmail.example" in notice.body

    client.logout()
    refused = client.post("/accounts/login/", {"login": "ada@example.com", "password": PASSWORD})
    assert refused.status_code == 200
    assert sign_in(client, "ada@newmail.example")


def test_the_new_address_cannot_sign_in_before_it_is_confirmed(client, user, mailoutbox, committed):
    sign_in(client, "ada@example.com")
    ask_for_change(client, committed)
    client.logout()
    with committed():
        response = client.post(
            "/accounts/login/", {"login": "ada@newmail.example", "password": PASSWORD}
        )
    # allauth asks for the address to be confirmed first.
    assert response["Location"] == "/accounts/confirm-email/"
    assert client.get("/account/profile/").status_code == 302


def test_changing_to_an_address_another_account_uses_reveals_nothing_and_changes_nothing(
    client, user, mailoutbox, committed
):
    UserFactory(email="taken@example.com")
    sign_in(client, "ada@example.com")
    response = ask_for_change(client, committed, "taken@example.com")
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "ada@example.com"
    assert not EmailAddress.objects.filter(user=user, email="taken@example.com", verified=True)


def test_a_malformed_address_is_refused_next_to_the_field(client, user):
    sign_in(client, "ada@example.com")
    response = client.post("/accounts/email/", {"action_add": "", "email": "not-an-address"})
    html = response.content.decode()
    assert "Enter a valid email address." in html
    assert 'aria-invalid="true"' in input_tag(html, "email")
