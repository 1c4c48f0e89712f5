"""The address guard: servers cannot turn Pipetower into a scanner (issue 9, finding 11).

Nothing here connects anywhere but loopback: the refusals are checked with
literal addresses, `localhost` and a loopback listener whose backlog shows
whether anything knocked.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

import pipetower.config.settings
from pipetower.config.env import ConfigurationError, new_master_key
from pipetower.core import netguard
from pipetower.servers import services
from pipetower.servers.models import Server
from pipetower.teams.models import Team
from tests.core._ops import CONFIG_VARIABLES

STRICT = netguard.PRODUCTION_DEFAULT


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("169.254.169.254", True),
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("fe80::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("fd00::1", True),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
        ("172.32.0.1", False),
    ],
)
def test_the_strict_rules_forbid_loopback_link_local_and_private(
    settings: Any, address: str, forbidden: bool
) -> None:
    settings.FORBIDDEN_NETWORKS = STRICT

    assert (netguard.address_refusal(address) is not None) is forbidden


def test_the_development_default_allows_loopback_and_forbids_link_local(settings: Any) -> None:
    settings.FORBIDDEN_NETWORKS = netguard.DEVELOPMENT_DEFAULT

    assert netguard.address_refusal("127.0.0.1") is None
    assert netguard.address_refusal("192.168.1.1") is None
    assert "link-local" in (netguard.address_refusal("169.254.169.254") or "")


def test_networks_can_be_named_and_none_forbids_nothing(settings: Any) -> None:
    settings.FORBIDDEN_NETWORKS = "203.0.113.0/24, loopback"
    assert "203.0.113.0/24" in (netguard.address_refusal("203.0.113.9") or "")
    assert netguard.address_refusal("::1") is not None

    settings.FORBIDDEN_NETWORKS = "none"
    assert netguard.address_refusal("169.254.169.254") is None


def test_localhost_names_are_refused_without_dns(settings: Any) -> None:
    settings.FORBIDDEN_NETWORKS = "loopback"

    assert netguard.host_refusal("localhost") is not None
    assert netguard.host_refusal("db.localhost.") is not None
    assert netguard.host_refusal("example.com") is None  # names are checked when connecting


# --- the setting ---------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    for name in [*CONFIG_VARIABLES, "PIPETOWER_FORBIDDEN_NETWORKS"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPETOWER_DATA_DIR", str(tmp_path / "data"))

    def load(**variables: str) -> dict[str, Any]:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(pipetower.config.settings.__file__, run_name="settings_under_test")

    return load


def test_production_forbids_every_internal_range_by_default(environment: Any) -> None:
    production = environment(
        PIPETOWER_ENV="production", SECRET_KEY="s" * 60, PIPETOWER_MASTER_KEYS=new_master_key()
    )
    assert production["FORBIDDEN_NETWORKS"] == "loopback,link-local,private"


def test_development_allows_loopback_by_default_and_the_variable_wins(environment: Any) -> None:
    assert environment()["FORBIDDEN_NETWORKS"] == "link-local"
    assert environment(PIPETOWER_FORBIDDEN_NETWORKS="none")["FORBIDDEN_NETWORKS"] == "none"


def test_a_bad_entry_stops_start_up_naming_it(environment: Any) -> None:
    with pytest.raises(ConfigurationError, match="'intranet'"):
        environment(PIPETOWER_FORBIDDEN_NETWORKS="loopback,intranet")


# --- servers -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "host", ["169.254.169.254", "localhost", "127.0.0.1", "[::1]", "::ffff:10.0.0.1", "10.0.0.5"]
)
def test_adding_a_server_at_a_forbidden_address_is_refused(
    settings: Any, team: Team, user: Any, host: str
) -> None:
    settings.FORBIDDEN_NETWORKS = STRICT

    with pytest.raises(netguard.AddressForbidden) as refused:
        services.server_create(team=team, actor=user, name="meta", host=host, username="root")

    assert refused.value.field == "host"
    assert "PIPETOWER_FORBIDDEN_NETWORKS" in refused.value.message
    assert not Server.objects.exists()


@pytest.mark.django_db
def test_the_api_and_the_page_say_why_the_host_is_refused(
    settings: Any, owner_client: Client, team: Team
) -> None:
    settings.FORBIDDEN_NETWORKS = netguard.DEVELOPMENT_DEFAULT

    api = owner_client.post(
        "/api/v1/teams/engines/servers",
        json.dumps({"name": "meta", "host": "169.254.169.254", "username": "root"}),
        content_type="application/json",
    )
    assert api.status_code == 400
    error = api.json()["error"]
    assert error["code"] == "address_forbidden"
    assert error["details"][0]["field"] == "host"

    page = owner_client.post(
        "/teams/engines/servers/new/",
        {
            "name": "meta",
            "host": "169.254.169.254",
            "port": "80",
            "username": "root",
            "auth_method": "team_key",
        },
    )
    assert "link-local addresses are forbidden" in page.content.decode()
    assert not Server.objects.exists()


@pytest.mark.django_db
def test_moving_a_server_to_a_forbidden_address_is_refused(
    settings: Any, team: Team, user: Any
) -> None:
    server = services.server_create(
        team=team, actor=user, name="web", host="127.0.0.1", username="root"
    )
    settings.FORBIDDEN_NETWORKS = STRICT

    with pytest.raises(netguard.AddressForbidden):
        services.server_update(
            server=server,
            actor=user,
            name="web",
            host="localhost",
            port=22,
            username="root",
            tags="",
        )
    server.refresh_from_db()
    assert server.host == "127.0.0.1"


@pytest.fixture
def knock_counter() -> Iterator[tuple[int, Callable[[], int]]]:
    """A loopback listener that never accepts: `knocks()` says how many connected."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)

        def knocks() -> int:
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    return count
                conn.close()
                count += 1

        yield int(sock.getsockname()[1]), knocks


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_connecting_checks_again_after_dns_and_never_knocks(
    settings: Any, team: Team, user: Any, knock_counter: Any, host: str
) -> None:
    """Saved while allowed, refused after the operator forbade loopback: the name
    is resolved and checked before any connection, and the check says only that."""
    port, knocks = knock_counter
    server = services.server_create(
        team=team, actor=user, name="db", host=host, port=port, username="root"
    )
    settings.FORBIDDEN_NETWORKS = "loopback"

    outcome = services.server_check(server=server, actor=user, connect_timeout=2)

    assert outcome.ok is False
    assert outcome.error_kind == "forbidden"
    assert "loopback addresses are forbidden" in outcome.message
    assert knocks() == 0
    server.refresh_from_db()
    assert server.last_check_error == "forbidden"
    assert server.last_check_title == "Address not allowed"


