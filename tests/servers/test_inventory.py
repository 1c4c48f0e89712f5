"""Reading servers from inventories people already keep: Ansible INI and YAML,
OpenSSH ssh_config and CSV (the files are in tests/servers/inventories/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipetower.audit.models import AuditEvent
from pipetower.servers import services
from pipetower.servers.inventory import (
    MAX_INVENTORY_BYTES,
    InventoryError,
    detect_format,
    expand_host_range,
    inventory_parse,
)
from pipetower.servers.models import Server

FILES = Path(__file__).parent / "inventories"


def read(name: str) -> str:
    return (FILES / name).read_text()


def summary(inventory):
    return {
        row.name: (row.line, row.host, row.port, row.user, row.tags, row.errors)
        for row in inventory.rows
    }


THE_FLEET = {
    "web01.example.com": (None, "web01.example.com", "22", "deploy", ["eu_west", "webservers"]),
    "web02.example.com": (None, "web02.example.com", "22", "deploy", ["eu_west", "webservers"]),
    "web03.example.com": (None, "web03.example.com", "22", "deploy", ["eu_west", "webservers"]),
    "web-canary.example.com": (
        None,
        "web-canary.example.com",
        "2222",
        "canary",
        ["eu_west", "webservers"],
    ),
    "db-a": (None, "192.0.2.21", "22", "postgres", ["dbservers", "eu_west"]),
    "db-b": (None, "192.0.2.22", "5022", "postgres", ["dbservers", "eu_west"]),
}


def test_an_ansible_ini_inventory_gives_groups_as_tags_and_host_vars(team, user):
    inventory = services.servers_import_preview(
        team=team, actor=user, text=read("hosts.ini"), default_user="root"
    )

    assert inventory.format == "ansible_ini"
    rows = summary(inventory)
    for name, (_line, host, port, username, tags) in THE_FLEET.items():
        assert rows[name][1:5] == (host, port, username, tags), name
        assert rows[name][5] == []
    # host ranges expand; every host remembers the line it came from
    assert [rows[f"web0{n}.example.com"][0] for n in (1, 2, 3)] == [5, 5, 5]
    assert rows["db-b"][0] == 10
    # an ungrouped host takes the default user; a local connection is not a server
    assert rows["mail.example.com"][1:5] == ("mail.example.com", "22", "root", [])
    assert "localhost" not in rows
    assert (23, "localhost skipped: ansible_connection=local, not SSH.") in inventory.notes


def test_an_ansible_yaml_inventory_reads_like_the_ini_one(team, user):
    inventory = services.servers_import_preview(team=team, actor=user, text=read("hosts.yml"))

    assert inventory.format == "ansible_yaml"
    rows = summary(inventory)
    for name, (_line, host, port, username, tags) in THE_FLEET.items():
        assert rows[name][1:5] == (host, port, username, tags), name
    # vars of `all` are the weakest; the child group's vars beat its parent's
    assert rows["mail.example.com"][3] == "admin"
    assert rows["db-b"][0] == 19
    assert all(row.ok for row in inventory.rows)


def test_yaml_that_is_not_plain_data_is_refused_with_its_line(team, user):
    with pytest.raises(InventoryError, match="line 3"):
        services.servers_import_preview(
            team=team,
            actor=user,
            text="all:\n  hosts:\n    web1: !!python/object:os.system {}\n",
            format="ansible_yaml",
        )


def test_an_ssh_config_gives_one_server_per_host_alias_and_skips_patterns(team, user):
    inventory = services.servers_import_preview(team=team, actor=user, text=read("ssh_config"))

    assert inventory.format == "ssh_config"
    assert {name: row[1:4] for name, row in summary(inventory).items()} == {
        "bastion": ("bastion.example.com", "22", "jump"),
        "web1": ("web1.example.com", "2200", "deploy"),
        "web2": ("web2.example.com", "2200", "deploy"),
        "db": ("192.0.2.30", "22", "deploy"),
    }
    notes = dict(inventory.notes)
    assert "patterns set defaults" in notes[16] and "Host *.example.com !bastion" in notes[16]
    assert notes[13].startswith("Match block skipped")


def test_a_csv_file_with_the_header(team, user):
    inventory = services.servers_import_preview(team=team, actor=user, text=read("fleet.csv"))

    assert inventory.format == "csv"
    assert summary(inventory) == {
        "web-1": (2, "198.51.100.10", "22", "deploy", ["web", "eu"], []),
        "web-2": (3, "198.51.100.11", "22", "deploy", ["web", "eu"], []),
        "db-1": (4, "2001:db8::5", "2222", "postgres", ["db"], []),
    }


def test_a_csv_file_without_its_header_is_refused_with_the_header_to_use(team, user):
    with pytest.raises(InventoryError, match="name,address,port,user,tags"):
        services.servers_import_preview(
            team=team, actor=user, text="web-1,192.0.2.1,22,deploy\n", format="csv"
        )


def test_every_mistake_is_named_on_its_own_line(team, user, make_server):
    make_server(name="web-9", host="198.51.100.50", username="deploy")
    inventory = services.servers_import_preview(team=team, actor=user, text=read("broken.ini"))

    errors = {row.line: " ".join(row.errors) for row in inventory.rows}
    assert "listed twice with different values" in errors[3]
    assert errors[4] == ""
    assert "Duplicate: deploy@198.51.100.2:22 is already 'web2' on line 4." in errors[5]
    assert "'not_a_host!' is not a valid host name" in errors[7]
    assert "link-local addresses are forbidden" in errors[8]
    assert "port must be a whole number from 1 to 65535" in errors[9]
    assert "already the team's server 'web-9'" in errors[10]
    assert "is not a group header" in errors[15]
    assert [row.name for row in inventory.valid_rows] == ["web2"]


def test_a_name_already_in_the_team_and_a_name_twice_in_the_file_are_duplicates(
    team, user, make_server
):
    make_server(name="web-1")
    text = (
        "name,address,user\n"
        "web-1,192.0.2.1,deploy\n"
        "web-2,192.0.2.2,deploy\n"
        "WEB-2,192.0.2.3,deploy\n"
    )

    rows = services.servers_import_preview(team=team, actor=user, text=text).rows

    assert rows[0].errors == ["This team already has a server named 'web-1'."]
    assert rows[1].errors == []
    assert rows[2].errors == ["Duplicate: 'WEB-2' is already on line 3."]


def test_a_row_without_a_user_asks_for_one(team, user):
    rows = services.servers_import_preview(
        team=team, actor=user, text="name,address\nweb-1,192.0.2.1\n"
    ).rows

    assert "No SSH user" in rows[0].errors[0]


def test_size_limits_are_clear(team, user):
    with pytest.raises(InventoryError, match="larger than 1000 kB"):
        inventory_parse("#" * (MAX_INVENTORY_BYTES + 1))
    with pytest.raises(InventoryError, match="at most 1000"):
        inventory_parse("[web]\na[001:600]\nb[001:600]\n")
    with pytest.raises(InventoryError, match="Paste an inventory"):
        inventory_parse("  \n")


def test_host_ranges_expand_like_ansible():
    assert expand_host_range("web[01:03].example.com") == [
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
    ]
    assert expand_host_range("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand_host_range("n[0:10:5]") == ["n0", "n5", "n10"]
    with pytest.raises(ValueError, match="more than"):
        expand_host_range("n[0:99][0:99]")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hosts.ini", "ansible_ini"),
        ("hosts.yml", "ansible_yaml"),
        ("ssh_config", "ssh_config"),
        ("fleet.csv", "csv"),
        ("broken.ini", "ansible_ini"),
    ],
)
def test_the_format_is_detected(name, expected):
    assert detect_format(read(name)) == expected


def test_importing_adds_the_valid_servers_with_tags_and_an_audit_row_each(team, user):
    result = services.servers_import(team=team, actor=user, text=read("hosts.ini"))

    assert sorted(s.name for s in result.created) == sorted(THE_FLEET)
    assert [row.line for row in result.inventory.invalid_rows] == [2]  # mail: no user
    canary = Server.objects.get(team=team, name="web-canary.example.com")
    assert (canary.port, canary.username, canary.auth_method) == (2222, "canary", "team_key")
    assert sorted(canary.tags.values_list("name", flat=True)) == ["eu_west", "webservers"]
    assert not canary.is_pinned
    events = AuditEvent.objects.filter(team=team, verb="server.created")
    assert events.count() == len(THE_FLEET)
    assert {e.data["imported_from"] for e in events} == {"ansible_ini"}


def test_importing_nothing_valid_is_refused_and_adds_nothing(team, user):
    with pytest.raises(services.ServiceError, match="every line has an error"):
        services.servers_import(
            team=team, actor=user, text="name,address\nweb-1,192.0.2.1\n", format="csv"
        )
    assert not Server.objects.filter(team=team).exists()


def test_an_operator_cannot_import(team, operator):
    with pytest.raises(services.NotAllowed):
        services.servers_import(team=team, actor=operator, text=read("fleet.csv"))
    assert not Server.objects.filter(team=team).exists()
