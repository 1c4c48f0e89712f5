"""An API token's first use from an address each day goes into its owner's sign-in log."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from pipetower.accounts.models import SignInEvent
from pipetower.api.services import api_token_create
from tests.accounts.security.conftest import IP_DE, IP_GB, browser


def _call(token: str, ip: str, user_agent: str = "curl/8.5.0"):  # type: ignore[no-untyped-def]
    return browser(ip, user_agent).get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_first_use_per_address_and_day_is_logged_once(user):
    token, raw = api_token_create(user=user, name="deploy", scope="read")

    assert _call(raw, IP_DE).status_code == 200
    assert _call(raw, IP_DE).status_code == 200
    assert _call(raw, IP_GB).status_code == 200

    events = list(SignInEvent.objects.filter(user=user).order_by("id"))
    assert [(e.method, e.outcome, e.ip, e.country_code) for e in events] == [
        ("api_token", "used", IP_DE, "DE"),
        ("api_token", "used", IP_GB, "GB"),
    ]
    assert events[0].detail == f"deploy (ptk_{token.prefix}…)"
    assert events[0].browser == "curl"


def test_the_next_day_the_first_use_is_logged_again(user):
    _token, raw = api_token_create(user=user, name="deploy", scope="read")
    _call(raw, IP_DE)
    SignInEvent.objects.update(created_at=timezone.now() - timedelta(days=1))
    from django.core.cache import cache

    cache.clear()  # as after the day's cache entry expired
    _call(raw, IP_DE)
    assert SignInEvent.objects.filter(user=user, method="api_token").count() == 2


def test_a_cleared_cache_does_not_log_the_same_day_twice(user):
    _token, raw = api_token_create(user=user, name="deploy", scope="read")
    _call(raw, IP_DE)
    from django.core.cache import cache

    cache.clear()
    _call(raw, IP_DE)
    assert SignInEvent.objects.filter(user=user, method="api_token").count() == 1


def test_token_use_never_sends_a_sign_in_alert(user, mailoutbox, committed):
    _token, raw = api_token_create(user=user, name="deploy", scope="read")
    with committed():
        _call(raw, IP_DE)
        _call(raw, IP_GB, "python-requests/2.32")
    assert not [m for m in mailoutbox if "New sign-in" in m.subject]


def test_invalid_tokens_are_not_logged(user):
    response = _call("ptk_000000000000_" + "a" * 43, IP_DE)
    assert response.status_code == 401
    assert not SignInEvent.objects.exists()
