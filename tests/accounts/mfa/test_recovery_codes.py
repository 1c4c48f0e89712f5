"""Recovery codes: made with the first authenticator, shown once, downloadable, single use."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from pipetower.accounts.models import User
from tests.accounts.mfa.helpers import (
    activate_totp,
    fresh_period,
    reauthenticate,
    sign_in_with_password,
    sign_in_with_totp,
    totp_code,
)

pytestmark = pytest.mark.django_db


def _codes_on(html: str) -> list[str]:
    block = re.search(r'<pre class="recovery-codes" id="recovery_codes">(.*?)</pre>', html, re.S)
    assert block, "the page shows no recovery codes"
    return block.group(1).split()


def test_codes_are_shown_once_right_after_turning_on_totp_with_a_download(
    client: Client, user: User
) -> None:
    sign_in_with_password(client, user.email)
    reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    secret = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]+)<', page.content.decode())
    assert secret
    fresh_period()
    activated = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret.group(1))})
    assert activated["Location"] == reverse("mfa_view_recovery_codes")

    first = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    codes = _codes_on(first)
    assert len(codes) == 10
    assert all(re.fullmatch(r"\d{8}", code) for code in codes)
    assert "This is the only time Pipetower shows them" in first
    download = re.search(
        r'download="pipetower-recovery-codes.txt" href="data:text/plain;charset=utf-8,([^"]*)"',
        first,
    )
    assert download, "no download link"
    assert unquote(download.group(1)).split() == codes

    second = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert 'id="recovery_codes"' not in second
    assert not any(code in second for code in codes)
    assert "10 of 10 codes unused" in second
    assert client.get(reverse("mfa_download_recovery_codes")).status_code == 403


def _fresh_codes(client: Client, user: User) -> tuple[str, list[str]]:
    sign_in_with_password(client, user.email)
    secret = activate_totp(client)
    codes = _codes_on(client.get(reverse("mfa_view_recovery_codes")).content.decode())
    client.post(reverse("account_logout"))
    return secret, codes


def test_a_recovery_code_signs_in_once_and_is_refused_the_second_time(
    client: Client, user: User
) -> None:
    _, codes = _fresh_codes(client, user)

    sign_in_with_password(client, user.email)
    used = client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert used.status_code == 302
    assert client.session.get("_auth_user_id") == str(user.pk)
    client.post(reverse("account_logout"))

    sign_in_with_password(client, user.email)
    again = client.post(reverse("mfa_authenticate"), {"code": codes[0]})

    assert again.status_code == 200
    assert "That code is not right" in again.content.decode()
    assert client.session.get("_auth_user_id") is None
    rc = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    assert len(rc.wrap().get_unused_codes()) == 9


def test_making_new_codes_shows_them_once_and_the_old_ones_stop_working(
    client: Client, user: User
) -> None:
    secret, old_codes = _fresh_codes(client, user)
    sign_in_with_totp(client, user.email, secret)
    reauthenticate(client)

    confirm = client.get(reverse("mfa_generate_recovery_codes"))
    assert "Your 10 unused codes stop working" in confirm.content.decode()
    made = client.post(reverse("mfa_generate_recovery_codes"))
    assert made["Location"] == reverse("mfa_view_recovery_codes")
    new_codes = _codes_on(client.get(reverse("mfa_view_recovery_codes")).content.decode())
    client.post(reverse("account_logout"))

    assert set(new_codes).isdisjoint(old_codes)
    sign_in_with_password(client, user.email)
    refused = client.post(reverse("mfa_authenticate"), {"code": old_codes[1]})
    assert refused.status_code == 200
    accepted = client.post(reverse("mfa_authenticate"), {"code": new_codes[1]})
    assert accepted.status_code == 302


def test_the_two_factor_page_shows_what_is_on(client: Client, user: User) -> None:
    sign_in_with_password(client, user.email)
    off = client.get(reverse("mfa_index")).content.decode()
    assert "Set up an authenticator app" in off
    assert "Add a security key" in off

    activate_totp(client)
    on = client.get(reverse("mfa_index")).content.decode()

    assert "Turn off the authenticator app" in on
    assert "10 of 10 codes unused" in on
    assert "Make new recovery codes" in on
