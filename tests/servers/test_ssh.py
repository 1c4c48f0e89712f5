"""The SSH layer's contract (`pipetower.servers.ssh`), against real OpenSSH servers.

These build `ConnectionSpec`s by hand: the layer needs no database once it has one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from typing import Any

import asyncssh
import pytest

from pipetower.servers.keys import fingerprint_of, public_line_of
from pipetower.servers.services import run_async
from pipetower.servers.ssh import (
    HANDSHAKE_TRIES,
    ConnectionSpec,
    HostKeyChanged,
    HostKeyUnknown,
    SshError,
    check_connection,
    fetch_host_key,
    ssh_connect,
)
from tests.sshd import SshdServer


def run(coro: Awaitable[Any]) -> Any:
    return run_async(coro)  # type: ignore[arg-type]


@pytest.fixture
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def authorized(sshd: SshdServer, client_key: asyncssh.SSHKey) -> SshdServer:
    sshd.authorize(public_line_of(client_key))
    return sshd


def spec_for(server: SshdServer, **fields: Any) -> ConnectionSpec:
    values: dict[str, Any] = {
        "server_id": 1,
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "pinned_host_keys": (server.host_key_line,),
    }
    values.update(fields)
    return ConnectionSpec(**values)


async def run_command(spec: ConnectionSpec, command: str = "whoami", **kwargs: Any) -> str:
    conn = await ssh_connect(spec, **kwargs)
    async with conn:
        result = await conn.run(command, check=True)
    return str(result.stdout).strip()


def expect_error(coro: Awaitable[Any]) -> SshError:
    with pytest.raises(SshError) as caught:
        run(coro)
    return caught.value


# --- success -----------------------------------------------------------------------------


def test_a_pinned_host_with_an_authorized_key_runs_commands(authorized, client_key):
    spec = spec_for(authorized, client_keys=(client_key,))

    assert run(run_command(spec)) == "pipetower-test"


def test_the_connection_check_reads_hostname_os_and_uptime(authorized, client_key):
    facts = run(check_connection(spec_for(authorized, client_keys=(client_key,))))

    assert facts.hostname
    assert facts.kernel.startswith("Linux ")
    assert facts.pretty_name  # /etc/os-release PRETTY_NAME
    assert facts.pretty_name in facts.os and facts.kernel in facts.os
    assert facts.uptime_seconds is not None and facts.uptime_seconds >= 0
    assert facts.host_key == authorized.host_key_line


def test_password_login_works_when_the_server_allows_it(sshd, sshd_password):
    spec = spec_for(sshd, password=sshd_password)

    assert run(run_command(spec)) == "pipetower-test"


def test_every_offered_key_is_tried_so_a_rotation_keeps_working(authorized, client_key):
    not_yet_installed = asyncssh.generate_private_key("ssh-ed25519")
    spec = spec_for(authorized, client_keys=(not_yet_installed, client_key))

    assert run(run_command(spec)) == "pipetower-test"


def test_the_spec_does_not_show_secrets_in_its_repr(client_key):
    spec = ConnectionSpec(
        server_id=1, host="h", port=22, username="u", client_keys=(client_key,), password="hunter2"
    )

    assert "hunter2" not in repr(spec)
    assert "PRIVATE" not in repr(spec)


# --- host keys ---------------------------------------------------------------------------


def test_without_a_pin_and_without_trust_on_first_use_it_refuses_before_connecting(free_port):
    spec = ConnectionSpec(server_id=1, host="127.0.0.1", port=free_port, username="x")

    error = expect_error(ssh_connect(spec))

    # Nothing listens on free_port: a connection attempt would have said "refused".
    assert isinstance(error, HostKeyUnknown)
    assert error.kind == "host_key_unknown"
    assert "no pinned host key" in error.message


def test_trust_on_first_use_accepts_the_key_and_reports_it_for_pinning(authorized, client_key):
    seen: list[str] = []
    spec = spec_for(
        authorized, client_keys=(client_key,), pinned_host_keys=(), trust_on_first_use=True
    )

    assert run(run_command(spec, on_first_use=seen.append)) == "pipetower-test"
    assert seen == [authorized.host_key_line]


def test_trust_on_first_use_reports_the_key_even_when_the_login_fails(sshd, client_key):
    seen: list[str] = []
    spec = spec_for(sshd, client_keys=(client_key,), pinned_host_keys=(), trust_on_first_use=True)

    error = expect_error(ssh_connect(spec, on_first_use=seen.append))

    assert error.kind == "auth_failed"
    assert seen == [sshd.host_key_line]


def test_a_pinned_host_is_not_re_pinned_by_trust_on_first_use(authorized, client_key):
    seen: list[str] = []
    spec = spec_for(authorized, client_keys=(client_key,), trust_on_first_use=True)

    run(run_command(spec, on_first_use=seen.append))

    assert seen == []


def test_a_changed_host_key_fails_naming_the_old_and_new_fingerprints(authorized, client_key):
    spec = spec_for(authorized, client_keys=(client_key,))
    old = authorized.fingerprint
    new = authorized.regenerate_host_key_and_restart()

    error = expect_error(ssh_connect(spec, on_first_use=lambda line: None))

    assert isinstance(error, HostKeyChanged)
    assert error.kind == "host_key_changed"
    assert old != new
    assert old in error.message and new in error.message
    assert "Host key changed" in error.message
    assert error.pinned_fingerprints == (old,)
    assert error.new_fingerprint == new
    assert error.presented_host_key == authorized.host_key_line


def test_trust_on_first_use_never_overrides_a_changed_key(authorized, client_key):
    seen: list[str] = []
    spec = spec_for(authorized, client_keys=(client_key,), trust_on_first_use=True)
    authorized.regenerate_host_key_and_restart()

    error = expect_error(ssh_connect(spec, on_first_use=seen.append))

    assert error.kind == "host_key_changed"
    assert seen == []


def test_a_host_without_a_key_of_the_pinned_type_counts_as_a_changed_key(authorized, client_key):
    rsa_pin = public_line_of(asyncssh.generate_private_key("ssh-rsa", key_size=2048))
    spec = spec_for(authorized, client_keys=(client_key,), pinned_host_keys=(rsa_pin,))

    error = expect_error(ssh_connect(spec))

    assert error.kind == "host_key_changed"
    assert authorized.fingerprint in error.message
    assert "no longer offers a key of the pinned type" in error.message


def test_fetching_the_host_key_needs_no_credentials(sshd):
    assert run(fetch_host_key(sshd.host, sshd.port)) == sshd.host_key_line


# --- failures ----------------------------------------------------------------------------


def test_a_port_with_nothing_listening_is_refused(free_port, client_key):
    spec = ConnectionSpec(
        server_id=1,
        host="127.0.0.1",
        port=free_port,
        username="x",
        client_keys=(client_key,),
        trust_on_first_use=True,
    )

    error = expect_error(ssh_connect(spec))

    assert error.kind == "refused"
    assert f"port {free_port}" in error.message


def test_a_host_that_never_answers_times_out(silent_listener, client_key):
    spec = ConnectionSpec(
        server_id=1,
        host="127.0.0.1",
        port=silent_listener,
        username="x",
        client_keys=(client_key,),
        trust_on_first_use=True,
    )
    started = time.monotonic()

    error = expect_error(ssh_connect(spec, connect_timeout=0.5))

    assert error.kind == "timeout"
    assert "within 0.5 seconds" in error.message
    assert time.monotonic() - started < 5


def test_a_host_name_that_does_not_resolve_is_a_dns_error(client_key):
    spec = ConnectionSpec(
        server_id=1,
        host="no-such-host.invalid",
        port=22,
        username="x",
        client_keys=(client_key,),
        trust_on_first_use=True,
    )

    error = expect_error(ssh_connect(spec))

    assert error.kind == "dns"
    assert "no-such-host.invalid" in error.message


def test_a_key_the_server_does_not_know_fails_authentication(sshd, client_key):
    spec = spec_for(sshd, client_keys=(client_key,))

    error = expect_error(ssh_connect(spec))

    assert error.kind == "auth_failed"
    assert "pipetower-test" in error.message
    assert fingerprint_of(client_key) in error.message


def test_a_wrong_password_fails_authentication(sshd, sshd_password):
    error = expect_error(ssh_connect(spec_for(sshd, password="not the password")))

    assert error.kind == "auth_failed"
    assert "the password" in error.message


# --- busy hosts ----------------------------------------------------------------------------


async def _dropping_proxy(
    target_port: int, drop_first: int
) -> tuple[asyncio.AbstractServer, int, list[int]]:
    """A real TCP proxy in front of sshd that hangs up on the first `drop_first` connections,
    like sshd does when MaxStartups is exceeded."""
    counter = [0]

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter[0] += 1
        if counter[0] <= drop_first:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, counter


def test_a_connection_dropped_during_the_handshake_is_retried(authorized, client_key):
    async def scenario() -> tuple[str, int]:
        proxy, port, counter = await _dropping_proxy(authorized.port, drop_first=2)
        async with proxy:
            spec = spec_for(authorized, port=port, client_keys=(client_key,))
            output = await run_command(spec)
        return output, counter[0]

    output, connections = run(scenario())

    assert output == "pipetower-test"
    assert connections == 3


def test_a_host_that_keeps_dropping_connections_is_reported_as_lost(authorized, client_key):
    async def scenario() -> tuple[SshError, int]:
        proxy, port, counter = await _dropping_proxy(authorized.port, drop_first=100)
        async with proxy:
            spec = spec_for(authorized, port=port, client_keys=(client_key,))
            with pytest.raises(SshError) as caught:
                await ssh_connect(spec)
        return caught.value, counter[0]

    error, connections = run(scenario())

    assert error.kind == "lost"
    assert connections == HANDSHAKE_TRIES


def test_a_default_sshd_accepts_forty_simultaneous_connections(sshd_fleet, client_key):
    # MaxStartups 10:30:100 is OpenSSH's default: beyond 10 unauthenticated
    # connections it starts dropping new ones.
    (host,) = sshd_fleet(1, max_startups="10:30:100")
    host.authorize(public_line_of(client_key))
    spec = spec_for(host, client_keys=(client_key,))

    async def scenario() -> list[str]:
        async def one() -> str:
            conn = await ssh_connect(spec)
            async with conn:
                result = await conn.run("echo ok", check=True)
                return str(result.stdout).strip()

        return await asyncio.gather(*(one() for _ in range(40)))

    assert run(scenario()) == ["ok"] * 40


def test_the_fleet_fixture_starts_fifty_servers_in_a_few_seconds(sshd_fleet, client_key):
    started = time.monotonic()
    fleet = sshd_fleet(50)
    elapsed = time.monotonic() - started
    for host in fleet:
        host.authorize(public_line_of(client_key))

    async def scenario() -> list[str]:
        return await asyncio.gather(
            *(run_command(spec_for(host, client_keys=(client_key,))) for host in fleet)
        )

    assert elapsed < 10
    assert len({host.port for host in fleet}) == 50
    assert run(scenario()) == ["pipetower-test"] * 50


def test_a_stopped_sshd_process_is_gone(sshd_user):
    host = SshdServer().start()
    pid = host.pid
    host.stop()

    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_ipv6_host_is_reached_and_pinned_like_any_other(sshd_fleet, client_key):
    (host,) = sshd_fleet(1, host="::1")
    host.authorize(public_line_of(client_key))
    spec = spec_for(host, client_keys=(client_key,))

    assert spec.address == f"pipetower-test@[::1]:{host.port}"
    assert run(run_command(spec)) == "pipetower-test"


def test_the_fetched_host_key_is_the_ed25519_one_when_the_host_has_several():
    """A real SSH server on loopback (asyncssh's) holding an RSA and an Ed25519 host key:
    asyncssh on its own picks RSA; Pipetower asks for Ed25519 first, the key admins
    are told to compare with."""
    import asyncio

    import asyncssh

    from pipetower.servers.ssh import fetch_host_key

    async def fetch() -> tuple[str, str]:
        rsa = asyncssh.generate_private_key("ssh-rsa")
        ed25519 = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[rsa, ed25519]
        )
        try:
            port = server.sockets[0].getsockname()[1]
            plain = await asyncssh.get_server_host_key("127.0.0.1", port, config=None)
            assert plain is not None
            return plain.get_algorithm(), await fetch_host_key("127.0.0.1", port)
        finally:
            server.close()

    default_choice, line = asyncio.run(fetch())

    assert default_choice == "ssh-rsa"  # what the page offered before
    assert line.split()[0] == "ssh-ed25519"


def test_key_types_are_named_as_ssh_keygen_names_them():
    from pipetower.servers.keys import host_key_file_of_line, key_type_of_line

    assert key_type_of_line("ssh-ed25519 AAAA") == "ED25519"
    assert key_type_of_line("ecdsa-sha2-nistp256 AAAA") == "ECDSA"
    assert key_type_of_line("ssh-rsa AAAA") == "RSA"
    assert host_key_file_of_line("ecdsa-sha2-nistp256 AAAA") == "/etc/ssh/ssh_host_ecdsa_key.pub"
