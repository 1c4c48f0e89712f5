"""Who may sign up: PIPETOWER_SIGNUP (open, invite, closed) and pending invitations."""

from __future__ import annotations

import pytest

from pipetower.accounts.models import User
from pipetower.teams import signup as team_signup
from tests.accounts.conftest import STRONG_PASSWORD, link_in, sign_in

SIGNUP = {
    "name": "Grace Hopper",
    "email": "grace@example.com",
    "password1": STRONG_PASSWORD,
    "password2": STRONG_PASSWORD,
}


def test_open_mode_shows_the_signup_form(client, db, settings):
    settings.SIGNUP_MODE = "open"
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert "form" in response.context


def test_closed_mode_shows_a_friendly_closed_page_and_creates_nobody(client, db, settings):
    settings.SIGNUP_MODE = "closed"
    page = client.get("/accounts/signup/")
    attempt = client.post("/accounts/signup/", SIGNUP)

    for response in (page, attempt):
        html = response.content.decode()
        assert "Sign-up is closed" in html
        assert "This Pipetower does not take new accounts" in html
        assert 'name="password1"' not in html
    assert not User.objects.exists()


def test_invite_mode_without_an_invitation_explains_how_to_get_one(client, db, settings):
    settings.SIGNUP_MODE = "invite"
    response = client.post("/accounts/signup/", SIGNUP)
    html = response.content.decode()
    assert "Sign-up is by invitation" in html
    assert "Ask an owner or admin of your team to invite you" in html
    assert not User.objects.exists()


@pytest.mark.parametrize("mode", ["invite", "closed"])
def test_sign_in_page_offers_no_signup_link_unless_signup_is_open(client, db, settings, mode):
    settings.SIGNUP_MODE = mode
    assert "/accounts/signup/" not in client.get("/accounts/login/").content.decode()
    settings.SIGNUP_MODE = "open"
    assert "/accounts/signup/" in client.get("/accounts/login/").content.decode()


@pytest.mark.parametrize("mode", ["invite", "closed"])
def test_unknown_account_email_offers_no_signup_link_unless_signup_is_open(
    client, db, settings, mailoutbox, committed, mode
):
    settings.SIGNUP_MODE = mode
    with committed():
        client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert "/accounts/signup/" not in mailoutbox[0].body


def test_the_adapter_asks_the_teams_rule_whether_signup_is_allowed(
    client, db, settings, monkeypatch
):
    # The teams app decides what counts as a valid invitation; here we only
    # check that the account adapter asks it (a stand-in for that decision).
    settings.SIGNUP_MODE = "invite"
    monkeypatch.setattr(team_signup, "signup_allowed", lambda request: True)
    response = client.get("/accounts/signup/")
    assert 'name="password1"' in response.content.decode()


def test_sign_in_goes_to_a_pending_invitation_first(client, user, monkeypatch):
    # Stand-in for the teams app's answer: which invitation this visitor holds.
    monkeypatch.setattr(team_signup, "pending_invitation_url", lambda request: "/teams/join/x/")
    response = sign_in(client, "ada@example.com")
    assert response["Location"] == "/teams/join/x/"


def test_sign_in_without_a_pending_invitation_goes_home(client, user):
    assert sign_in(client, "ada@example.com")["Location"] == "/"


def test_confirming_a_new_account_goes_to_a_pending_invitation_first(
    client, db, mailoutbox, committed, monkeypatch
):
    # Stand-in for the teams app's answer: which invitation this visitor holds.
    monkeypatch.setattr(team_signup, "pending_invitation_url", lambda request: "/teams/join/x/")
    with committed():
        client.post("/accounts/signup/", SIGNUP)
    with committed():
        response = client.post(link_in(mailoutbox[0]))
    assert response["Location"] == "/teams/join/x/"
