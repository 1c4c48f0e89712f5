"""Servers in the REST API: /api/v1/teams/{slug}/servers and /ssh-key."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.servers import services
from pipetower.servers.models import Server, TeamSshKey
from tests.api.helpers import Api
from tests.factories import TeamFactory, member

SERVERS = "/teams/engines/servers"


def api_for(user: Any, scope: str = "write") -> Api:
    return Api(Client(), api_token_create(user=user, name="script", scope=scope)[1])


@pytest.fixture
def api(user, team) -> Api:
    return api_for(user)


def new_server(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "web-1",
        "host": "web-1.example.com",
        "username": "deploy",
        "tags": ["web"],
    }
    body.update(overrides)
    return body


def test_creating_a_server_answers_it_without_secrets(api, team):
    response = api.post(
        SERVERS, new_server(auth_method="password", password="api-secret-77", port=2222)
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["address"] == "deploy@web-1.example.com:2222"
    assert body["tags"] == ["web"]
    assert body["host_key"]["pinned"] is False
    assert "api-secret-77" not in response.content.decode()
    assert "password" not in body
    assert Server.objects.get(team=team).password == "api-secret-77"


def test_invalid_input_gets_field_errors(api):
    bad_host = api.post(SERVERS, new_server(host="deploy@web-1"))
    bad_port = api.post(SERVERS, new_server(port=70000))

    assert bad_host.status_code == 400
    assert bad_host.json()["error"]["details"][0]["field"] == "host"
    assert "not a valid host name" in bad_host.json()["error"]["message"]
    assert bad_port.status_code == 422
    assert bad_port.json()["error"]["details"][0]["field"] == "port"


def test_a_wrong_passphrase_is_a_field_error(api, keyfiles):
    key_text = keyfiles("ed25519", passphrase="right")

    response = api.post(
        SERVERS, new_server(auth_method="private_key", private_key=key_text, passphrase="nope")
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "passphrase"
    assert response.json()["error"]["details"][0]["field"] == "passphrase"


def test_the_list_is_paginated(api, make_server):
    for number in range(3):
        make_server(name=f"s{number}", host=f"s{number}.example.com")

    body = api.get(f"{SERVERS}?page_size=2").json()

    assert body["count"] == 3
    assert [item["name"] for item in body["items"]] == ["s0", "s1"]
    assert body["next"] and body["previous"] is None
    assert [i["name"] for i in api.get(f"{SERVERS}?page=2&page_size=2").json()["items"]] == ["s2"]


def test_detail_update_and_delete(api, make_server):
    server = make_server()

    assert api.get(f"{SERVERS}/{server.pk}").json()["name"] == "web-1"
    updated = api.patch(f"{SERVERS}/{server.pk}", {"name": "web-2", "tags": ["db", "eu"]})
    assert updated.status_code == 200
    assert updated.json()["name"] == "web-2" and updated.json()["tags"] == ["db", "eu"]
    assert updated.json()["host"] == "web-1.example.com"
    assert api.delete(f"{SERVERS}/{server.pk}").status_code == 204
    assert not Server.objects.exists()


def _check(api, checked, server_id: int) -> dict:
    asked = checked(lambda: api.post(f"{SERVERS}/{server_id}/check"))
    assert asked.status_code == 202, asked.content
    result = api.get(f"{SERVERS}/{server_id}/check").json()
    assert result["status"] == "done"
    return result


def test_check_then_pin_then_check_again(api, sshd, team_key, make_server, checked):
    sshd.authorize(team_key.public_key)
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)

    first = _check(api, checked, server.pk)
    assert first["ok"] is False and first["error"] == "host_key_unknown"
    assert first["offered_fingerprint"] == sshd.fingerprint

    pinned = api.post(
        f"{SERVERS}/{server.pk}/host-key/pin", {"fingerprint": first["offered_fingerprint"]}
    )
    assert pinned.status_code == 200
    assert pinned.json()["host_key"]["fingerprints"] == [sshd.fingerprint]

    second = _check(api, checked, server.pk)
    assert second["ok"] is True, second["message"]
    assert second["hostname"] and "Linux" in second["os"]
    assert second["uptime_seconds"] is not None


def test_a_changed_host_key_needs_replace_to_re_pin(api, sshd, pinned_server, checked):
    old = sshd.fingerprint
    new = sshd.regenerate_host_key_and_restart()

    check = _check(api, checked, pinned_server.pk)
    assert check["error"] == "host_key_changed"
    assert old in check["message"] and new in check["message"]
    assert check["server"]["host_key"]["changed"] is True

    refused = api.post(f"{SERVERS}/{pinned_server.pk}/host-key/pin", {"fingerprint": new})
    assert refused.status_code == 409

    repinned = api.post(
        f"{SERVERS}/{pinned_server.pk}/host-key/pin", {"fingerprint": new, "replace": True}
    )
    assert repinned.json()["host_key"]["fingerprints"] == [new]
    assert AuditEvent.objects.filter(verb="server.host_key_repinned").exists()


def test_pasting_known_hosts_through_the_api(api, sshd, make_server):
    server = make_server(host=sshd.host, port=sshd.port)

    response = api.post(
        f"{SERVERS}/{server.pk}/host-key/known-hosts", {"known_hosts": sshd.host_key_line}
    )

    assert response.json()["host_key"]["source"] == "pasted"


def test_reading_the_team_key_creates_nothing(team):
    reader = api_for(member(team, "viewer"), scope="read")

    response = reader.get("/teams/engines/ssh-key")

    assert response.status_code == 200
    assert response.json() == {"current": None, "next": None}
    assert not TeamSshKey.objects.filter(team=team).exists()
    assert not AuditEvent.objects.filter(verb="server.team_key_created").exists()


def test_an_admin_creates_the_team_key_with_a_post_once(api, team):
    first = api.post("/teams/engines/ssh-key")
    again = api.post("/teams/engines/ssh-key")

    assert first.status_code == again.status_code == 200
    key = TeamSshKey.objects.get(team=team)
    assert first.json()["current"]["fingerprint"] == key.fingerprint
    assert again.json() == first.json()
    assert AuditEvent.objects.filter(verb="server.team_key_created").count() == 1


def test_operators_and_read_tokens_cannot_create_the_team_key(team, user):
    operator = api_for(member(team, "operator"))
    reader = api_for(user, scope="read")

    assert operator.post("/teams/engines/ssh-key").status_code == 403
    assert reader.post("/teams/engines/ssh-key").status_code == 403
    assert not TeamSshKey.objects.filter(team=team).exists()


def test_the_team_key_is_public_only(api, team):
    api.post("/teams/engines/ssh-key")
    body = api.get("/teams/engines/ssh-key").json()

    key = TeamSshKey.objects.get(team=team)
    assert body["current"]["authorized_keys_line"] == key.public_key
    assert body["current"]["fingerprint"] == key.fingerprint
    assert body["next"] is None
    assert "PRIVATE" not in str(body)


def test_viewers_read_but_cannot_add_and_operators_cannot_pin(team, make_server, sshd, checked):
    server = make_server(host=sshd.host, port=sshd.port)
    viewer = api_for(member(team, "viewer"))
    operator = api_for(member(team, "operator"))

    assert viewer.get(SERVERS).status_code == 200
    assert viewer.post(SERVERS, new_server(name="x")).status_code == 403
    assert viewer.post(f"{SERVERS}/{server.pk}/check").status_code == 403
    assert _check(operator, checked, server.pk)["offered_fingerprint"]
    refused = operator.post(
        f"{SERVERS}/{server.pk}/host-key/pin", {"fingerprint": sshd.fingerprint}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


def test_a_read_token_cannot_change_servers(user, team):
    reader = api_for(user, scope="read")

    assert reader.post(SERVERS, new_server()).status_code == 403
    assert not Server.objects.exists()


def test_another_teams_servers_are_not_found(api):
    other = TeamFactory(slug="rivals")
    owner = member(other, role="owner")
    foreign = services.server_create(
        team=other, actor=owner, name="theirs", host="x.example.com", username="u"
    )

    assert api.get("/teams/rivals/servers").status_code == 404
    assert api.get(f"{SERVERS}/{foreign.pk}").status_code == 404
    assert api.delete(f"{SERVERS}/{foreign.pk}").status_code == 404
    assert Server.objects.filter(pk=foreign.pk).exists()


# --- fleets: import and bulk tags ----------------------------------------------------------------

INVENTORY = """\
[web]
web[1:2].example.com
web-3 ansible_host=192.0.2.33 ansible_port=2222

