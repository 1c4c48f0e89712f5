"""Which addresses Pipetower may connect to on a person's behalf.

A team admin names the hosts Pipetower connects to (servers today, outgoing
webhooks later). Left unchecked, that turns Pipetower into a scanner of its own
network: the cloud metadata service at 169.254.169.254, a database on
localhost:5432, machines in the private range behind the firewall. The operator
forbids such ranges with `PIPETOWER_FORBIDDEN_NETWORKS`, a comma-separated list
of the names `loopback`, `link-local` and `private`, and of CIDR networks
(`10.20.0.0/16`), or `none`:

- production mode: `loopback,link-local,private` unless set;
- otherwise: `link-local` unless set (the test fleet and a laptop's servers are
  on loopback or in the private range).

Every caller asks the same two functions: `host_refusal(host)` when a host is
saved (literal addresses and `localhost` names, without any DNS lookup), and
`resolve_allowed(host, port)` right before connecting, which resolves the name
and refuses if any address it resolves to is forbidden; the caller then
connects to the returned address, so a DNS answer cannot change between the
check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from pipetower.core.errors import ServiceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The named ranges. Unspecified addresses (0.0.0.0, ::) reach the local machine,
# so they count as loopback.
RANGES: dict[str, tuple[str, ...]] = {
    "loopback": ("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"),
    "link-local": ("169.254.0.0/16", "fe80::/10"),
    "private": (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT, often the provider's own network
        "fc00::/7",
    ),
}
PRODUCTION_DEFAULT = "loopback,link-local,private"
DEVELOPMENT_DEFAULT = "link-local"


class AddressForbidden(ServiceError):
    """The operator does not let Pipetower connect to this address."""

    code = "address_forbidden"
    status = 400


@dataclass(frozen=True)
class Rule:
    name: str  # "loopback", "link-local", "private" or the CIDR as written
    network: IPNetwork


def parse_rules(value: str) -> tuple[Rule, ...]:
    """`PIPETOWER_FORBIDDEN_NETWORKS` → rules. Raises ValueError naming a bad entry."""
    rules: list[Rule] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry or entry == "none":
            continue
        if entry in RANGES:
            rules += [Rule(entry, ipaddress.ip_network(cidr)) for cidr in RANGES[entry]]
            continue
        try:
            rules.append(Rule(entry, ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ValueError(
                f"PIPETOWER_FORBIDDEN_NETWORKS: {raw.strip()!r} is neither loopback, link-local, "
                "private, none nor a network such as 10.20.0.0/16."
            ) from None
    return tuple(rules)


def _rules() -> tuple[Rule, ...]:
    return parse_rules(getattr(settings, "FORBIDDEN_NETWORKS", DEVELOPMENT_DEFAULT))


def _plain(address: IPAddress) -> IPAddress:
    """IPv4 addresses written as IPv6 (::ffff:127.0.0.1, 64:ff9b::… is left alone) as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_refusal(
    address: str | IPAddress,
    *,
    host: str | None = None,
    rules: tuple[Rule, ...] | None = None,
    setting: str = "PIPETOWER_FORBIDDEN_NETWORKS",
) -> str | None:
    """Why Pipetower may not connect to `address` (which `host` resolved to), or None.

    `rules` replaces the installation's list (outgoing notifications have their
    own, see pipetower/notifications/guard.py); `setting` is named in the reason."""
    ip = _plain(ipaddress.ip_address(address) if isinstance(address, str) else address)
    for rule in _rules() if rules is None else rules:
        if ip.version == rule.network.version and ip in rule.network:
            what = f"{rule.name} addresses" if rule.name in RANGES else f"the network {rule.name}"
            where = f"{host} ({ip})" if host and host != str(ip) else str(ip)
            return (
                f"Pipetower does not connect to {where}: {what} are forbidden on this "
                f"installation ({setting})."
            )
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def host_refusal(
    host: str,
    *,
    rules: tuple[Rule, ...] | None = None,
    setting: str = "PIPETOWER_FORBIDDEN_NETWORKS",
) -> str | None:
    """Why a host may not be saved, without looking anything up: a literal address
    in a forbidden range, or a `localhost` name while loopback is forbidden."""
    literal = _literal(host)
    if literal is not None:
        return address_refusal(literal, rules=rules, setting=setting)
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return address_refusal("127.0.0.1", host=host, rules=rules, setting=setting)
    return None


def check_host(host: str, *, field: str = "host") -> None:
    """Raise `AddressForbidden` (naming `field`) when `host_refusal` has a reason."""
    refusal = host_refusal(host)
    if refusal:
        raise AddressForbidden(refusal, field=field)


def _first_refusal(host: str, addresses: Iterable[str]) -> str | None:
    for address in addresses:
        refusal = address_refusal(address, host=host)
        if refusal:
            return refusal
    return None


async def resolve_allowed(host: str, port: int) -> str:
    """The address to connect to for `host`, after DNS, once every address the
    name resolves to is allowed. Raises `AddressForbidden`; `socket.gaierror`
    when the name does not resolve."""
    literal = _literal(host)
    if literal is not None:
        refusal = address_refusal(literal)
        if refusal:
            raise AddressForbidden(refusal, field="host")
        return host
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    refusal = _first_refusal(host, addresses)
    if refusal:
        raise AddressForbidden(refusal, field="host")
    return addresses[0]
