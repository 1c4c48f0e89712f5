"""Pipetower's SSH layer: how every connection to a customer's server is made.

The contract for the rest of Pipetower (the run engine builds on it):

- `connection_spec_for(server)` (sync, reads the database, decrypts) returns a
  `ConnectionSpec`: everything needed to connect, so the async code that
  follows needs no database access.
- `ssh_connect(spec)` (async) opens a verified, authenticated
  `asyncssh.SSHClientConnection`, or raises `SshError` with a `kind` and a
  message for people.

Rules it enforces:

- Host keys are pinned. A connection succeeds only when the host presents a
  pinned key. With no pin it refuses (`HostKeyUnknown`) unless the team trusts
  on first use; then it accepts the key and calls `on_first_use(key_line)` so
  the caller can pin it. A different key raises `HostKeyChanged` naming the old
  and the new SHA256 fingerprints.
- Nothing is read from the machine's own SSH setup (no ~/.ssh/config,
  known_hosts, default keys or agent): a connection uses only its spec.
- A customer's sshd keeps `MaxStartups 10:30:100` and drops handshakes beyond
  10 at a time, so at most `HANDSHAKES_PER_HOST` handshakes run at once per
  (host, port) in one event loop, and a connection lost during the handshake
  is retried with exponential backoff (`HANDSHAKE_TRIES` tries in all).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.public_key import get_default_public_key_algs

from pipetower.core import netguard
from pipetower.servers.errors import (
    ERROR_KINDS,
    ERROR_TITLES,
    HostKeyChanged,
    HostKeyUnknown,
    SshError,
)
from pipetower.servers.keys import (
    HOST_KEY_FAMILIES,
    PREFERRED_HOST_KEY_ALGS,
    fingerprint_of,
    fingerprint_of_line,
    public_line_of,
)

if TYPE_CHECKING:
    from pipetower.servers.models import Server

__all__ = [
    "ERROR_KINDS",
    "ERROR_TITLES",
    "HANDSHAKES_PER_HOST",
    "HANDSHAKE_TRIES",
    "ConnectionSpec",
    "HostKeyChanged",
    "HostKeyUnknown",
    "RemoteFacts",
    "SshError",
    "check_connection",
    "connection_spec_for",
    "fetch_host_key",
    "fetch_host_keys",
    "handshake_semaphore",
    "ssh_connect",
]

HANDSHAKES_PER_HOST = 8
HANDSHAKE_TRIES = 3
RETRY_BACKOFF_SECONDS = 0.2  # doubled after each lost handshake
PROBE_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to connect, decrypted; no database access needed afterwards."""

    server_id: int
    host: str
    port: int
    username: str
    client_keys: tuple[asyncssh.SSHKey, ...] = field(default=(), repr=False)
    password: str | None = field(default=None, repr=False)
    pinned_host_keys: tuple[str, ...] = ()  # OpenSSH public key lines; empty = no pin
    trust_on_first_use: bool = False

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.username}@{host}:{self.port}"


def connection_spec_for(server: Server, cache: dict[Any, Any] | None = None) -> ConnectionSpec:
    """Build the spec for a server: reads its team's keys and settings, decrypts secrets.

    Raises SshError ("key_format" or "auth_failed") when the server's
    credentials are missing or unreadable. With a `cache` (a dict the caller
    keeps, e.g. for one shard of a run) the team's keys are read, decrypted and
    parsed once, and its settings read once, for all its servers.
    """
    from pipetower.servers.keys import load_private_key
    from pipetower.servers.models import Server
    from pipetower.servers.selectors import team_ssh_keys_active

    client_keys: tuple[asyncssh.SSHKey, ...] = ()
    password: str | None = None
    if server.auth_method == Server.AuthMethod.TEAM_KEY:
        cache_key = ("team_keys", server.team_id)
        if cache is not None and cache_key in cache:
            client_keys = cache[cache_key]
        else:
            client_keys = tuple(
                load_private_key(key.private_key) for key in team_ssh_keys_active(team=server.team)
            )
            if cache is not None:
                cache[cache_key] = client_keys
        if not client_keys:
            raise SshError(
                "auth_failed",
                "The team has no SSH key yet. Open the team's SSH key page to create it.",
            )
    elif server.auth_method == Server.AuthMethod.PRIVATE_KEY:
        if not server.private_key:
            raise SshError("key_format", f"No private key is stored for {server.name}.")
        client_keys = (load_private_key(server.private_key),)
    else:
        if not server.password:
            raise SshError("auth_failed", f"No password is stored for {server.name}.")
        password = server.password
    return ConnectionSpec(
        server_id=server.pk,
        host=server.host,
        port=server.port,
        username=server.username,
        client_keys=client_keys,
        password=password,
        pinned_host_keys=server.pinned_host_keys,
        trust_on_first_use=_trust_on_first_use(server, cache),
    )


