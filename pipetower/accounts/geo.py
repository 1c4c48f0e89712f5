"""Where an IP address is, from data on this machine: no request leaves Pipetower.

Two sources, chosen by configuration:

- `PIPETOWER_GEOIP_PATH` names a City (or Country) MMDB file, such as DB-IP's
  "IP to City Lite" or MaxMind's GeoLite2 City: country, region and city. The
  file is re-opened when it changes on disk (its modification time or size),
  so a monthly update needs no restart.
- Otherwise the `iptocc` package, which ships registry allocation data:
  country only.

Private, loopback, reserved and unknown addresses, and anything that is not an
address at all, give the unknown location. Nothing here raises for bad input.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import iptocc
from django.conf import settings

from pipetower.accounts.countries import COUNTRY_NAMES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Location:
    country_code: str = ""
    country_name: str = ""
    region: str = ""
    city: str = ""

    @property
    def known(self) -> bool:
        return bool(self.country_code)

    @property
    def flag(self) -> str:
        return country_flag(self.country_code)

    @property
    def label(self) -> str:
        """ "Berlin, Germany", "Germany", or "Unknown location"."""
        if not self.known:
            return "Unknown location"
        country = self.country_name or self.country_code
        return f"{self.city}, {country}" if self.city else country


UNKNOWN = Location()


@dataclass(frozen=True)
class Attribution:
    text: str
    url: str


# What each database's licence asks to be shown where its data is used.
DBIP_ATTRIBUTION = Attribution("IP geolocation by DB-IP", "https://db-ip.com")
MAXMIND_ATTRIBUTION = Attribution(
    "This product includes GeoLite2 data created by MaxMind", "https://www.maxmind.com"
)


def country_flag(code: str) -> str:
    """The flag emoji for a two-letter country code ("DE" -> 🇩🇪); "" for anything else."""
    code = (code or "").upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code)


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get((code or "").upper(), "")


def locate(ip: str | None) -> Location:
    """The location of `ip`, or UNKNOWN."""
    address = _public_address(ip)
    if address is None:
        return UNKNOWN
    reader = _database.reader()
    if reader is not None:
        return _from_database(reader, address)
    return _from_iptocc(address)


def attribution() -> Attribution | None:
    """The credit the configured database's licence asks for, if any."""
    reader = _database.reader()
    if reader is None:
        return None
    database_type = str(reader.metadata().database_type or "").lower()
    if "dbip" in database_type or "db-ip" in database_type:
        return DBIP_ATTRIBUTION
    if "geolite" in database_type:
        return MAXMIND_ATTRIBUTION
    return None


def _public_address(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not ip or len(ip) > 64:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address if address.is_global else None


def _from_iptocc(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Location:
    try:
        code = iptocc.country_code(str(address))
    except Exception:  # the lookup is best effort and must never break a sign-in
        logger.warning("Country lookup failed for %s", address, exc_info=True)
        return UNKNOWN
    code = (code or "").upper()
    if not country_flag(code):
        return UNKNOWN
    return Location(country_code=code, country_name=country_name(code))


def _from_database(reader: Any, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Location:
    import geoip2.errors

    database_type = str(reader.metadata().database_type or "")
    try:
        if "City" in database_type:
            response = reader.city(str(address))
            region = response.subdivisions.most_specific.name or ""
            city = response.city.name or ""
        else:
            response = reader.country(str(address))
            region = city = ""
    except (geoip2.errors.AddressNotFoundError, ValueError):
        return UNKNOWN
    except Exception:  # a damaged file must not break a sign-in
        logger.warning("Geolocation database lookup failed for %s", address, exc_info=True)
        return UNKNOWN
    code = (response.country.iso_code or "").upper()
    if not country_flag(code):
        return UNKNOWN
    return Location(
        country_code=code,
        country_name=country_name(code) or response.country.name or "",
        region=region[:100],
        city=city[:100],
    )


class _Database:
    """The configured MMDB reader, re-opened when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._reader: Any = None
        self._failed_key: tuple[str, int, int] | None = None

    def reader(self) -> Any:
        path = str(getattr(settings, "GEOIP_PATH", "") or "")
        if not path:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            self._warn_once((path, -1, -1), "The geolocation database %s cannot be read.", path)
            return None
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key == self._key:
            return self._reader
        if key == self._failed_key:
            return None
        with self._lock:
            if key != self._key:
                try:
                    import geoip2.database

                    reader = geoip2.database.Reader(path)
                except Exception:
                    self._warn_once(key, "%s is not a readable MMDB geolocation database.", path)
                    return None
                self._reader, self._key = reader, key
        return self._reader

    def _warn_once(self, key: tuple[str, int, int], message: str, path: str) -> None:
        if self._failed_key != key:
            self._failed_key = key
            logger.warning(message + " Falling back to country-only lookups.", path)


_database = _Database()
