"""Locating addresses offline: country from iptocc by default, city from a configured MMDB."""

from __future__ import annotations

import logging
import os

import pytest

from pipetower.accounts import geo
from tests.accounts.security.conftest import IP_DE, IP_GB, IP_US, write_city_mmdb


def test_without_a_database_the_country_comes_from_registry_data(settings):
    settings.GEOIP_PATH = ""
    location = geo.locate(IP_US)
    assert (location.country_code, location.country_name, location.city) == (
        "US",
        "United States",
        "",
    )
    assert location.flag == "🇺🇸"
    assert location.label == "United States"


def test_public_ipv6_addresses_are_located_too(settings):
    settings.GEOIP_PATH = ""
    assert geo.locate("2001:4860:4860::8888").country_code == "US"


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",  # private
        "192.168.0.1",
        "127.0.0.1",  # loopback
        "::1",
        "fe80::1",  # link-local
        "fd00::1",  # unique local IPv6
        "2001:db8::1",  # documentation
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "",
        None,
        "not an address",
        "1" * 500,
    ],
)
def test_private_reserved_and_unknown_addresses_are_an_unknown_location(settings, ip, city_db):
    for path in ("", str(city_db)):
        settings.GEOIP_PATH = path
        location = geo.locate(ip)
        assert location == geo.UNKNOWN
        assert location.label == "Unknown location"
        assert location.flag == ""


def test_a_city_database_gives_country_region_and_city(city_db):
    location = geo.locate(IP_DE)
    assert location == geo.Location(
        country_code="DE", country_name="Germany", region="Lower Saxony", city="Hanover"
    )
    assert location.label == "Hanover, Germany"
    assert location.flag == "🇩🇪"
    assert geo.locate("2a00:1450:4001:80b::200e").city == "Dublin"


def test_an_address_missing_from_the_database_is_unknown(city_db):
    assert geo.locate(IP_US) == geo.UNKNOWN


def test_the_database_is_read_again_when_the_file_changes(city_db):
    assert geo.locate(IP_GB).city == "London"
    write_city_mmdb(
        city_db,
        {"81.2.69.0/24": {"country": "GB", "country_name": "United Kingdom", "city": "Leeds"}},
    )
    stat = os.stat(city_db)
    os.utime(city_db, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert geo.locate(IP_GB).city == "Leeds"


def test_a_missing_or_broken_database_falls_back_to_countries_with_one_warning(
    settings, tmp_path, caplog
):
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"this is not a MaxMind database")
    for path in (str(broken), str(tmp_path / "missing.mmdb")):
        settings.GEOIP_PATH = path
        with caplog.at_level(logging.WARNING, logger="pipetower.accounts.geo"):
            caplog.clear()
            first = geo.locate(IP_DE)
            second = geo.locate(IP_DE)
        assert first == second == geo.Location(country_code="DE", country_name="Germany")
        assert len(caplog.records) == 1
        assert "Falling back to country-only lookups" in caplog.records[0].getMessage()


def test_attribution_follows_the_database_licence(settings, tmp_path, city_db):
    assert geo.attribution() == geo.DBIP_ATTRIBUTION
    assert geo.attribution().text == "IP geolocation by DB-IP"
    settings.GEOIP_PATH = str(
        write_city_mmdb(
            tmp_path / "geolite.mmdb",
            {"81.2.69.0/24": {"country": "GB", "country_name": "United Kingdom"}},
            database_type="GeoLite2-City",
        )
    )
    assert geo.attribution() == geo.MAXMIND_ATTRIBUTION
    settings.GEOIP_PATH = ""
    assert geo.attribution() is None


@pytest.mark.parametrize("code", ["", "X", "XYZ", "1A", "ÄÖ"])
def test_no_flag_for_anything_but_two_letters(code):
    assert geo.country_flag(code) == ""