@pytest.mark.django_db
def test_refused_closed_and_silent_ports_get_the_same_single_answer(
    settings: Any, team: Team, user: Any, knock_counter: Any, free_port: Any
) -> None:
    """With the guard on, Pipetower tells nothing about a forbidden port's state."""
    listening, _ = knock_counter
    closed = free_port
    servers = [
        services.server_create(
            team=team, actor=user, name=f"s{p}", host="127.0.0.1", port=p, username="root"
        )
        for p in (listening, closed)
    ]
    settings.FORBIDDEN_NETWORKS = "loopback"

    outcomes = [services.server_check(server=s, actor=user, connect_timeout=2) for s in servers]

    assert {o.error_kind for o in outcomes} == {"forbidden"}
    assert len({o.message.replace(str(s.port), "") for o, s in zip(outcomes, servers)}) == 1


def test_a_name_is_resolved_before_the_check(settings: Any) -> None:
    settings.FORBIDDEN_NETWORKS = "loopback"

    with pytest.raises(netguard.AddressForbidden, match=r"localhost \((127\.0\.0\.1|::1)\)"):
        asyncio.run(netguard.resolve_allowed("localhost", 22))
    settings.FORBIDDEN_NETWORKS = "link-local"
    assert asyncio.run(netguard.resolve_allowed("localhost", 22)) in ("127.0.0.1", "::1")


@pytest.mark.django_db
def test_a_run_on_a_server_whose_address_became_forbidden_fails_saying_why(
    settings: Any,
    team: Team,
    user: Any,
    knock_counter: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from pipetower.actions import services as actions
    from tests.actions.conftest import pinned_server

    port, knocks = knock_counter
    server = pinned_server(team, "db", port=port)
    action = actions.action_create(team=team, actor=user, name="uptime", script="uptime")
    settings.FORBIDDEN_NETWORKS = "loopback"

    with django_capture_on_commit_callbacks(execute=True):
        run = actions.run_start(action=action, actor=user, server_ids=[server.pk])

    target = run.targets.get()
    assert target.status == "failed"
    assert "loopback addresses are forbidden" in target.error
    assert knocks() == 0
