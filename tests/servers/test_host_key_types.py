"""Host keys people can check: every key type the host has, each with its type,
Ed25519 first; the pin takes the Ed25519 key; the docs' command matches the page.
Against real sshd servers holding several host keys (tests/sshd.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.core.errors import Conflict
from pipetower.servers import services
from pipetower.servers.keys import fingerprint_of_line
from pipetower.servers.models import Server
from pipetower.servers.ssh import fetch_host_keys
from pipetower.teams.models import Team
from tests.sshd import SshdServer

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "servers.md"


@pytest.fixture
def host_with(sshd_user: str) -> Iterator[Callable[..., SshdServer]]:
    started: list[SshdServer] = []

    def start(*kinds: str) -> SshdServer:
        server = SshdServer(host_key_types=kinds).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _keygen_line(host: SshdServer, kind: str) -> tuple[str, str]:
    """(fingerprint, TYPE) from what `ssh-keygen -lf` prints on the server."""
    words = host.keygen_fingerprint(kind).split()
    return words[1], words[-1].strip("()")


def test_every_host_key_type_is_fetched_ed25519_first_then_ecdsa_then_rsa(
    host_with: Callable[..., SshdServer],
) -> None:
    host = host_with("rsa", "ecdsa", "ed25519")
    lines = asyncio.run(fetch_host_keys(host.host, host.port))
    assert lines == [host.host_key_line_of(kind) for kind in ("ed25519", "ecdsa", "rsa")]


def test_a_host_without_ed25519_offers_ecdsa_then_rsa(
    host_with: Callable[..., SshdServer],
) -> None:
    host = host_with("rsa", "ecdsa")
    lines = asyncio.run(fetch_host_keys(host.host, host.port))
    assert [line.split()[0] for line in lines] == ["ecdsa-sha2-nistp256", "ssh-rsa"]


def test_the_check_offers_every_key_with_its_type_and_pins_the_ed25519_one(
    host_with: Callable[..., SshdServer], make_server: Callable[..., Server], user: Any
) -> None:
    host = host_with("rsa", "ecdsa", "ed25519")
    server = make_server(host=host.host, port=host.port, username=host.user)

    outcome = services.server_check(server=server, actor=user)

    server.refresh_from_db()
    labels = [label for label, _ in server.offered_host_key_choices]
    expected = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        fingerprint, kind_name = _keygen_line(host, kind)
        expected.append(f"{kind_name} {fingerprint}")
    assert labels == expected, "each fingerprint and type as ssh-keygen -lf prints them"
    ed25519 = fingerprint_of_line(host.host_key_line_of("ed25519"))
    assert outcome.offered_fingerprint == ed25519
    assert all(label in outcome.message for label in expected[1:])

    services.server_host_key_pin(server=server, actor=user, fingerprint=ed25519)
    server.refresh_from_db()
    assert server.pinned_host_keys == (host.host_key_line_of("ed25519"),)
    host.authorize(server.team.ssh_keys.get().public_key)
    assert services.server_check(server=server, actor=user).ok


def test_confirming_the_rsa_fingerprint_says_which_key_is_pinned(
    host_with: Callable[..., SshdServer], make_server: Callable[..., Server], user: Any
) -> None:
    host = host_with("rsa", "ed25519")
    server = make_server(host=host.host, port=host.port, username=host.user)
    services.server_check(server=server, actor=user)
    rsa = fingerprint_of_line(host.host_key_line_of("rsa"))

    with pytest.raises(Conflict, match="pins the host's ED25519 key") as refused:
        services.server_host_key_pin(server=server, actor=user, fingerprint=rsa)

    assert refused.value.field == "fingerprint"
    server.refresh_from_db()
    assert not server.is_pinned


def test_a_host_with_only_rsa_gets_its_rsa_key_pinned(
    host_with: Callable[..., SshdServer], make_server: Callable[..., Server], user: Any
) -> None:
    host = host_with("rsa")
    server = make_server(host=host.host, port=host.port, username=host.user)
    outcome = services.server_check(server=server, actor=user)
    assert "ssh_host_rsa_key.pub" in outcome.message
    services.server_host_key_pin(server=server, actor=user, fingerprint=outcome.offered_fingerprint)
    server.refresh_from_db()
    assert server.pinned_host_keys == (host.host_key_line_of("rsa"),)


def test_the_server_page_lists_every_key_and_the_command_the_docs_give(
    host_with: Callable[..., SshdServer],
    make_server: Callable[..., Server],
    user: Any,
    team: Team,
    owner_client: Client,
) -> None:
    host = host_with("rsa", "ecdsa", "ed25519")
    server = make_server(host=host.host, port=host.port, username=host.user)
    services.server_check(server=server, actor=user)

    page = owner_client.get(reverse("servers:detail", args=[team.slug, server.pk])).content.decode()

    positions = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        fingerprint, kind_name = _keygen_line(host, kind)
        assert f"{kind_name} {fingerprint}" in page
        command = f"ssh-keygen -lf /etc/ssh/ssh_host_{kind}_key.pub"
        assert command in page
        positions.append(page.index(f"{kind_name} {fingerprint}"))
    assert positions == sorted(positions), "Ed25519 first, then ECDSA, then RSA"
    assert "pinned on confirmation" in page
    # The command docs/servers.md tells admins to run is the one the page shows first.
    docs = DOCS.read_text()
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in docs
    assert page.index("ssh_host_ed25519_key.pub") < page.index("ssh_host_rsa_key.pub")


def test_the_api_lists_every_offered_key(
    host_with: Callable[..., SshdServer],
    make_server: Callable[..., Server],
    user: Any,
    team: Team,
    client: Client,
) -> None:
    from pipetower.api.services import api_token_create

    host = host_with("ecdsa", "ed25519")
    server = make_server(host=host.host, port=host.port, username=host.user)
    services.server_check(server=server, actor=user)
    _, secret = api_token_create(user=user, name="read", scope="read")

    body = client.get(
        f"/api/v1/teams/{team.slug}/servers/{server.pk}",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    ).json()

    assert [k.split()[0] for k in body["host_key"]["offered_keys"]] == ["ED25519", "ECDSA"]
    assert body["host_key"]["offered_fingerprint"] == fingerprint_of_line(
        host.host_key_line_of("ed25519")
    )
