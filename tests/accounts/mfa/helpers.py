"""Two-factor helpers for tests: RFC 6238 codes computed here, independently of
allauth, and the real pages to turn TOTP on and to sign in with it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time
from typing import Any

from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

PERIOD = 30


def totp_code(secret: str, *, at: float | None = None, digits: int = 6) -> str:
    """The RFC 6238 code (HMAC-SHA1, 30-second steps) for `secret` at time `at`."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // PERIOD)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return f"{value:0{digits}d}"


def fresh_period(margin: float = 3.0) -> None:
    """Wait, if need be, until at least `margin` seconds of this 30-second step remain,
    so that a code computed now is still the current one when the server checks it."""
    left = PERIOD - time.time() % PERIOD
    if left < margin:
        time.sleep(left + 0.05)


def secret_on_page(html: str) -> str:
    match = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]+)<', html)
    assert match, "the set-up page shows no authenticator key"
    return match.group(1)


def sign_in_with_password(client: Client, email: str, password: str = PASSWORD) -> Any:
    response = client.post(reverse("account_login"), {"login": email, "password": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def reauthenticate(client: Client, password: str = PASSWORD) -> Any:
    """Confirm the password again, as allauth asks before any security change."""
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def activate_totp(client: Client) -> str:
    """Turn on TOTP through the real pages (the client must be signed in through the
    form). Returns the secret the page showed."""
    reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200, page
    secret = secret_on_page(page.content.decode())
    fresh_period()
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret


def sign_in_with_totp(client: Client, email: str, secret: str) -> Any:
    """Password, then the two-factor step with the current code. Returns the last response."""
    first = sign_in_with_password(client, email)
    assert first["Location"] == reverse("mfa_authenticate"), first["Location"]
    fresh_period()
    return client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})


def user_with_totp(client: Client, user: Any) -> str:
    """`user` signs in with a password, turns on TOTP, and signs out again."""
    sign_in_with_password(client, user.email)
    secret = activate_totp(client)
    client.post(reverse("account_logout"))
    return secret


def give_totp(user: Any) -> str:
    """Turn on TOTP for `user` directly (for tests about something else). Returns the secret."""
    from allauth.core import context
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    secret = generate_totp_secret()
    with context.request_context(request):
        TOTP.activate(user, secret)
    return secret
