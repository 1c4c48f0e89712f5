"""Rate limits and lockout: sign-in, sign-up, password reset, two-factor codes, API tokens.

Every limit answers 429 with Retry-After, and the page or JSON says what happened.
The limits tested are the ones configured in settings, not test doubles.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.accounts.models import User
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.core.ratelimit import FailureLimit, Rate
from tests.accounts.mfa.helpers import fresh_period, give_totp, sign_in_with_password, totp_code
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _fail_sign_in(client: Client, email: str, **extra: Any) -> Any:
    return client.post(LOGIN, {"login": email, "password": "wrong password 1"}, **extra)


def _retry_after(response: Any) -> int:
    assert response.has_header("Retry-After"), dict(response.headers)
    return int(response["Retry-After"])


def test_five_failed_sign_ins_lock_the_account_even_for_the_right_password(
    client: Client, user: User
) -> None:
    for _ in range(5):
        assert _fail_sign_in(client, user.email).status_code == 200

    locked = client.post(LOGIN, {"login": user.email, "password": PASSWORD})

    assert locked.status_code == 429
    assert 240 <= _retry_after(locked) <= 300
    assert "Too many failed login attempts" in locked.content.decode()
    assert client.session.get("_auth_user_id") is None


def test_the_lock_is_per_account_another_person_signs_in_from_the_same_address(
    client: Client, user: User
) -> None:
    other = UserFactory(email="grace@example.com")
    for _ in range(5):
        _fail_sign_in(client, user.email)

    response = client.post(LOGIN, {"login": other.email, "password": PASSWORD})

    assert response.status_code == 302


def test_failed_sign_ins_from_one_address_are_limited_across_accounts(
    client: Client, db: None
) -> None:
    for number in range(10):
        assert _fail_sign_in(client, f"nobody{number}@example.com").status_code == 200

    refused = _fail_sign_in(client, "someone-else@example.com")
    elsewhere = _fail_sign_in(client, "someone-else@example.com", REMOTE_ADDR="192.0.2.7")

    assert refused.status_code == 429
    assert 1 <= _retry_after(refused) <= 60
    assert elsewhere.status_code == 200


def test_too_many_sign_up_attempts_from_one_address_get_the_429_page(
    client: Client, db: None
) -> None:
    for _ in range(20):
        assert client.post("/accounts/signup/", {"email": "not an address"}).status_code != 429

    refused = client.post("/accounts/signup/", {"email": "not an address"})

    html = refused.content.decode()
    assert refused.status_code == 429
    assert 1 <= _retry_after(refused) <= 60
    assert "Too many attempts" in html
    assert "then try again" in html


def test_password_reset_requests_for_one_address_are_limited(client: Client, user: User) -> None:
    for _ in range(5):
        assert client.post("/accounts/password/reset/", {"email": user.email}).status_code == 302

    refused = client.post("/accounts/password/reset/", {"email": user.email})

    assert refused.status_code == 429
    assert 1 <= _retry_after(refused) <= 60
    assert "Too many attempts" in refused.content.decode()


def test_wrong_two_factor_codes_lock_the_two_factor_step_for_that_account(
    client: Client, user: User
) -> None:
    secret = give_totp(user)
    sign_in_with_password(client, user.email)
    right = totp_code(secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert client.post(reverse("mfa_authenticate"), {"code": wrong}).status_code == 200

    fresh_period()
    locked = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    assert locked.status_code == 429
    assert 240 <= _retry_after(locked) <= 300
    assert "Too many failed login attempts" in locked.content.decode()
    assert client.session.get("_auth_user_id") is None


def _api(client: Client, token: str, **extra: Any) -> Any:
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def test_failed_api_tokens_from_one_address_are_limited_with_retry_after(
    client: Client, user: User
) -> None:
    _, good = api_token_create(user=user, name="ci", scope=ApiToken.Scope.READ)
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for _ in range(10):
        assert _api(client, bad).status_code == 401

    refused = _api(client, good)
    elsewhere = _api(client, good, REMOTE_ADDR="192.0.2.8")

    assert refused.status_code == 429
    assert 1 <= _retry_after(refused) <= 60
    assert json.loads(refused.content)["error"]["code"] == "rate_limited"
    assert elsewhere.status_code == 200


def test_a_working_token_is_never_counted_as_a_failure(client: Client, user: User) -> None:
    _, good = api_token_create(user=user, name="ci", scope=ApiToken.Scope.READ)

    statuses = {_api(client, good).status_code for _ in range(15)}

    assert statuses == {200}


def test_the_429_page_says_how_long_to_wait(client: Client, db: None, settings: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "1/5m/ip"}
    client.post("/accounts/signup/", {"email": "x"})

    refused = client.post("/accounts/signup/", {"email": "x"})

    assert refused.status_code == 429
    assert 290 <= _retry_after(refused) <= 300
    assert "Wait about 5 minutes, then try again." in " ".join(refused.content.decode().split())


def test_a_rate_is_written_as_hits_per_window() -> None:
    assert Rate.parse("10/m") == Rate(10, 60)
    assert Rate.parse("5/5m") == Rate(5, 300)
    assert Rate.parse("100/2h") == Rate(100, 7200)
    with pytest.raises(ValueError, match="not a rate"):
        Rate.parse("ten a minute")


def test_a_failure_limit_frees_up_as_its_window_passes(
    rf: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = FailureLimit("test", "2/m")
    request = rf.get("/")
    clock = [1_000_000.0]
    monkeypatch.setattr("pipetower.core.ratelimit.time.time", lambda: clock[0])

    limit.hit(request)
    clock[0] += 10
    limit.hit(request)
    assert limit.wait(request) == 50

    clock[0] += 51
    assert limit.wait(request) == 0