[web:vars]
ansible_user=deploy

[db]
db-1 ansible_host=192.0.2.40
db-2 ansible_host=192.0.2.40
"""


def test_an_import_dry_run_checks_every_line_and_adds_nothing(api, team):
    response = api.post(f"{SERVERS}/import", {"text": INVENTORY, "dry_run": True})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["format"] == "ansible_ini" and body["dry_run"] is True
    rows = {row["name"]: row for row in body["rows"]}
    assert rows["web-3"] == {
        "line": 3,
        "name": "web-3",
        "host": "192.0.2.33",
        "port": "2222",
        "user": "deploy",
        "tags": ["web"],
        "ok": True,
        "errors": [],
    }
    assert rows["db-1"]["errors"] == [
        "No SSH user: set one in the inventory (ansible_user, User or the user column) or "
        "give a default user."
    ]
    assert body["created"] == []
    assert not Server.objects.filter(team=team).exists()


def test_an_import_adds_the_valid_servers_and_names_the_duplicates(api, team):
    response = api.post(
        f"{SERVERS}/import", {"text": INVENTORY, "format": "ansible_ini", "default_user": "root"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [s["name"] for s in body["created"]] == [
        "web1.example.com",
        "web2.example.com",
        "web-3",
        "db-1",
    ]
    assert body["created"][2]["address"] == "deploy@192.0.2.33:2222"
    db2 = next(row for row in body["rows"] if row["name"] == "db-2")
    assert db2["errors"] == ["Duplicate: root@192.0.2.40:22 is already 'db-1' on line 9."]
    assert Server.objects.filter(team=team).count() == 4
    # importing the same file again: every line is now a duplicate of a server
    again = api.post(f"{SERVERS}/import", {"text": INVENTORY, "default_user": "root"})
    assert again.status_code == 400
    assert "every line has an error" in again.json()["error"]["message"]


def test_an_import_refuses_an_unreadable_file_and_an_operator(api, team, operator):
    bad = api.post(f"{SERVERS}/import", {"text": "web-1,192.0.2.1\n", "format": "csv"})
    refused = api_for(operator).post(f"{SERVERS}/import", {"text": INVENTORY})

    assert bad.status_code == 400
    assert "name,address,port,user,tags" in bad.json()["error"]["message"]
    assert refused.status_code == 403
    assert not Server.objects.filter(team=team).exists()


def test_tags_are_added_and_removed_in_bulk(api, team, make_server):
    web1 = make_server(name="web-1", tags=["web", "old"])
    web2 = make_server(name="web-2", host="web-2.example.com", tags=["web"])

    response = api.post(
        f"{SERVERS}/tags", {"server_ids": [web1.pk, web2.pk], "add": ["eu"], "remove": ["old"]}
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"changed": [web1.pk, web2.pk], "unchanged": []}
    assert sorted(web1.tags.values_list("name", flat=True)) == ["eu", "web"]
    assert sorted(web2.tags.values_list("name", flat=True)) == ["eu", "web"]
    listed = api.get(f"{SERVERS}?tag=eu&sort=-name").json()
    assert [s["name"] for s in listed["items"]] == ["web-2", "web-1"]


def test_the_list_filters_by_pin_state(api, make_server, pinned_server):
    make_server(name="unpinned")

    pinned = api.get(f"{SERVERS}?pin=pinned").json()["items"]
    unpinned = api.get(f"{SERVERS}?pin=unpinned").json()["items"]
    bad = api.get(f"{SERVERS}?pin=maybe")

    assert [s["name"] for s in pinned] == ["live"]
    assert [s["name"] for s in unpinned] == ["unpinned"]
    assert bad.status_code == 422


def test_host_keys_are_fetched_and_pinned_in_bulk(api, team, sshd, free_port, make_server, checked):
    live = make_server(name="live", host=sshd.host, port=sshd.port, username=sshd.user)
    gone = make_server(name="gone", host="127.0.0.1", port=free_port, username="u")

    asked = checked(
        lambda: api.post(f"{SERVERS}/host-keys/fetch", {"server_ids": [live.pk, gone.pk]})
    )

    assert asked.status_code == 202, asked.content
    assert sorted(asked.json()["requested"]) == sorted([live.pk, gone.pk])
    live_body = api.get(f"{SERVERS}/{live.pk}").json()
    assert live_body["host_key"]["offered_fingerprint"] == sshd.fingerprint
    assert api.get(f"{SERVERS}/{gone.pk}").json()["last_check"]["error"] == "refused"

    pinned = api.post(
        f"{SERVERS}/host-keys/pin",
        {"fingerprints": {str(live.pk): sshd.fingerprint, str(gone.pk): "SHA256:never-shown"}},
    )

    assert pinned.status_code == 200, pinned.content
    body = pinned.json()
    assert body["pinned"] == [live.pk]
    assert body["refused"] == [
        {
            "id": gone.pk,
            "message": "There is no presented host key to confirm: test the connection first.",
        }
    ]
    live.refresh_from_db()
    assert live.host_key_fingerprints == [sshd.fingerprint]
