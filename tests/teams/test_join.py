"""Opening an invitation link: accepting it signed in, or signing up or in through it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.urls import reverse

from pipetower.accounts.models import User
from pipetower.teams import services, signup
from pipetower.teams.models import Membership, Role
from tests.factories import PASSWORD, UserFactory
from tests.teams.conftest import expire


def page(response) -> str:
    return response.content.decode()


def join_url(token: str) -> str:
    return reverse("teams:join", args=[token])


# --- signed in ----------------------------------------------------------------------------


def test_the_link_shows_team_role_and_inviter(client, invite):
    _, token = invite("grace@example.com", Role.OPERATOR)
    client.force_login(UserFactory(email="grace@example.com"))

    response = client.get(join_url(token))

    assert response.status_code == 200
    html = page(response)
    assert "Join Analytical Engines" in html
    assert "<strong>Ada Lovelace</strong>" in html
    assert '<span class="badge badge-operator">Operator</span>' in html
    assert "Accept and join</button>" in html
    assert "You are signed in as" not in html


def test_accepting_lands_on_the_team_page(client, invite, team):
    _, token = invite("grace@example.com", Role.OPERATOR)
    grace = UserFactory(email="grace@example.com")
    client.force_login(grace)

    response = client.post(join_url(token), follow=True)

    assert response.redirect_chain[-1][0] == reverse("teams:detail", args=[team.slug])
    assert "Welcome to Analytical Engines. You joined as operator." in page(response)
    assert Membership.objects.get(team=team, user=grace).role == Role.OPERATOR


def test_signed_in_with_another_address_the_page_says_so(client, invite):
    _, token = invite("grace@example.com")
    client.force_login(UserFactory(email="hopper@example.com"))

    html = page(client.get(join_url(token)))

    assert "You are signed in as hopper@example.com, not grace@example.com." in html


def test_a_member_opening_the_link_is_told_they_are_already_in(client, invite, make_member):
    _, token = invite("someone@example.com")
    client.force_login(make_member(Role.VIEWER))

    html = page(client.get(join_url(token)))

    assert "You are already a member of Analytical Engines." in html
    assert "Accept and join" not in html


def test_a_member_posting_the_accept_anyway_lands_on_the_team(client, invite, team, make_member):
    invitation, token = invite("someone@example.com")
    client.force_login(make_member(Role.VIEWER))

    response = client.post(join_url(token), follow=True)

    assert response.redirect_chain[-1][0] == reverse("teams:detail", args=[team.slug])
    assert "You are already a member of Analytical Engines." in page(response)
    invitation.refresh_from_db()
    assert invitation.is_pending


# --- links that no longer work -----------------------------------------------------------


def test_an_expired_link_shows_a_gone_page(client, invite):
    invitation, token = invite()
    expire(invitation, ago=timedelta(days=1))

    response = client.get(join_url(token))

    assert response.status_code == 410
    assert "This invitation can no longer be used" in page(response)
    assert "This invitation expired on" in page(response)


def test_a_used_link_shows_a_gone_page_even_when_posted(client, invite):
    _, token = invite()
    services.invitation_accept(token=token, user=UserFactory())
    client.force_login(UserFactory())

    for response in (client.get(join_url(token)), client.post(join_url(token))):
        assert response.status_code == 410
        assert "This invitation has already been used." in page(response)


def test_a_revoked_link_shows_a_gone_page(client, invite, user):
    invitation, token = invite()
    services.invitation_revoke(invitation=invitation, actor=user)

    response = client.get(join_url(token))

    assert response.status_code == 410
    assert "This invitation was withdrawn by the team." in page(response)


@pytest.mark.parametrize("token", ["nonsense", "Z" * 43, "a" * 300, "%0A"])
def test_a_malformed_or_unknown_link_shows_not_found(client, db, token):
    response = client.get(f"/teams/join/{token}/")

    assert response.status_code == 404
    assert "This invitation link is not valid." in page(response)


def test_a_link_with_a_nul_character_is_refused_as_unreadable(client, db):
    """NUL is refused before any view runs, on every path (tests/core/test_odd_input.py)."""
    response = client.get("/teams/join/%00%0A/")

    assert response.status_code == 400
    assert "NUL" in response.content.decode()


# --- not signed in: sign up or sign in through the link -------------------------------------


def test_a_visitor_is_offered_to_create_an_account_or_sign_in(client, invite):
    _, token = invite("grace@example.com")

    response = client.get(join_url(token))

    html = page(response)
    assert "Create an account</a>" in html
    assert "Sign in</a>" in html
    assert f"?next=%2Fteams%2Fjoin%2F{token}%2F" in html
    assert client.session[signup.INVITATION_SESSION_KEY] == token
    assert client.session["account_verified_email"] == "grace@example.com"


def test_without_open_sign_up_a_visitor_is_offered_only_sign_in(client, invite, settings):
    settings.SIGNUP_MODE = "closed"
    _, token = invite("grace@example.com")

    html = page(client.get(join_url(token)))

    assert "Create an account" not in html
    assert "Sign in</a>" in html


def test_a_visitor_posting_accept_is_sent_to_sign_in(client, invite):
    _, token = invite()

    response = client.post(join_url(token))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def _sign_up(client, email: str, token: str):
    return client.post(
        reverse("account_signup") + f"?next={join_url(token)}",
        {
            "email": email,
            "name": "Grace Hopper",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
        follow=True,
    )


def test_signing_up_through_the_link_lands_in_the_team(client, invite, team, mailoutbox):
    _, token = invite("grace@example.com", Role.OPERATOR)
    client.get(join_url(token))
    mails_before = len(mailoutbox)

    response = _sign_up(client, "grace@example.com", token)

    grace = User.objects.get(email="grace@example.com")
    assert Membership.objects.get(team=team, user=grace).role == Role.OPERATOR
    # Opening the link proved the address: no verification email, and it counts as verified.
    assert EmailAddress.objects.get(user=grace).verified
    assert len(mailoutbox) == mails_before
    assert response.redirect_chain[-1][0] == reverse("teams:detail", args=[team.slug])
    assert "Welcome to Analytical Engines" in page(response)


def test_signing_up_through_the_link_with_another_address_keeps_the_invited_one_primary(
    client, invite, team
):
    """allauth's stash makes the invited (verified) address the account's primary one;
    the typed address is added unverified, and the account joins the team."""
    _, token = invite("grace@example.com")
    client.get(join_url(token))

    _sign_up(client, "hopper@example.com", token)

    grace = User.objects.get(name="Grace Hopper")
    assert grace.email == "grace@example.com"
    assert set(EmailAddress.objects.filter(user=grace).values_list("email", "verified")) == {
        ("grace@example.com", True),
        ("hopper@example.com", False),
    }
    assert Membership.objects.filter(team=team, user=grace).exists()


def test_a_new_account_with_another_address_does_not_join_on_sign_up(make_request, invite, team):
    invitation, token = invite("grace@example.com")
    hopper = UserFactory(email="hopper@example.com")

    signup.accept_invitation_on_signup(User, request=make_request(token), user=hopper)

    assert not Membership.objects.filter(team=team, user=hopper).exists()
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_a_new_account_with_the_invited_address_joins_on_sign_up(make_request, invite, team):
    _, token = invite("grace@example.com")
    grace = UserFactory(email="Grace@Example.com")

    signup.accept_invitation_on_signup(User, request=make_request(token), user=grace)

    assert Membership.objects.get(team=team, user=grace).role == Role.OPERATOR


def test_sign_up_without_a_remembered_invitation_joins_nothing(make_request, invite):
    invite("grace@example.com")
    grace = UserFactory(email="grace@example.com")

    signup.accept_invitation_on_signup(User, request=make_request(), user=grace)

    assert not Membership.objects.filter(user=grace).exists()


# --- the questions the account adapter asks ---------------------------------------------------


@pytest.fixture
def make_request(db):
    def make(token: str | None = None, user=None):
        request = RequestFactory().get("/")
        request.session = SessionStore()
        request.user = user or AnonymousUser()
        if token:
            request.session[signup.INVITATION_SESSION_KEY] = token
        return request

    return make


def test_sign_up_mode_open_allows_anyone_and_closed_nobody(make_request, settings, invite):
    _, token = invite()
    settings.SIGNUP_MODE = "open"
    assert signup.signup_allowed(make_request())
    settings.SIGNUP_MODE = "closed"
    assert not signup.signup_allowed(make_request(token))


def test_invite_mode_allows_sign_up_only_with_a_pending_invitation(make_request, settings, invite):
    settings.SIGNUP_MODE = "invite"
    _, pending_token = invite("a@example.com")
    expired, expired_token = invite("b@example.com")
    expire(expired)

    assert signup.signup_allowed(make_request(pending_token))
    assert not signup.signup_allowed(make_request())
    assert not signup.signup_allowed(make_request(expired_token))
    assert not signup.signup_allowed(make_request("Z" * 43))


def test_the_pending_url_is_the_join_page_while_the_invitation_waits(make_request, invite):
    _, token = invite()

    assert signup.pending_invitation_url(make_request(token)) == join_url(token)
    assert signup.pending_invitation_url(make_request()) is None


def test_the_pending_url_is_the_team_once_this_user_accepted(make_request, invite, team):
    _, token = invite("grace@example.com")
    grace = UserFactory(email="grace@example.com")
    services.invitation_accept(token=token, user=grace)
    request = make_request(token, user=grace)

    assert signup.pending_invitation_url(request) == reverse("teams:detail", args=[team.slug])
    assert signup.INVITATION_SESSION_KEY not in request.session


def test_a_spent_token_of_someone_else_gives_no_pending_url_and_is_forgotten(make_request, invite):
    _, token = invite()
    services.invitation_accept(token=token, user=UserFactory())
    request = make_request(token, user=UserFactory())

    assert signup.pending_invitation_url(request) is None
    assert signup.INVITATION_SESSION_KEY not in request.session
