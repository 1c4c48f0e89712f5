"""Server services: validation, credentials, pinning, trust on first use, key rotation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import Http404

from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.servers import selectors, services
from pipetower.servers.keys import fingerprint_of_line, import_uploaded_key
from pipetower.servers.models import Server, TeamSshKey
from pipetower.servers.services import Credentials
from pipetower.servers.ssh import connection_spec_for
from tests.factories import TeamFactory, member

# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("web-1.example.com", "web-1.example.com"),
        ("WEB-1.Example.COM.", "web-1.example.com"),
        ("localhost", "localhost"),
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8::10", "2001:db8::10"),
        ("[2001:DB8:0:0::10]", "2001:db8::10"),
        ("::1", "::1"),
    ],
)
def test_hosts_may_be_dns_names_ipv4_or_ipv6(given, stored):
    assert services.normalise_host(given) == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "Enter the server's host name"),
        ("deploy@web-1", "not a valid host name"),
        ("web-1:22", "not a valid IPv6 address"),
        ("https://web-1.example.com", "not a valid IPv6 address"),
        ("web_1.example.com", "not a valid host name"),
        ("-web.example.com", "not a valid host name"),
        ("999.1.1.1", "not a valid IPv4 address"),
        ("10.0.0", "not a valid IPv4 address"),
        ("2001:db8::zz", "not a valid IPv6 address"),
        ("a" * 64 + ".example.com", "not a valid host name"),
        ("web 1", "not a valid host name"),
    ],
)
def test_invalid_hosts_are_refused_with_a_reason(given, message):
    with pytest.raises(ServiceError) as caught:
        services.normalise_host(given)

    assert message in caught.value.message
    assert caught.value.field == "host"


@pytest.mark.parametrize("port", [0, 65536, -1, "ssh", None])
def test_ports_outside_1_to_65535_are_refused(port):
    with pytest.raises(ServiceError, match="from 1 to 65535"):
        services.validate_port(port)


def test_tags_are_split_lowered_and_deduplicated():
    assert services.parse_tags("web, DB  eu-west,web") == ["web", "db", "eu-west"]


def test_a_tag_with_odd_characters_is_refused():
    with pytest.raises(ServiceError, match="not a valid tag"):
        services.parse_tags("web, prod/eu")


# --- creating and changing ---------------------------------------------------------------


def test_adding_a_server_is_audited_and_creates_the_team_key(team, make_server):
    server = make_server(tags="web, eu")

    assert TeamSshKey.objects.filter(team=team, state="current").count() == 1
    assert sorted(server.tags.values_list("name", flat=True)) == ["eu", "web"]
    event = AuditEvent.objects.get(verb="server.created")
    assert event.team == team and event.target_id == str(server.pk)
    assert event.data["address"] == "deploy@web-1.example.com:22"


def test_the_team_key_comment_names_the_team(team, team_key):
    assert team_key.public_key.startswith("ssh-ed25519 AAAA")
    assert team_key.public_key.endswith(" pipetower-engines")


def test_two_servers_in_a_team_cannot_share_a_name(make_server):
    make_server(name="web-1")

    with pytest.raises(Conflict) as caught:
        make_server(name="web-1", host="other.example.com")

    assert caught.value.field == "name"


def test_an_uploaded_key_is_stored_encrypted_and_never_audited(team, make_server, keyfiles):
    text = keyfiles("ed25519", passphrase="passphrase-917")
    server = make_server(
        credentials=Credentials("private_key", private_key=text, passphrase="passphrase-917")
    )

    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM servers_server WHERE id = %s", [server.pk])
        (raw,) = cursor.fetchone()
    assert raw.startswith("pt2:") and "PRIVATE KEY" not in raw
    assert server.private_key_fingerprint.startswith("SHA256:")
    audit = str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert "PRIVATE" not in audit and "passphrase-917" not in audit


def test_a_wrong_passphrase_is_a_field_error(make_server, keyfiles):
    text = keyfiles("ed25519", passphrase="right")

    with pytest.raises(ServiceError) as caught:
        make_server(credentials=Credentials("private_key", private_key=text, passphrase="wrong"))

    assert caught.value.field == "passphrase"
    assert Server.objects.count() == 0


def test_a_password_server_needs_a_password(make_server):
    with pytest.raises(ServiceError) as caught:
        make_server(credentials=Credentials("password"))

    assert caught.value.field == "password"


def test_editing_without_new_secrets_keeps_the_stored_ones(make_server, user):
    server = make_server(credentials=Credentials("password", password="s3cret"))

    services.server_update(
        server=server,
        actor=user,
        name="renamed",
        host=server.host,
        port=server.port,
        username="root",
        tags="db",
        credentials=Credentials("password"),
    )

    server.refresh_from_db()
    assert server.password == "s3cret"
    assert server.name == "renamed"
    event = AuditEvent.objects.get(verb="server.updated")
    assert event.data["changes"]["username"] == ["deploy", "root"]
    assert event.data["credentials_changed"] == []


def test_moving_a_server_to_another_host_drops_its_pin(pinned_server, user):
    services.server_update(
        server=pinned_server,
        actor=user,
        name=pinned_server.name,
        host="elsewhere.example.com",
        port=pinned_server.port,
        username=pinned_server.username,
        tags=(),
    )

    pinned_server.refresh_from_db()
    assert not pinned_server.is_pinned
    assert AuditEvent.objects.get(verb="server.updated").data["host_key_unpinned"] is True


def test_viewers_and_operators_cannot_add_servers(team, viewer, operator):
    for actor in (viewer, operator):
        with pytest.raises(NotAllowed):
            services.server_create(
                team=team, actor=actor, name="x", host="x.example.com", username="u"
            )


def test_deleting_a_server_is_audited(make_server, user):
    server = make_server()

    services.server_delete(server=server, actor=user)

    assert not Server.objects.exists()
    assert AuditEvent.objects.get(verb="server.deleted").target_label == "web-1"


# --- selectors ---------------------------------------------------------------


def test_targets_are_the_union_of_ids_and_tags_within_the_team(team, make_server, user):
    web = make_server(name="web", tags="web")
    db = make_server(name="db", tags="db")
    both = make_server(name="both", tags="web, db")
    make_server(name="cache", tags="cache")
    other_team = TeamFactory()
    owner = member(other_team, role="owner")
    foreign = services.server_create(
        team=other_team, actor=owner, name="web", host="x.example.com", username="u", tags="web"
    )

    chosen = selectors.servers_for_targets(team=team, server_ids=[db.pk, foreign.pk], tags=["web"])

    assert list(chosen) == [both, db, web]
    assert list(selectors.servers_for_targets(team=team)) == []


def test_another_teams_server_is_not_found(team, user, make_server):
    other_team = TeamFactory()
    owner = member(other_team, role="owner")
    foreign = services.server_create(
        team=other_team, actor=owner, name="secret", host="x.example.com", username="u"
    )
    with pytest.raises(Http404):
        selectors.server_get_for_user(user=user, team=team, server_id=foreign.pk)
    with pytest.raises(Http404):
        selectors.server_get_for_user(user=user, team=other_team, server_id=foreign.pk)


# --- connection specs ---------------------------------------------------------------


def test_a_spec_carries_decrypted_credentials_pins_and_the_team_policy(pinned_server, team):
    services.team_server_settings_update(
        team=team, actor=team.memberships.get().user, trust_on_first_use=True
    )
    spec = connection_spec_for(Server.objects.get(pk=pinned_server.pk))

    assert spec.server_id == pinned_server.pk
    assert (spec.host, spec.port, spec.username) == (
        pinned_server.host,
        pinned_server.port,
        pinned_server.username,
    )
    assert len(spec.client_keys) == 1 and spec.password is None
    assert spec.pinned_host_keys == pinned_server.pinned_host_keys
    assert spec.trust_on_first_use is True


# --- connection checks and pinning ---------------------------------------------------------------


def test_a_check_of_a_pinned_server_records_hostname_os_and_uptime(pinned_server, user):
    outcome = services.server_check(server=pinned_server, actor=user)

    assert outcome.ok, outcome.message
    pinned_server.refresh_from_db()
    assert pinned_server.last_check_ok is True
    assert pinned_server.remote_hostname
    assert pinned_server.remote_os.startswith(outcome.facts.pretty_name)
    assert "Linux" in pinned_server.remote_os
    assert pinned_server.remote_uptime_seconds is not None


def test_an_unpinned_server_only_has_its_host_key_fetched(sshd, team_key, make_server, user):
    # Not authorized: a login attempt would fail with auth_failed, a fetch does not log in.
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)

    outcome = services.server_check(server=server, actor=user)

    assert outcome.error_kind == "host_key_unknown"
    assert outcome.offered_fingerprint == sshd.fingerprint
    assert sshd.fingerprint in outcome.message
    server.refresh_from_db()
    assert server.offered_host_key == sshd.host_key_line
    assert not server.is_pinned


def test_an_admin_pins_the_presented_key_by_confirming_its_fingerprint(
    sshd, team_key, make_server, user, admin
):
    sshd.authorize(team_key.public_key)
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)
    services.server_check(server=server, actor=user)

    services.server_host_key_pin(server=server, actor=admin, fingerprint=sshd.fingerprint)

    server.refresh_from_db()
    assert server.pinned_host_keys == (sshd.host_key_line,)
    assert server.host_key_pin_source == "confirmed"
    assert server.host_key_pinned_by == admin
    event = AuditEvent.objects.get(verb="server.host_key_pinned")
    assert event.actor == admin and event.data["fingerprint"] == sshd.fingerprint
    assert services.server_check(server=server, actor=user).ok


def test_a_fingerprint_that_is_not_the_presented_one_is_not_pinned(sshd, make_server, user):
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)
    services.server_check(server=server, actor=user)

    with pytest.raises(Conflict, match="not the one the host presented"):
        services.server_host_key_pin(server=server, actor=user, fingerprint="SHA256:nope")

    server.refresh_from_db()
    assert not server.is_pinned


def test_an_operator_can_test_connections_but_cannot_pin(sshd, make_server, user, operator):
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)
    services.server_check(server=server, actor=operator)

    with pytest.raises(NotAllowed):
        services.server_host_key_pin(server=server, actor=operator, fingerprint=sshd.fingerprint)
    with pytest.raises(NotAllowed):
        services.server_host_key_paste(server=server, actor=operator, text=sshd.host_key_line)


def test_a_viewer_cannot_test_connections(pinned_server, viewer):
    with pytest.raises(NotAllowed):
        services.server_check(server=pinned_server, actor=viewer)


def test_trust_on_first_use_pins_on_the_first_check_and_audits_it(
    sshd, team, team_key, make_server, user, operator
):
    sshd.authorize(team_key.public_key)
    services.team_server_settings_update(team=team, actor=user, trust_on_first_use=True)
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)

    outcome = services.server_check(server=server, actor=operator)

    assert outcome.ok, outcome.message
    assert outcome.first_use_key == sshd.host_key_line
    server.refresh_from_db()
    assert server.pinned_host_keys == (sshd.host_key_line,)
    assert server.host_key_pin_source == "trust_on_first_use"
    event = AuditEvent.objects.get(verb="server.host_key_pinned")
    assert event.data["how"] == "trust_on_first_use"
    assert event.data["fingerprint"] == sshd.fingerprint
    assert AuditEvent.objects.filter(verb="server.settings_changed").exists()


def test_trust_on_first_use_pins_only_once(pinned_server, team, user):
    services.team_server_settings_update(team=team, actor=user, trust_on_first_use=True)
    other_key = pinned_server.pinned_host_keys[0].replace("A", "B", 1)

    assert not services.server_host_key_trust_first_use(
        server_id=pinned_server.pk, key_line=other_key
    )
    pinned_server.refresh_from_db()
    assert pinned_server.host_key_pin_source == "pasted"


def test_a_changed_host_key_stops_the_server_until_an_admin_re_pins(
    sshd, pinned_server, user, admin
):
    old = sshd.fingerprint
    new = sshd.regenerate_host_key_and_restart()

    outcome = services.server_check(server=pinned_server, actor=user)

    assert outcome.error_kind == "host_key_changed"
    assert old in outcome.message and new in outcome.message
    pinned_server.refresh_from_db()
    assert pinned_server.host_key_changed
    assert pinned_server.offered_host_key_fingerprint == new
    # A plain pin does not silently replace the old key:
    with pytest.raises(Conflict, match="Re-pinning replaces it"):
        services.server_host_key_pin(server=pinned_server, actor=admin, fingerprint=new)

    services.server_host_key_pin(server=pinned_server, actor=admin, fingerprint=new, replace=True)

    event = AuditEvent.objects.get(verb="server.host_key_repinned")
    assert event.data["previous"] == [old] and event.data["fingerprint"] == new
    assert services.server_check(server=pinned_server, actor=user).ok


def test_pasting_a_known_hosts_line_pins_it(sshd, make_server, user):
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)

    services.server_host_key_paste(
        server=server, actor=user, text=f"[{sshd.host}]:{sshd.port} {sshd.host_key_line}"
    )

    server.refresh_from_db()
    assert server.host_key_fingerprints == [sshd.fingerprint]
    assert AuditEvent.objects.get(verb="server.host_key_pinned").data["how"] == "pasted"


def test_a_password_server_logs_in(sshd, sshd_password, make_server, user):
    server = make_server(
        host=sshd.host,
        port=sshd.port,
        username=sshd.user,
        credentials=Credentials("password", password=sshd_password),
    )
    services.server_host_key_paste(server=server, actor=user, text=sshd.host_key_line)

    assert services.server_check(server=server, actor=user).ok


def test_an_uploaded_key_with_a_passphrase_logs_in(sshd, make_server, user, keyfiles):
    text = keyfiles("ed25519", passphrase="pw-42")
    server = make_server(
        host=sshd.host,
        port=sshd.port,
        username=sshd.user,
        credentials=Credentials("private_key", private_key=text, passphrase="pw-42"),
    )
    sshd.authorize(import_uploaded_key(text, "pw-42").public_line)
    services.server_host_key_paste(server=server, actor=user, text=sshd.host_key_line)

    assert services.server_check(server=server, actor=user).ok


def test_a_key_the_server_does_not_accept_is_reported_as_a_failed_login(sshd, make_server, user):
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)
    services.server_host_key_paste(server=server, actor=user, text=sshd.host_key_line)

    outcome = services.server_check(server=server, actor=user)

    assert outcome.error_kind == "auth_failed"
    server.refresh_from_db()
    assert server.last_check_ok is False and server.last_check_error == "auth_failed"


# --- team key rotation ---------------------------------------------------------------


def test_during_a_rotation_both_keys_log_in_and_finishing_retires_the_old_one(
    sshd_fleet, team, team_key, make_server, user
):
    old_only, new_only = sshd_fleet(2)
    old_only.authorize(team_key.public_key)
    servers = []
    for number, host in enumerate((old_only, new_only)):
        server = make_server(name=f"s{number}", host=host.host, port=host.port, username=host.user)
        services.server_host_key_paste(server=server, actor=user, text=host.host_key_line)
        servers.append(server)

    new_key = services.team_ssh_key_rotation_start(team=team, actor=user)
    new_only.authorize(new_key.public_key)

    assert [services.server_check(server=s, actor=user).ok for s in servers] == [True, True]

    services.team_ssh_key_rotation_finish(team=team, actor=user)

    team_key.refresh_from_db()
    assert team_key.state == "retired" and team_key.private_key == ""
    assert [services.server_check(server=s, actor=user).ok for s in servers] == [False, True]
    assert AuditEvent.objects.get(verb="server.team_key_rotated").data == {
        "fingerprint": new_key.fingerprint,
        "retired": team_key.fingerprint,
    }


def test_only_one_rotation_at_a_time_and_only_admins_rotate(team, team_key, user, operator):
    services.team_ssh_key_rotation_start(team=team, actor=user)

    with pytest.raises(Conflict, match="already in progress"):
        services.team_ssh_key_rotation_start(team=team, actor=user)
    with pytest.raises(NotAllowed):
        services.team_ssh_key_rotation_finish(team=team, actor=operator)


def test_cancelling_a_rotation_keeps_the_current_key(team, team_key, user):
    services.team_ssh_key_rotation_start(team=team, actor=user)

    services.team_ssh_key_rotation_cancel(team=team, actor=user)

    assert list(TeamSshKey.objects.filter(team=team).values_list("state", flat=True)) == ["current"]
    assert fingerprint_of_line(team_key.public_key) == team_key.fingerprint
