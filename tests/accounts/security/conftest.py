"""Fixtures for sign-in security tests: browsers at known addresses, a City MMDB, Google."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.test import Client

from tests.factories import PASSWORD
from tests.oidc_provider import OIDCProvider

# Public addresses whose country the registries agree on (iptocc's data).
IP_GB = "81.2.69.142"
IP_US = "8.8.8.8"
IP_DE = "193.99.144.80"
IP_JP = "133.242.0.1"

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def browser(ip: str = IP_GB, user_agent: str = FIREFOX_LINUX) -> Client:
    """A browser that connects from `ip` with this User-Agent."""
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent)


def password_sign_in(client: Client, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """Runs what was scheduled for after commit (alert emails, allauth emails)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- Google, played by a real OpenID Connect provider on loopback ---------------


@pytest.fixture
def oidc() -> Iterator[OIDCProvider]:
    provider = OIDCProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def google(oidc: OIDCProvider, settings: Any) -> OIDCProvider:
    """Google sign-in configured as an operator would, its endpoints pointing at `oidc`.

    The endpoints come from the provider's discovery document, fetched over HTTP.
    """
    discovery = requests.get(f"{oidc.issuer}/.well-known/openid-configuration", timeout=5).json()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            **settings.SOCIALACCOUNT_PROVIDERS["google"],
            "APPS": [{"client_id": oidc.client_id, "secret": oidc.client_secret}],
            "AUTHORIZE_URL": discovery["authorization_endpoint"],
            "ACCESS_TOKEN_URL": discovery["token_endpoint"],
            "JWKS_URL": discovery["jwks_uri"],
            "ID_TOKEN_ISSUER": discovery["issuer"],
        }
    }
    return oidc


def google_authorize(client: Client, **extra: Any) -> str:
    """Press "Sign in with Google" and let the provider consent: the callback URL it returns to."""
    start = client.post("/accounts/google/login/", **extra)
    assert start.status_code == 302, start.content.decode()[:500]
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302, consent.text
    return consent.headers["Location"]


def google_callback(client: Client, callback_url: str, **extra: Any) -> Any:
    parts = urlsplit(callback_url)
    assert parts.netloc == "testserver", callback_url
    return client.get(f"{parts.path}?{parts.query}", **extra)


def google_sign_in(client: Client, **extra: Any) -> Any:
    return google_callback(client, google_authorize(client, **extra), **extra)


# --- a City-shaped MMDB ----------------------------------------------------------


def write_city_mmdb(
    path: Path,
    networks: dict[str, dict[str, str]],
    database_type: str = "DBIP-City-Lite",
) -> Path:
    """Write a small MMDB shaped like DB-IP's / MaxMind's City databases.

    `networks` maps a CIDR to {"country": "DE", "country_name": ..., "region": ..., "city": ...}.
    """
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description="Pipetower test geolocation data",
    )
    for cidr, place in networks.items():
        record: dict[str, Any] = {
            "country": {"iso_code": place["country"], "names": {"en": place["country_name"]}},
            "continent": {"code": "EU", "names": {"en": "Europe"}},
        }
        if place.get("region"):
            record["subdivisions"] = [{"names": {"en": place["region"]}}]
        if place.get("city"):
            record["city"] = {"names": {"en": place["city"]}}
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture
def city_db(tmp_path: Path, settings: Any) -> Path:
    path = write_city_mmdb(
        tmp_path / "city.mmdb",
        {
            "193.99.144.0/24": {
                "country": "DE",
                "country_name": "Germany",
                "region": "Lower Saxony",
                "city": "Hanover",
            },
            "81.2.69.0/24": {
                "country": "GB",
                "country_name": "United Kingdom",
                "region": "England",
                "city": "London",
            },
            "2a00:1450::/32": {
                "country": "IE",
                "country_name": "Ireland",
                "region": "Leinster",
                "city": "Dublin",
            },
        },
    )
    settings.GEOIP_PATH = str(path)
    return path
