"""Fleets of hundreds, as a team admin sees them: import an inventory with a
preview, fetch and pin many host keys at once (real sshd fleet), change tags in
bulk, and filter and sort the server list on the server side."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from pipetower.audit.models import AuditEvent
from pipetower.servers import services
from pipetower.servers.models import Server
from pipetower.teams.models import Role
from tests.factories import TeamFactory, member

BASE = "/teams/engines/servers/"
FILES = Path(__file__).parent / "inventories"


def text(response) -> str:
    return response.content.decode()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows_of(page: str, table: str) -> list[str]:
    """The text of each body row of the table with this id, tags stripped."""
    body = page.split(f'id="{table}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = [row.split(">", 1)[1] for row in body.split("<tr")[1:]]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


# --- import --------------------------------------------------------------------------------------


def test_the_preview_shows_every_line_with_its_errors_and_adds_nothing(owner_client, make_server):
    make_server(name="web-9", host="198.51.100.50", username="deploy")
    broken = (FILES / "broken.ini").read_text()

    response = owner_client.post(f"{BASE}import/", {"text": broken, "format": "auto"})

    page = text(response)
    assert response.status_code == 200
    assert "Preview: 1 of 8 servers can be imported" in page
    assert "Read as: Ansible inventory (INI)" in page
    rows = rows_of(page, "import-preview")
    assert rows[0].startswith("3 web1") and "listed twice with different values" in rows[0]
    assert rows[1].startswith("4 web2") and "Ready" in rows[1]
    assert rows[2].startswith("5 web3")
    assert "Duplicate: deploy@198.51.100.2:22 is already &#x27;web2&#x27; on line 4." in rows[2]
    assert "link-local addresses are forbidden" in rows[4]
    assert "already the team&#x27;s server &#x27;web-9&#x27;" in rows[6]
    assert rows[7].startswith("15 [oops")
    # what was pasted is still in the box for the confirmation, nothing was added
    assert "web1 ansible_host=198.51.100.9" in page
    assert "Import 1 server" in page
    assert Server.objects.filter(name__startswith="web").count() == 1


def test_an_uploaded_inventory_is_previewed_then_imported(owner_client, team):
    upload = SimpleUploadedFile("hosts.yml", (FILES / "hosts.yml").read_bytes())

    preview = owner_client.post(f"{BASE}import/", {"file": upload, "format": "auto"})

    page = text(preview)
    assert "Read as: Ansible inventory (YAML)" in page
    assert "Preview: 7 of 7 servers can be imported" in page
    assert "web-canary.example.com" in page and "canary@web-canary.example.com:2222" in page
    # the file's text is carried in the text box to the confirmation
    assert "ansible_user: postgres" in page

    done = owner_client.post(
        f"{BASE}import/",
        {"text": (FILES / "hosts.yml").read_text(), "format": "auto", "confirm": "1"},
        follow=True,
    )

    assert done.redirect_chain[-1][0] == f"{BASE}host-keys/"
    assert "Imported 7 servers" in text(done)
    assert Server.objects.filter(team=team).count() == 7
    db_b = Server.objects.get(team=team, name="db-b")
    assert db_b.address == "postgres@192.0.2.22:5022"
    assert sorted(db_b.tags.values_list("name", flat=True)) == ["dbservers", "eu_west"]


def test_importing_with_errors_adds_only_the_valid_lines(owner_client, team):
    csv = "name,address,port,user\nweb-1,192.0.2.1,22,deploy\nweb-2,192.0.2.2,70000,deploy\n"

    done = owner_client.post(
        f"{BASE}import/", {"text": csv, "format": "csv", "confirm": "1"}, follow=True
    )

    assert "Imported 1 server; 1 line with errors left out" in text(done)
    assert list(Server.objects.filter(team=team).values_list("name", flat=True)) == ["web-1"]


def test_a_file_that_is_not_the_chosen_format_is_a_clear_error_and_keeps_the_text(owner_client):
    response = owner_client.post(
        f"{BASE}import/", {"text": "all:\n  hosts: [oops\n", "format": "ansible_yaml"}
    )

    assert response.status_code == 400
    assert "This is not valid YAML on line" in text(response)
    assert "hosts: [oops" in text(response)


def test_an_empty_import_asks_for_an_inventory(owner_client):
    response = owner_client.post(f"{BASE}import/", {"text": " ", "format": "auto"})

    assert response.status_code == 400
    assert "Paste an inventory or choose a file to upload." in text(response)


def test_an_operator_cannot_import_or_pin(team, make_member):
    client = client_for(make_member(Role.OPERATOR))

    assert client.get(f"{BASE}import/").status_code == 403
    assert client.get(f"{BASE}host-keys/").status_code == 403
    assert client.post(f"{BASE}host-keys/pin/", {"pin": "1:SHA256:x"}).status_code == 403
    assert client.post(f"{BASE}tags/", {"server": "1", "add": "x"}).status_code == 403


# --- bulk pin against a real fleet -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_imported_servers_get_their_host_keys_fetched_and_pinned_together(
    owner_client, team, sshd_fleet, free_port, checked
):
    """Two real sshd servers and one address where nothing listens: every fingerprint
    is shown, the unreachable host is shown as such (no error page), and only the
    ticked keys are pinned."""
    first, second = sshd_fleet(2)
    inventory = (
        "[web]\n"
        f"alpha ansible_host=127.0.0.1 ansible_port={first.port}\n"
        f"beta ansible_host=127.0.0.1 ansible_port={second.port}\n"
        f"gone ansible_host=127.0.0.1 ansible_port={free_port}\n"
        "[web:vars]\n"
        f"ansible_user={first.user}\n"
    )
    owner_client.post(f"{BASE}import/", {"text": inventory, "format": "auto", "confirm": "1"})
    page = text(owner_client.get(f"{BASE}host-keys/"))
    assert "Fetch host keys of 3 servers" in page and "Not fetched yet" in page

    ids = list(Server.objects.filter(team=team).values_list("pk", flat=True))
    asked = checked(
        lambda: owner_client.post(f"{BASE}host-keys/fetch/", {"server": [str(i) for i in ids]})
    )
    assert asked.status_code == 302

    page = text(owner_client.get(f"{BASE}host-keys/"))
    rows = dict(zip(["alpha", "beta", "gone"], rows_of(page, "host-keys"), strict=True))
    assert first.fingerprint in rows["alpha"] and second.fingerprint in rows["beta"]
    assert "Connection refused" in rows["gone"]
    assert owner_client.get(f"{BASE}host-keys/fetch/")["HX-Refresh"] == "true"  # none pending

    alpha, beta = Server.objects.get(name="alpha"), Server.objects.get(name="beta")
    response = owner_client.post(
        f"{BASE}host-keys/pin/",
        {"pin": [f"{alpha.pk}:{first.fingerprint}", f"{beta.pk}:SHA256:not-what-was-shown"]},
        follow=True,
    )

    page = text(response)
    assert "Pinned the host keys of 1 server." in page
    assert "beta: The fingerprint you confirmed is not the one the host presented" in page
    alpha.refresh_from_db()
    beta.refresh_from_db()
    assert alpha.host_key_fingerprints == [first.fingerprint]
    assert not beta.is_pinned
    assert AuditEvent.objects.filter(verb="server.host_key_pinned", target_id=str(alpha.pk))
    # the pinned server left the page; the others are still there
    assert [r.split()[0] for r in rows_of(page, "host-keys")] == ["beta", "gone"]


def test_the_pin_page_says_so_when_every_server_is_pinned(owner_client):
    assert "Every server is pinned" in text(owner_client.get(f"{BASE}host-keys/"))


# --- bulk tags ---------------------------------------------------------------------------------


def test_an_admin_adds_and_removes_a_tag_on_the_ticked_servers(owner_client, make_server):
    web1 = make_server(name="web-1", tags=["web"])
    web2 = make_server(name="web-2", host="web-2.example.com", tags=["web", "old"])
    db = make_server(name="db-1", host="db-1.example.com", tags=["db"])

    response = owner_client.post(
        f"{BASE}tags/",
        {"server": [web1.pk, web2.pk], "add": "eu", "remove": "old", "query": "tag=web&sort=-name"},
    )

    assert response["Location"] == f"{BASE}?tag=web&sort=-name"
    page = text(owner_client.get(response["Location"]))
    assert "Changed the tags of 2 servers." in page
    assert sorted(web1.tags.values_list("name", flat=True)) == ["eu", "web"]
    assert sorted(web2.tags.values_list("name", flat=True)) == ["eu", "web"]
    assert list(db.tags.values_list("name", flat=True)) == ["db"]
    changes = [e.data["changes"]["tags"] for e in AuditEvent.objects.filter(verb="server.updated")]
    assert [["old", "web"], ["eu", "web"]] in changes and [["web"], ["eu", "web"]] in changes


def test_a_bad_tag_or_no_server_is_said_and_nothing_changes(owner_client, make_server):
    web1 = make_server(name="web-1", tags=["web"])

    bad = owner_client.post(f"{BASE}tags/", {"server": [web1.pk], "add": "no spaces!"}, follow=True)
    none = owner_client.post(f"{BASE}tags/", {"add": "eu"}, follow=True)

    assert "is not a valid tag" in text(bad)
    assert "Choose at least one server." in text(none)
    assert list(web1.tags.values_list("name", flat=True)) == ["web"]


def test_another_teams_servers_are_not_touched_by_bulk_tags(owner_client, user):
    rivals = TeamFactory(slug="rivals")
    foreign = services.server_create(
        team=rivals,
        actor=member(rivals, role=Role.OWNER),
        name="theirs",
        host="theirs.example.com",
        username="x",
    )

    response = owner_client.post(
        f"{BASE}tags/", {"server": [foreign.pk], "add": "mine"}, follow=True
    )

    assert "None of these servers is in this team." in text(response)
    assert not foreign.tags.exists()


# --- server list -------------------------------------------------------------------------------


def test_the_list_filters_by_pin_state_and_sorts(owner_client, make_server, user):
    a = make_server(name="a-server", host="a.example.com")
    make_server(name="b-server", host="b.example.com")
    services.server_host_key_paste(
        server=a,
        actor=user,
        text="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    )

    pinned = text(owner_client.get(f"{BASE}?pin=pinned"))
    unpinned = text(owner_client.get(f"{BASE}?pin=unpinned"))
    backwards = text(owner_client.get(f"{BASE}?sort=-name"))

    assert "a-server" in pinned and "b-server" not in pinned
    assert "b-server" in unpinned and "a-server" not in unpinned
    assert backwards.index("b-server") < backwards.index("a-server")
    assert 'option value="-name" selected' in backwards


def test_markup_in_an_inventory_is_shown_as_text(owner_client):
    csv = 'name,address,user,tags\n"<b>web</b><script>x()</script>",192.0.2.1,deploy,web\n'

    page = text(owner_client.post(f"{BASE}import/", {"text": csv, "format": "csv"}))

    assert "<b>web</b>" not in page and "<script>x()" not in page
    assert "&lt;b&gt;web&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;" in page


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_pin_page_and_the_filtered_list_cost_the_same_queries_for_3_or_30_servers(
    owner_client, team, user
):
    def add(count: int, start: int) -> None:
        rows = "".join(
            f"fleet-{n},192.0.2.{n},deploy,web db\n" for n in range(start, start + count)
        )
        services.servers_import(team=team, actor=user, text="name,address,user,tags\n" + rows)

    owner_client.get(BASE)  # the first request of a session records the session
    add(3, 1)
    few = [
        _queries(owner_client, f"{BASE}{url}")
        for url in ("host-keys/", "?tag=web&pin=unpinned&sort=-last_check")
    ]
    add(27, 4)
    many = [
        _queries(owner_client, f"{BASE}{url}")
        for url in ("host-keys/", "?tag=web&pin=unpinned&sort=-last_check")
    ]

    assert many == few
