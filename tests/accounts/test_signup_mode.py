"""Who may sign up: PIPETOWER_SIGNUP (open, invite, closed) and pending invitations."""

from __future__ import annotations

import re

import pytest

from pipetower.accounts.models import User
from pipetower.teams.models import Membership, Role
from pipetower.teams.services import invitation_create
from tests.accounts.conftest import STRONG_PASSWORD, sign_in
from tests.factories import TeamFactory, UserFactory

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


def _invitation_link(email, mailoutbox, committed):
    """A real invitation to a team Ada owns, and its link as the email gives it."""
    owner = UserFactory(email="ada.owner@example.com")
    team = TeamFactory(name="Engines", slug="engines-signup")
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    with committed():
        invitation_create(team=team, actor=owner, email=email, role=Role.VIEWER)
    match = re.search(r"/teams/join/[A-Za-z0-9_-]+/", mailoutbox[-1].body)
    assert match, "no invitation link in the email"
    return team, match.group(0)


def test_invite_mode_opens_sign_up_to_someone_holding_an_invitation(
    client, db, settings, mailoutbox, committed
):
    settings.SIGNUP_MODE = "invite"
    _, link = _invitation_link("grace@example.com", mailoutbox, committed)
    client.get(link)  # the visitor opens the link from their email
    response = client.get("/accounts/signup/")
    assert 'name="password1"' in response.content.decode()


def test_sign_in_goes_to_a_pending_invitation_first(client, user, mailoutbox, committed):
    _, link = _invitation_link(user.email, mailoutbox, committed)
    client.get(link)
    response = sign_in(client, user.email)
    assert response["Location"] == link


def test_sign_in_without_a_pending_invitation_goes_home(client, user):
    assert sign_in(client, "ada@example.com")["Location"] == "/"


def test_signing_up_through_an_invitation_lands_in_the_team(client, db, mailoutbox, committed):
    team, link = _invitation_link("grace@example.com", mailoutbox, committed)
    client.get(link)
    with committed():
        response = client.post("/accounts/signup/", SIGNUP, follow=True)
    grace = User.objects.get(email="grace@example.com")
    assert Membership.objects.filter(team=team, user=grace).exists()
    assert response.redirect_chain[-1][0].startswith(f"/teams/{team.slug}/")