def _trust_on_first_use(server: Server, cache: dict[Any, Any] | None) -> bool:
    from pipetower.servers.selectors import team_server_settings_get

    cache_key = ("trust_on_first_use", server.team_id)
    if cache is not None and cache_key in cache:
        return bool(cache[cache_key])
    value = team_server_settings_get(team=server.team).trust_on_first_use
    if cache is not None:
        cache[cache_key] = value
    return value


# --- handshake limits ----------------------------------------------------------

_semaphores: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


def handshake_semaphore(host: str, port: int) -> asyncio.Semaphore:
    """The running loop's semaphore for handshakes to (host, port)."""
    per_loop = _semaphores.setdefault(asyncio.get_running_loop(), {})
    key = (host.lower(), port)
    if key not in per_loop:
        per_loop[key] = asyncio.Semaphore(HANDSHAKES_PER_HOST)
    return per_loop[key]


# --- host key gate ---------------------------------------------------------------


@dataclass
class _Gate:
    pinned: bool
    trust_on_first_use: bool
    presented: str = ""
    first_use: str = ""


class _GatedClient(asyncssh.SSHClient):
    """Called by asyncssh only for a host key that is not among the pins."""

    def __init__(self, gate: _Gate) -> None:
        self._gate = gate

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        line = public_line_of(key)
        self._gate.presented = line
        if self._gate.trust_on_first_use and not self._gate.pinned:
            self._gate.first_use = line
            return True
        return False


def _pins(spec: ConnectionSpec) -> list[asyncssh.SSHKey]:
    keys = []
    for line in spec.pinned_host_keys:
        try:
            keys.append(asyncssh.import_public_key(line))
        except (asyncssh.KeyImportError, ValueError):
            raise SshError(
                "host_key_unknown",
                f"The pinned host key for {spec.address} cannot be read; pin the host key again.",
            ) from None
    return keys


def _preferred_host_key_algs() -> list[str]:
    """Every plain host key type this asyncssh supports, Ed25519 first (keys.py)."""
    supported = [alg.decode() for alg in get_default_public_key_algs()]
    first = [alg for alg in PREFERRED_HOST_KEY_ALGS if alg in supported]
    return first + [alg for alg in supported if alg not in first and "cert" not in alg]


def _host_key_algs(pins: list[asyncssh.SSHKey]) -> list[str] | tuple[()]:
    """The pinned key types first, then every other plain key type.

    A host that still has a key of the pinned type presents that one; a host
    that no longer has one presents another, which then fails as a changed key
    (rather than the handshake failing with no common algorithm).
    """
    if not pins:
        return _preferred_host_key_algs()
    algs: list[bytes] = []
    for key in pins:
        algs.extend(alg for alg in key.sig_algorithms if alg not in algs)
    algs.extend(alg for alg in get_default_public_key_algs() if alg not in algs)
    return [alg.decode() for alg in algs]


def _base_options(*, connect_timeout: float) -> dict[str, Any]:
    """Options that keep the machine's own SSH configuration out of the connection."""
    return {
        "config": None,
        "agent_path": None,
        "x509_trusted_certs": None,
        "x509_trusted_cert_paths": None,
        "gss_host": None,
        # Covers TCP connect, key exchange and login together.
        "connect_timeout": connect_timeout,
    }


# --- connecting ------------------------------------------------------------------

_RETRYABLE = (asyncssh.ConnectionLost, ConnectionResetError, BrokenPipeError)
_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def _describe_offer(spec: ConnectionSpec) -> str:
    if spec.password is not None:
        return "the password"
    fingerprints = ", ".join(fingerprint_of(key) for key in spec.client_keys)
    noun = "key" if len(spec.client_keys) == 1 else "keys"
    return f"the {noun} {fingerprints}"


