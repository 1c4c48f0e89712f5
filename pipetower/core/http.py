"""The client's address, believed only as far as the operator said to believe it.

By default Pipetower uses the address of the direct peer (REMOTE_ADDR) and
ignores X-Forwarded-For: anyone can send that header, so believing it would let
a caller choose the address shown in sign-in logs and counted by rate limits.

Behind a reverse proxy or CDN the operator names the proxies
(`PIPETOWER_TRUSTED_PROXIES`, comma-separated addresses or CIDR networks).
Only when the direct peer is one of them is a forwarded address believed:

- with `PIPETOWER_CLIENT_IP_HEADER` set (for example `CF-Connecting-IP`), the
  address in that header;
- otherwise the X-Forwarded-For chain, read from the right: every hop that is
  itself a trusted proxy is skipped, and the right-most hop that is not is the
  client (hops further left were written by the client and prove nothing).

A header that does not parse falls back to the direct peer.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A forwarded-for chain longer than this is not something a real deployment
# produces; it is read as malformed rather than walked.
MAX_FORWARDED_HOPS = 30


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as a string, or None when there is no usable address."""
    if request is None:
        return None
    peer = parse_ip(str(request.META.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    proxies = trusted_proxies()
    if not proxies or not _is_trusted(peer, proxies):
        return str(peer)

    header = str(getattr(settings, "CLIENT_IP_HEADER", "") or "")
    if header:
        forwarded = parse_ip(str(request.META.get(meta_key(header), "")))
        return str(forwarded or peer)

    chain = str(request.META.get("HTTP_X_FORWARDED_FOR", "") or "")
    if not chain.strip():
        return str(peer)
    hops = [hop.strip() for hop in chain.split(",")]
    if len(hops) > MAX_FORWARDED_HOPS:
        return str(peer)
    addresses: list[IPAddress] = []
    for hop in hops:
        address = parse_hop(hop)
        if address is None:
            return str(peer)  # one malformed hop spoils the chain
        addresses.append(address)
    for address in reversed(addresses):
        if not _is_trusted(address, proxies):
            return str(address)
    # Every hop is a trusted proxy: the left-most is the furthest one we know of.
    return str(addresses[0])


def meta_key(header: str) -> str:
    """`CF-Connecting-IP` -> `HTTP_CF_CONNECTING_IP`, the key Django stores it under."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


def parse_ip(value: str) -> IPAddress | None:
    """One bare address, IPv4-mapped IPv6 turned into IPv4 and any zone id dropped."""
    value = value.strip()
    if not value or len(value) > 64:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(value.split("%", 1)[0])
    return address


def parse_hop(value: str) -> IPAddress | None:
    """An X-Forwarded-For entry: an address, `1.2.3.4:port`, `[v6]` or `[v6]:port`."""
    value = value.strip()
    if value.startswith("["):
        inner, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return parse_ip(inner)
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            return None
        address = parse_ip(host)
        return address if isinstance(address, ipaddress.IPv4Address) else None
    return parse_ip(value)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses and CIDR networks; raises ValueError naming the entry that is not one."""
    networks: list[IPNetwork] = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address or CIDR network (such as 10.0.0.0/8)."
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[IPNetwork, ...]:
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(values)


def _is_trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)
