"""Where notification webhooks may be sent: the SSRF guard.

A team admin types the URL a notification is posted to. Left unchecked, that
makes Pipetower post to its own network (the metadata service, a database on
localhost, machines behind the firewall). So notification URLs are refused in
the loopback, private and link-local ranges, and in the networks of
`PIPETOWER_FORBIDDEN_NETWORKS`, unless the operator sets
`PIPETOWER_NOTIFY_ALLOW_PRIVATE=1` (then only `PIPETOWER_FORBIDDEN_NETWORKS`
applies, as for servers).

The check runs twice, with `pipetower.core.netguard`: when the rule is saved
(`url_refusal`, literal addresses and `localhost`, no DNS lookup), and right
before each delivery (`resolve`), where the name is resolved, every address
it resolves to is checked, and the connection goes to the address checked, so
a DNS answer that changes after saving cannot redirect a delivery.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from pipetower.core import netguard

URL_MAX = 2000


@dataclass(frozen=True)
class Target:
    scheme: str  # "http" or "https"
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def _rules() -> tuple[tuple[netguard.Rule, ...], str]:
    rules = netguard.parse_rules(settings.FORBIDDEN_NETWORKS)
    if settings.NOTIFY_ALLOW_PRIVATE:
        return rules, "PIPETOWER_FORBIDDEN_NETWORKS"
    return (
        rules + netguard.parse_rules(netguard.PRODUCTION_DEFAULT),
        "set PIPETOWER_NOTIFY_ALLOW_PRIVATE=1 to allow them",
    )


def parse(url: str) -> Target:
    """The parts of a webhook URL; ValueError with a readable reason when it is not one."""
    url = (url or "").strip()
    if not url:
        raise ValueError("Enter the URL to send notifications to.")
    if len(url) > URL_MAX:
        raise ValueError(f"The URL is too long (at most {URL_MAX} characters).")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError("The URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("This is not a valid URL: check the host and the port.") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("The URL must start with https:// (or http://).")
    if not parts.hostname:
        raise ValueError("The URL has no host name.")
    if parts.username or parts.password:
        raise ValueError(
            "Put no user name or password in the URL: receivers check the signature instead."
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def url_refusal(url: str) -> str | None:
    """Why a webhook URL may not be saved (malformed, or a forbidden address); None when it may."""
    try:
        target = parse(url)
    except ValueError as exc:
        return str(exc)
    rules, setting = _rules()
    return netguard.host_refusal(target.host, rules=rules, setting=setting)


class Forbidden(Exception):
    """The URL's host is, or resolves to, an address notifications may not reach."""


def resolve(target: Target) -> str:
    """The address to connect to for `target`, once every address its name resolves
    to is allowed. Raises `Forbidden`, or `OSError` when the name does not resolve."""
    rules, setting = _rules()
    if refusal := netguard.host_refusal(target.host, rules=rules, setting=setting):
        raise Forbidden(refusal)
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        refusal = netguard.address_refusal(address, host=target.host, rules=rules, setting=setting)
        if refusal:
            raise Forbidden(refusal)
    if not addresses:
        raise OSError(f"{target.host} has no address.")
    return addresses[0]