def _os_error(exc: OSError, spec: ConnectionSpec, connect_timeout: float) -> SshError:
    where = f"{spec.host} port {spec.port}"
    if isinstance(exc, socket.gaierror):
        return SshError(
            "dns",
            f"The host name {spec.host!r} could not be resolved ({exc.strerror or exc}). "
            "Check the spelling, or use the server's IP address.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return SshError(
            "refused",
            f"Connection refused by {where}: nothing accepts SSH connections there. "
            "Check the port and that sshd is running.",
        )
    if isinstance(exc, TimeoutError):
        return _timeout_error(spec, connect_timeout)
    if exc.errno in _UNREACHABLE_ERRNOS:
        return SshError(
            "unreachable",
            f"{where} is unreachable from Pipetower ({exc.strerror}). Check the address "
            "and the network route.",
        )
    return SshError("unreachable", f"Could not connect to {where}: {exc.strerror or exc}.")


def _timeout_error(spec: ConnectionSpec, connect_timeout: float) -> SshError:
    return SshError(
        "timeout",
        f"No SSH answer from {spec.host} port {spec.port} within {connect_timeout:g} seconds. "
        "A firewall may be dropping the connection, or the host is down or overloaded.",
    )


async def _allowed_address(spec: ConnectionSpec, connect_timeout: float) -> str:
    """The address to connect to, once the address guard allows it (after DNS)."""
    try:
        return await netguard.resolve_allowed(spec.host, spec.port)
    except netguard.AddressForbidden as exc:
        raise SshError("forbidden", exc.message) from None
    except OSError as exc:
        raise _os_error(exc, spec, connect_timeout) from None


async def _open(
    spec: ConnectionSpec,
    gate: _Gate,
    pins: list[asyncssh.SSHKey],
    connect_timeout: float,
    address: str,
    keepalive_interval: float = 0,
    keepalive_count_max: int = 3,
) -> asyncssh.SSHClientConnection:
    options = _base_options(connect_timeout=connect_timeout)
    if keepalive_interval > 0:
        # A host that stops answering (frozen, cable pulled) is noticed after
        # about interval x count_max seconds instead of at the script's timeout.
        options["keepalive_interval"] = keepalive_interval
        options["keepalive_count_max"] = keepalive_count_max
    return await asyncssh.connect(
        address,
        spec.port,
        username=spec.username,
        known_hosts=(pins, [], []),
        server_host_key_algs=_host_key_algs(pins),
        client_factory=lambda: _GatedClient(gate),
        client_keys=list(spec.client_keys) or None,
        password=spec.password,
        password_auth=spec.password is not None,
        kbdint_auth=spec.password is not None,
        public_key_auth=bool(spec.client_keys),
        ignore_encrypted=True,
        **options,
    )


async def ssh_connect(
    spec: ConnectionSpec,
    *,
    connect_timeout: float = 10.0,
    on_first_use: Callable[[str], None] | None = None,
    keepalive_interval: float = 0,
    keepalive_count_max: int = 3,
) -> asyncssh.SSHClientConnection:
    """Open an authenticated connection whose host key matches the pin.

    With `keepalive_interval` > 0 the connection sends SSH keepalives and closes
    itself (ConnectionLost) when `keepalive_count_max` in a row go unanswered.

    `on_first_use(key_line)` is called (synchronously, on the event loop) when
    trust on first use accepted an unpinned key, once the key exchange has
    completed: the caller pins it. It must not block; to write to the database
    from async code, record the line and call
    `services.server_host_key_trust_first_use` off the loop (e.g. `sync_to_async`).
    """
    if not spec.pinned_host_keys and not spec.trust_on_first_use:
        raise HostKeyUnknown(
            f"{spec.address} has no pinned host key, so Pipetower will not connect. "
            "Test the connection and confirm the host key's fingerprint, or paste a "
            "known_hosts line."
        )
    pins = _pins(spec)
    address = await _allowed_address(spec, connect_timeout)
    semaphore = handshake_semaphore(spec.host, spec.port)
    for attempt in range(1, HANDSHAKE_TRIES + 1):
        gate = _Gate(pinned=bool(pins), trust_on_first_use=spec.trust_on_first_use)
        try:
            async with semaphore:
                conn = await _open(
                    spec,
                    gate,
                    pins,
                    connect_timeout,
                    address,
                    keepalive_interval,
                    keepalive_count_max,
                )
        except _RETRYABLE as exc:
            if "timeout" in str(exc).lower():
                raise _timeout_error(spec, connect_timeout) from None
            if attempt < HANDSHAKE_TRIES:
                await asyncio.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
                continue
            raise SshError(
                "lost",
                f"{spec.host} port {spec.port} closed the connection during the SSH handshake "
                f"({HANDSHAKE_TRIES} tries). The server may be overloaded (sshd MaxStartups) "
                f"or blocking Pipetower. ({exc})",
            ) from None
        except asyncssh.HostKeyNotVerifiable:
            raise await _host_key_error(spec, gate, connect_timeout) from None
        except asyncssh.KeyExchangeFailed as exc:
            if pins:
                # The host no longer offers any key of the pinned type.
                raise await _host_key_error(spec, gate, connect_timeout) from None
            raise SshError(
                "unreachable",
                f"No common SSH algorithms with {spec.host} port {spec.port}: {exc.reason}",
            ) from None
        except asyncssh.PermissionDenied:
            _notify_first_use(gate, on_first_use)
            raise SshError(
                "auth_failed",
                f"{spec.host} refused the login as {spec.username!r} with "
                f"{_describe_offer(spec)}. Check the user name and that the key is in "
                f"~{spec.username}/.ssh/authorized_keys (or that the password is right).",
            ) from None
        except asyncssh.DisconnectError as exc:
            raise SshError(
                "lost", f"{spec.host} port {spec.port} ended the connection: {exc.reason}"
            ) from None
        except TimeoutError:
            raise _timeout_error(spec, connect_timeout) from None
        except OSError as exc:
            raise _os_error(exc, spec, connect_timeout) from None
        try:
            _notify_first_use(gate, on_first_use)
        except BaseException:
            conn.abort()
            raise
        return conn
    raise AssertionError("unreachable")  # pragma: no cover


