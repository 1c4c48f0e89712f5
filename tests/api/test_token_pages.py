"""The API tokens page: create (shown once), list, revoke."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_authenticate
from pipetower.audit.models import AuditEvent
from tests.factories import UserFactory


def test_signed_out_people_are_sent_to_sign_in(client, db):
    response = client.get(reverse("tokens:list"))

    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_empty_state_invites_creating_a_token(client, user):
    client.force_login(user)

    response = client.get(reverse("tokens:list"))

    assert response.status_code == 200
    assert "No tokens yet" in response.content.decode()
    assert 'name="name"' in response.content.decode()
    assert "autofocus" in str(response.context["form"]["name"])


def test_creating_a_token_shows_it_exactly_once(client, user):
    client.force_login(user)

    response = client.post(
        reverse("tokens:create"),
        {"name": "laptop CLI", "scope": "write", "expires_in_days": "30"},
        REMOTE_ADDR="203.0.113.5",
    )

    # The POST redirects (post/redirect/get); the page it leads to shows the token.
    assert response.status_code == 302
    assert response["Location"] == reverse("tokens:list")
    response = client.get(response["Location"])
    assert "no-store" in response["Cache-Control"]
    plaintext = response.context["plaintext"]
    html = response.content.decode()
    assert f'<code id="new-token" class="mono">{plaintext}</code>' in html
    assert 'data-copy="new-token"' in html
    assert "only time it is shown" in html
    token = api_token_authenticate(raw_token=plaintext, ip=None)
    assert (token.name, token.scope) == ("laptop CLI", "write")
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    event = AuditEvent.objects.get(verb="api_token.created")
    assert event.ip == "203.0.113.5"

    # A reload shows the list without the token and creates nothing.
    again = client.get(reverse("tokens:list")).content.decode()
    assert plaintext not in again
    assert "laptop CLI" in again
    assert ApiToken.objects.filter(user=user).count() == 1


def test_a_token_without_expiry_says_never(client, user):
    client.force_login(user)

    client.post(reverse("tokens:create"), {"name": "forever", "scope": "read"})

    html = client.get(reverse("tokens:list")).content.decode()
    assert ApiToken.objects.get(name="forever").expires_at is None
    assert "Never" in html and "Read only" in html


def test_bad_input_is_explained_next_to_the_field(client, user):
    client.force_login(user)

    response = client.post(
        reverse("tokens:create"), {"name": "  ", "scope": "root", "expires_in_days": "0"}
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["name"] == ["Give the token a name, so you can recognise it later."]
    assert form.errors["scope"] == ["Choose a scope."]
    assert form.errors["expires_in_days"] == [
        "Enter at least 1 day, or leave it empty for no expiry."
    ]
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert "Give the token a name" in html
    assert not response.context["plaintext"]
    assert ApiToken.objects.count() == 0


def test_expiry_must_be_a_whole_number_of_days(client, user):
    client.force_login(user)

    response = client.post(
        reverse("tokens:create"), {"name": "x", "scope": "read", "expires_in_days": "soon"}
    )

    assert response.context["form"].errors["expires_in_days"] == [
        "Enter a whole number of days, or leave it empty."
    ]
    assert "autofocus" in str(response.context["form"]["expires_in_days"])


def test_create_page_on_get_goes_back_to_the_list(client, user):
    client.force_login(user)

    response = client.get(reverse("tokens:create"))

    assert response.status_code == 302
    assert response["Location"] == reverse("tokens:list")


def test_list_shows_scope_dates_last_use_and_state(client, user, make_token):
    used, _ = make_token(user, name="used one", scope="read")
    ApiToken.objects.filter(pk=used.pk).update(
        last_used_at=timezone.now(), last_used_ip="198.51.100.23"
    )
    expired, _ = make_token(user, name="old one", expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    make_token(UserFactory(), name="not mine")
    client.force_login(user)

    html = client.get(reverse("tokens:list")).content.decode()

    assert "used one" in html and "old one" in html
    assert "not mine" not in html
    assert "from 198.51.100.23" in html
    assert "Never used" in html
    assert "badge-active" in html and "badge-expired" in html
    assert used.token_hash not in html


def test_revoking_a_token(client, user, make_token):
    token, _ = make_token(user, name="leaked")
    client.force_login(user)

    response = client.post(reverse("tokens:revoke", args=[token.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("tokens:list")
    html = response.content.decode()
    assert "Token “leaked” is revoked" in html
    assert "badge-revoked" in html
    assert reverse("tokens:revoke", args=[token.pk]) not in html  # no second button
    token.refresh_from_db()
    assert token.state == "revoked"
    assert AuditEvent.objects.filter(verb="api_token.revoked", actor=user).count() == 1


def test_revoke_asks_for_confirmation_first(client, user, make_token):
    make_token(user, name="careful")
    client.force_login(user)

    html = client.get(reverse("tokens:list")).content.decode()

    assert 'data-confirm="Revoke “careful”?' in html


def test_someone_elses_token_cannot_be_revoked(client, user, make_token):
    theirs, _ = make_token(UserFactory(), name="theirs")
    client.force_login(user)

    response = client.post(reverse("tokens:revoke", args=[theirs.pk]))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoke_needs_post(client, user, make_token):
    token, _ = make_token(user)
    client.force_login(user)

    assert client.get(reverse("tokens:revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_long_lists_are_paginated(client, user, make_token):
    for n in range(27):
        make_token(user, name=f"token {n:02}")
    client.force_login(user)

    first = client.get(reverse("tokens:list")).content.decode()
    second = client.get(reverse("tokens:list") + "?page=2").content.decode()

    assert "token 26" in first and "token 00" not in first
    assert "Page 1 of 2" in first and "?page=2" in first
    assert "token 00" in second and "token 26" not in second
