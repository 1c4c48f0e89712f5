"""Authenticator apps (TOTP): set-up, sign-in, bad codes, and the secret at rest."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection
from django.test import Client
from django.urls import reverse

from pipetower.accounts.mfa import MFAAdapter
from pipetower.accounts.models import User
from tests.accounts.mfa.helpers import (
    PERIOD,
    activate_totp,
    fresh_period,
    reauthenticate,
    secret_on_page,
    sign_in_with_password,
    sign_in_with_totp,
    totp_code,
    user_with_totp,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _signed_in_user_id(client: Client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id else None


def test_the_set_up_page_shows_a_qr_code_and_the_key_to_type_in(client: Client, user: User) -> None:
    sign_in_with_password(client, user.email)
    reauthenticate(client)

    page = client.get(reverse("mfa_activate_totp"))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in html
    assert 'alt="QR code for your authenticator app"' in html
    secret = secret_on_page(html)
    assert len(secret) == 32
    assert 'autocomplete="one-time-code"' in html


def test_turning_on_totp_then_signing_in_asks_for_a_code_after_the_password(
    client: Client, user: User
) -> None:
    secret = user_with_totp(client, user)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()

    first = sign_in_with_password(client, user.email)
    assert first["Location"] == reverse("mfa_authenticate")
    assert _signed_in_user_id(client) is None, "the password alone must not sign in"
    page = client.get(reverse("mfa_authenticate"))
    assert "Enter the 6-digit code" in page.content.decode()

    fresh_period()
    done = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    assert done.status_code == 302
    assert _signed_in_user_id(client) == user.pk


def test_a_wrong_code_is_refused_with_a_message_that_says_what_to_do(
    client: Client, user: User
) -> None:
    secret = user_with_totp(client, user)
    sign_in_with_password(client, user.email)
    right = totp_code(secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    response = client.post(reverse("mfa_authenticate"), {"code": wrong})

    html = response.content.decode()
    assert response.status_code == 200
    assert "That code is not right" in html
    assert 'aria-invalid="true"' in html
    assert _signed_in_user_id(client) is None


def test_a_code_that_was_already_used_is_refused(client: Client, user: User) -> None:
    secret = user_with_totp(client, user)
    fresh_period(margin=6)
    code = totp_code(secret)
    sign_in_with_password(client, user.email)
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    client.post(reverse("account_logout"))

    sign_in_with_password(client, user.email)
    replay = client.post(reverse("mfa_authenticate"), {"code": code})

    assert replay.status_code == 200
    assert "each code works once" in replay.content.decode()
    assert _signed_in_user_id(client) is None


def test_an_expired_code_is_refused(client: Client, user: User) -> None:
    secret = user_with_totp(client, user)
    sign_in_with_password(client, user.email)
    fresh_period()

    expired = client.post(
        reverse("mfa_authenticate"), {"code": totp_code(secret, at=time.time() - 2 * PERIOD)}
    )

    assert expired.status_code == 200
    assert "That code is not right" in expired.content.decode()
    assert _signed_in_user_id(client) is None


def test_a_wrong_code_while_setting_up_keeps_two_factor_off(client: Client, user: User) -> None:
    sign_in_with_password(client, user.email)
    reauthenticate(client)
    secret = secret_on_page(client.get(reverse("mfa_activate_totp")).content.decode())
    wrong = f"{(int(totp_code(secret)) + 7) % 1_000_000:06d}"

    response = client.post(reverse("mfa_activate_totp"), {"code": wrong})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()


def test_the_totp_secret_and_recovery_seed_are_never_stored_in_the_clear(
    client: Client, user: User
) -> None:
    sign_in_with_password(client, user.email)
    secret = activate_totp(client)

    with connection.cursor() as cursor:
        cursor.execute("SELECT type, data FROM mfa_authenticator WHERE user_id = %s", [user.pk])
        rows = cursor.fetchall()
        cursor.execute("SELECT session_data FROM django_session")
        sessions = " ".join(row[0] for row in cursor.fetchall())

    stored = {kind: str(data) for kind, data in rows}
    assert set(stored) == {"totp", "recovery_codes"}
    assert secret not in stored["totp"]
    assert secret.lower() not in stored["totp"].lower()
    assert f'"mfa1:{user.pk}:pt1:' in stored["totp"]
    assert f'"mfa1:{user.pk}:pt1:' in stored["recovery_codes"]
    # The pending secret lived in the session only until it was confirmed.
    assert secret not in sessions
    # Pipetower itself reads it back.
    totp = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    assert MFAAdapter().decrypt(totp.data["secret"]) == secret


def test_a_secret_copied_into_another_account_does_not_sign_it_in(
    client: Client, user: User
) -> None:
    """Someone who can write the database but has no master key copies their own
    authenticator into a victim's row: their app's codes must not open the victim's account."""
    attacker_secret = user_with_totp(client, user)
    victim = UserFactory(email="victim@example.com")
    victim_client = Client()
    user_with_totp(victim_client, victim)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mfa_authenticator SET data = "
            "(SELECT data FROM mfa_authenticator WHERE user_id = %s AND type = 'totp') "
            "WHERE user_id = %s AND type = 'totp'",
            [user.pk, victim.pk],
        )

    attempt = Client(raise_request_exception=False)
    sign_in_with_password(attempt, victim.email)
    fresh_period()
    response = attempt.post(reverse("mfa_authenticate"), {"code": totp_code(attacker_secret)})

    # Refused loudly, like every decryption failure: the error log says it was copied.
    assert response.status_code == 500
    assert _signed_in_user_id(attempt) is None


def test_turning_on_totp_asks_for_the_password_again_first(client: Client, user: User) -> None:
    sign_in_with_password(client, user.email)

    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    wrong = client.post(reverse("account_reauthenticate"), {"password": "not my password"})
    assert wrong.status_code == 200
    assert client.get(reverse("mfa_activate_totp")).status_code == 302

    reauthenticate(client)
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_turning_off_totp_asks_for_a_code_first_when_the_sign_in_is_not_recent(
    client: Client, user: User
) -> None:
    secret = user_with_totp(client, user)
    sign_in_with_totp(client, user.email, secret)
    reauthenticate(client)
    session = client.session  # as if that was an hour ago
    session["account_authentication_methods"] = [
        {**record, "at": record["at"] - 3600}
        for record in session["account_authentication_methods"]
    ]
    session.save()

    response = client.post(reverse("mfa_deactivate_totp"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def test_turning_off_totp_removes_it_and_its_recovery_codes(
    client: Client, user: User, committed
) -> None:
    secret = user_with_totp(client, user)
    sign_in_with_totp(client, user.email, secret)
    replayed = client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret)})
    assert replayed.status_code == 200, "the code just used to sign in cannot confirm again"
    reauthenticate(client)

    with committed():
        response = client.post(reverse("mfa_deactivate_totp"))

    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=user).exists()