def _notify_first_use(gate: _Gate, on_first_use: Callable[[str], None] | None) -> None:
    if gate.first_use and on_first_use is not None:
        on_first_use(gate.first_use)


async def _host_key_error(spec: ConnectionSpec, gate: _Gate, connect_timeout: float) -> SshError:
    presented = gate.presented
    detail = ""
    if not presented:
        # The host offered no key of the pinned type: ask it which key it has now.
        try:
            presented = await fetch_host_key(spec.host, spec.port, connect_timeout=connect_timeout)
        except SshError:
            presented = ""
        detail = "The host no longer offers a key of the pinned type."
    pinned_types = {line.split()[0] for line in spec.pinned_host_keys if line.split()}
    if presented and not detail and presented.split()[0] not in pinned_types:
        types = ", ".join(sorted(pinned_types))
        detail = (
            f"The host no longer offers a key of the pinned type ({types}); "
            f"it presented an {presented.split()[0]} key."
        )
    if not spec.pinned_host_keys:
        return HostKeyUnknown(
            f"{spec.address} presented a host key that is not pinned "
            f"({fingerprint_of_line(presented) if presented else 'unknown'}).",
            presented_host_key=presented,
        )
    return HostKeyChanged(
        address=f"{spec.host} port {spec.port}",
        pinned_fingerprints=[fingerprint_of_line(line) for line in spec.pinned_host_keys],
        new_fingerprint=fingerprint_of_line(presented) if presented else "",
        presented_host_key=presented,
        detail=detail,
    )


async def fetch_host_key(host: str, port: int, *, connect_timeout: float = 10.0) -> str:
    """The host key a server presents, as an OpenSSH line, WITHOUT verifying it.

    Only for showing a fingerprint to a person who then decides to pin it;
    never authenticate over a connection made this way.
    """
    line = await _fetch_host_key(
        host, port, algs=_preferred_host_key_algs(), connect_timeout=connect_timeout
    )
    if line is None:
        raise SshError("host_key_unknown", f"{host} port {port} presented no host key.")
    return line


async def fetch_host_keys(host: str, port: int, *, connect_timeout: float = 10.0) -> list[str]:
    """Every host key a server has, one per type: Ed25519, then ECDSA, then RSA.

    The first handshake asks for every type, Ed25519 first, so the host presents
    its best key (the one Pipetower pins), with the usual retries. Then one
    handshake per later key type (keys.HOST_KEY_FAMILIES) asks for that type
    only. OpenSSH hangs up on a client that asks for a type it has no key of,
    so such a probe ending without a key means "no key of this type". Like
    `fetch_host_key`, only for showing fingerprints to a person.
    """
    first = await fetch_host_key(host, port, connect_timeout=connect_timeout)
    found = [first]
    supported = _preferred_host_key_algs()
    first_alg = first.split()[0]
    later = False
    for family in HOST_KEY_FAMILIES:
        if first_alg in family:
            later = True
            continue
        algs = [alg for alg in family if alg in supported]
        if not later or not algs:
            continue  # a family before the first key's: the host would have presented it
        line = await _fetch_host_key(
            host, port, algs=algs, connect_timeout=connect_timeout, probe=True
        )
        if line is not None and line not in found:
            found.append(line)
    return found


async def _fetch_host_key(
    host: str, port: int, *, algs: list[str], connect_timeout: float, probe: bool = False
) -> str | None:
    """The host key the server presents when asked for `algs`; None when it has none of them.

    `probe`: a host known to answer is asked for one more key type; a handshake
    that ends without a key means it has none of that type (no retries).
    """
    spec = ConnectionSpec(server_id=0, host=host, port=port, username="")
    address = await _allowed_address(spec, connect_timeout)
    semaphore = handshake_semaphore(host, port)
    for attempt in range(1, HANDSHAKE_TRIES + 1):
        try:
            async with semaphore:
                key = await asyncssh.get_server_host_key(
                    address,
                    port,
                    config=None,
                    server_host_key_algs=algs,
                    options=asyncssh.SSHClientConnectionOptions(
                        config=None, connect_timeout=connect_timeout
                    ),
                )
        except _RETRYABLE as exc:
            if probe:
                return None
            if attempt < HANDSHAKE_TRIES:
                await asyncio.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
                continue
            raise SshError(
                "lost", f"{host} port {port} closed the connection during the handshake ({exc})."
            ) from None
        except asyncssh.KeyExchangeFailed as exc:
            if probe or "host key" in str(exc):
                return None  # the host has no key of these types
            raise SshError(
                "lost", f"{host} port {port} ended the connection: {exc.reason}"
            ) from None
        except asyncssh.DisconnectError as exc:
            if probe:
                return None
            raise SshError(
                "lost", f"{host} port {port} ended the connection: {exc.reason}"
            ) from None
        except TimeoutError:
            raise _timeout_error(spec, connect_timeout) from None
        except OSError as exc:
            raise _os_error(exc, spec, connect_timeout) from None
        return public_line_of(key) if key is not None else None
    raise AssertionError("unreachable")  # pragma: no cover


# --- the connection check ------------------------------------------------------------

_PROBE = (
    "uname -n; uname -sr; "
    "if [ -r /etc/os-release ]; then "
    "sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '\"' | head -n 1; "
    "else echo; fi; "
    "if [ -r /proc/uptime ]; then cut -d' ' -f1 /proc/uptime; else echo; fi"
)


@dataclass(frozen=True)
class RemoteFacts:
    hostname: str
    kernel: str  # `uname -sr`, e.g. "Linux 6.1.0-18-amd64"
    pretty_name: str  # /etc/os-release PRETTY_NAME, may be empty
    uptime_seconds: int | None
    host_key: str  # the (verified) key the host presented

    @property
    def os(self) -> str:
        if self.pretty_name:
            return f"{self.pretty_name} ({self.kernel})" if self.kernel else self.pretty_name
        return self.kernel


async def check_connection(
    spec: ConnectionSpec,
    *,
    connect_timeout: float = 10.0,
    on_first_use: Callable[[str], None] | None = None,
) -> RemoteFacts:
    """Connect as `ssh_connect` does and read hostname, OS and uptime."""
    conn = await ssh_connect(spec, connect_timeout=connect_timeout, on_first_use=on_first_use)
    try:
        async with conn:
            result = await asyncio.wait_for(
                conn.run(_PROBE, check=False), timeout=PROBE_TIMEOUT_SECONDS
            )
            server_key = conn.get_server_host_key()
    except TimeoutError:
        raise SshError(
            "timeout",
            f"Logged in to {spec.address}, but reading hostname, OS and uptime took longer "
            f"than {PROBE_TIMEOUT_SECONDS:g} seconds.",
        ) from None
    except (asyncssh.Error, OSError) as exc:
        raise SshError("lost", f"The connection to {spec.address} broke: {exc}") from None
    lines = [*str(result.stdout or "").splitlines(), "", "", "", ""]
    uptime: int | None
    try:
        uptime = int(float(lines[3].strip()))
    except ValueError:
        uptime = None
    return RemoteFacts(
        hostname=lines[0].strip()[:255],
        kernel=lines[1].strip()[:120],
        pretty_name=lines[2].strip()[:120],
        uptime_seconds=uptime,
        host_key=public_line_of(server_key) if server_key else "",
    )
