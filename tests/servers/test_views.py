"""The server pages under /teams/<slug>/servers/, as a signed-in person sees them."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from pipetower.audit.models import AuditEvent
from pipetower.servers import services
from pipetower.servers.keys import import_uploaded_key
from pipetower.servers.models import Server, TeamSshKey
from pipetower.servers.services import Credentials
from tests.factories import TeamFactory, member

BASE = "/teams/engines/servers/"


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "web-1",
        "host": "web-1.example.com",
        "port": "22",
        "username": "deploy",
        "tags": "web, eu",
        "auth_method": "team_key",
    }
    data.update(overrides)
    return data


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


# --- list ---------------------------------------------------------------------------------------


def test_the_empty_list_offers_the_first_server_and_the_teams_public_key(
    owner_client, team, team_key
):
    response = owner_client.get(BASE)

    assert response.status_code == 200
    page = text(response)
    assert "Add your first server" in page
    key = TeamSshKey.objects.get(team=team, state="current")
    assert key.public_key in page
    assert key.public_key.endswith(" pipetower-engines")
    assert 'data-copy="authorized-keys-empty"' in page


def test_the_team_nav_links_to_servers(owner_client):
    assert f'href="{BASE}"' in text(owner_client.get(BASE))


def test_the_list_shows_tags_pin_state_and_last_check(owner_client, make_server, pinned_server):
    make_server(name="db-1", tags="db")

    page = text(owner_client.get(BASE))

    assert "db-1" in page and "live" in page
    assert 'href="?tag=db"' in page
    assert "Not pinned" in page and "Pinned" in page
    assert "Never" in page


def test_the_list_filters_by_tag(owner_client, make_server):
    make_server(name="db-1", tags="db")
    make_server(name="web-9", tags="web")

    page = text(owner_client.get(BASE, {"tag": "db"}))

    assert "db-1" in page and "web-9" not in page


def test_the_list_is_paginated_with_a_constant_number_of_queries(
    owner_client, make_server, django_assert_max_num_queries
):
    for number in range(30):
        make_server(name=f"s{number:02d}", host=f"s{number}.example.com", tags="web, db")

    owner_client.get(BASE)  # the first request also records the session (and the nav's team)
    with django_assert_max_num_queries(14):
        first = owner_client.get(BASE)
    second = owner_client.get(BASE, {"page": 2})

    assert "s00" in text(first) and "s29" not in text(first)
    assert "Page 1 of 2" in text(first)
    assert "s29" in text(second)


# --- adding -------------------------------------------------------------------------------------


def test_an_admin_adds_a_server_with_the_team_key(team, admin):
    client = client_for(admin)

    response = client.post(BASE + "new/", form_data())

    server = Server.objects.get(team=team)
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}{server.pk}/"
    assert server.address == "deploy@web-1.example.com:22"
    assert sorted(server.tags.values_list("name", flat=True)) == ["eu", "web"]
    assert AuditEvent.objects.filter(verb="server.created", actor=admin).exists()


def test_the_add_form_shows_the_team_key_and_focuses_the_name(owner_client, team, team_key):
    page = text(owner_client.get(BASE + "new/"))

    assert team_key.public_key in page
    assert re.search(r'<input[^>]*name="name"[^>]*autofocus', page)


def test_an_ipv6_host_is_accepted_and_stored_without_brackets(owner_client, team):
    response = owner_client.post(BASE + "new/", form_data(host="[2001:DB8::10]"))

    assert response.status_code == 302
    server = Server.objects.get(team=team)
    assert server.host == "2001:db8::10"
    assert server.address == "deploy@[2001:db8::10]:22"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("host", "deploy@web-1", "not a valid host name"),
        ("host", "web-1.example.com:22", "not a valid IPv6 address"),
        ("host", "300.1.2.3", "not a valid IPv4 address"),
        ("port", "0", "from 1 to 65535"),
        ("port", "65536", "from 1 to 65535"),
        ("port", "ssh", "from 1 to 65535"),
        ("username", "de ploy", "Enter the SSH user name"),
        ("tags", "web, prod/eu", "not a valid tag"),
        ("name", "", "This field is required"),
    ],
)
def test_invalid_fields_are_shown_next_to_the_field(owner_client, team, field, value, message):
    response = owner_client.post(BASE + "new/", form_data(**{field: value}))

    assert response.status_code == 400
    page = text(response)
    assert message in page
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page) or re.search(
        rf'aria-invalid="true"[^>]*name="{field}"', page
    )
    assert not Server.objects.exists()


def test_a_duplicate_name_is_a_field_error(owner_client, make_server):
    make_server(name="web-1")

    response = owner_client.post(BASE + "new/", form_data(host="other.example.com"))

    assert response.status_code == 400
    assert "already has a server named" in text(response)


def test_an_uploaded_key_file_with_its_passphrase_is_accepted_and_never_shown(
    owner_client, team, keyfiles
):
    key_text = keyfiles("ed25519", passphrase="upload-pass")
    upload = SimpleUploadedFile("id_ed25519", key_text.encode())

    response = owner_client.post(
        BASE + "new/",
        form_data(auth_method="private_key", private_key_file=upload, passphrase="upload-pass"),
    )

    assert response.status_code == 302
    server = Server.objects.get(team=team)
    assert (
        server.private_key_fingerprint == import_uploaded_key(key_text, "upload-pass").fingerprint
    )
    for url in (BASE, f"{BASE}{server.pk}/", f"{BASE}{server.pk}/edit/"):
        page = text(owner_client.get(url))
        assert "PRIVATE KEY" not in page and "upload-pass" not in page
    assert server.private_key_fingerprint in text(owner_client.get(f"{BASE}{server.pk}/"))


def test_a_pasted_key_without_a_passphrase_is_accepted(owner_client, team, keyfiles):
    response = owner_client.post(
        BASE + "new/", form_data(auth_method="private_key", private_key=keyfiles("ed25519"))
    )

    assert response.status_code == 302
    assert Server.objects.get(team=team).auth_method == "private_key"


def test_a_wrong_passphrase_is_a_form_error_and_the_key_is_not_echoed(owner_client, keyfiles):
    key_text = keyfiles("ed25519", passphrase="right")

    response = owner_client.post(
        BASE + "new/",
        form_data(auth_method="private_key", private_key=key_text, passphrase="wrong"),
    )

    assert response.status_code == 400
    page = text(response)
    assert "The passphrase is wrong" in page
    assert "PRIVATE KEY-----" not in page.replace("-----BEGIN", "")  # only the help text
    assert key_text.splitlines()[1] not in page
    assert not Server.objects.exists()


def test_a_missing_passphrase_is_asked_for(owner_client, keyfiles):
    response = owner_client.post(
        BASE + "new/",
        form_data(auth_method="private_key", private_key=keyfiles("ed25519", passphrase="p")),
    )

    assert response.status_code == 400
    assert "protected by a passphrase" in text(response)


def test_a_key_that_does_not_parse_is_a_form_error(owner_client):
    response = owner_client.post(
        BASE + "new/", form_data(auth_method="private_key", private_key="hello world")
    )

    assert response.status_code == 400
    assert "not a private key Pipetower can read" in text(response)


def test_a_password_server_never_shows_the_password(owner_client, team):
    response = owner_client.post(
        BASE + "new/", form_data(auth_method="password", password="Tr0ub4dor&3")
    )

    assert response.status_code == 302
    server = Server.objects.get(team=team)
    assert server.password == "Tr0ub4dor&3"
    for url in (BASE, f"{BASE}{server.pk}/", f"{BASE}{server.pk}/edit/"):
        assert "Tr0ub4dor" not in text(owner_client.get(url))


# --- who may do what -----------------------------------------------------------------------------


def test_a_viewer_reads_servers_but_cannot_add_them(team, viewer, make_server):
    server = make_server()
    client = client_for(viewer)

    assert client.get(BASE).status_code == 200
    assert client.get(f"{BASE}{server.pk}/").status_code == 200
    assert "Add server" not in text(client.get(BASE))
    assert ">Test connection</button>" not in text(client.get(f"{BASE}{server.pk}/"))
    assert client.get(BASE + "new/").status_code == 403
    assert client.post(BASE + "new/", form_data(name="sneaky")).status_code == 403
    assert client.post(f"{BASE}{server.pk}/check/").status_code == 403
    assert client.post(f"{BASE}{server.pk}/delete/").status_code == 403
    assert list(Server.objects.values_list("name", flat=True)) == ["web-1"]


def test_an_operator_tests_connections_but_cannot_pin(checked, sshd, operator, make_server):
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)
    client = client_for(operator)

    response = after_testing(client, checked, server)

    assert sshd.fingerprint in text(response)
    assert "A team admin confirms the fingerprint" in text(response)
    assert "Confirm and pin" not in text(response)
    pin = client.post(f"{BASE}{server.pk}/host-key/pin/", {"fingerprint": sshd.fingerprint})
    assert pin.status_code == 403
    paste = client.post(f"{BASE}{server.pk}/host-key/paste/", {"known_hosts": sshd.host_key_line})
    assert paste.status_code == 403
    server.refresh_from_db()
    assert not server.is_pinned


def test_another_teams_server_is_not_found(owner_client, team):
    other = TeamFactory(slug="rivals")
    owner = member(other, role="owner")
    foreign = services.server_create(
        team=other, actor=owner, name="theirs", host="x.example.com", username="u"
    )

    for url in ("", "edit/", "delete/", "host-key/repin/", "host-key/paste/"):
        assert owner_client.get(f"{BASE}{foreign.pk}/{url}").status_code == 404
    assert owner_client.post(f"{BASE}{foreign.pk}/check/").status_code == 404
    assert owner_client.get(f"/teams/rivals/servers/{foreign.pk}/").status_code == 404
    assert owner_client.get("/teams/rivals/servers/").status_code == 404


# --- testing connections and pinning -------------------------------------------------------------


def after_testing(client, checked, server):
    """Press "Test connection", let the queued test run, then open the server's page."""
    asked = checked(lambda: client.post(f"{BASE}{server.pk}/check/"))
    assert asked.status_code == 302
    return client.get(f"{BASE}{server.pk}/")


def test_test_connection_shows_hostname_os_and_uptime(checked, owner_client, pinned_server):
    response = after_testing(owner_client, checked, pinned_server)

    page = text(response)
    pinned_server.refresh_from_db()
    assert "Logged in to" in page
    assert pinned_server.remote_hostname and pinned_server.remote_hostname in page
    assert "Linux" in page
    assert "Uptime" in page
    assert services.format_uptime(pinned_server.remote_uptime_seconds) in page


def test_an_admin_confirms_the_fingerprint_to_pin_it(
    checked, owner_client, sshd, team_key, make_server
):
    sshd.authorize(team_key.public_key)
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)

    page = text(after_testing(owner_client, checked, server))
    assert sshd.fingerprint in page and "Confirm and pin this key" in page

    response = owner_client.post(
        f"{BASE}{server.pk}/host-key/pin/", {"fingerprint": sshd.fingerprint}, follow=True
    )

    assert f"Pinned host key {sshd.fingerprint}" in text(response)
    server.refresh_from_db()
    assert server.host_key_fingerprints == [sshd.fingerprint]
    assert "Logged in to" in text(after_testing(owner_client, checked, server))


@pytest.mark.parametrize(
    ("host_fixture", "kind", "words"),
    [
        ("free_port", "refused", "Connection refused"),
        ("silent_listener", "timeout", "Timed out"),
    ],
)
def test_connection_errors_are_specific(
    request, owner_client, make_server, user, team, host_fixture, kind, words
):
    port = request.getfixturevalue(host_fixture)
    services.team_server_settings_update(team=team, actor=user, trust_on_first_use=True)
    server = make_server(host="127.0.0.1", port=port)
    # Keep the timeout case quick: the page uses the service default of 10 s otherwise.
    services.server_check(server=server, actor=user, connect_timeout=1)

    page = text(owner_client.get(f"{BASE}{server.pk}/"))

    assert words in page
    server.refresh_from_db()
    assert server.last_check_error == kind


def test_a_changed_host_key_shows_both_fingerprints_and_needs_a_confirmed_re_pin(
    checked, owner_client, sshd, pinned_server, user
):
    old = sshd.fingerprint
    new = sshd.regenerate_host_key_and_restart()

    page = text(after_testing(owner_client, checked, pinned_server))
    assert "Host key changed" in page and old in page and new in page
    assert "Review and re-pin" in page

    confirm_page = owner_client.get(f"{BASE}{pinned_server.pk}/host-key/repin/")
    assert old in text(confirm_page) and new in text(confirm_page)

    unconfirmed = owner_client.post(
        f"{BASE}{pinned_server.pk}/host-key/repin/", {"fingerprint": new}
    )
    assert unconfirmed.status_code == 400
    assert "Tick the box" in text(unconfirmed)
    pinned_server.refresh_from_db()
    assert pinned_server.host_key_fingerprints == [old]

    confirmed = owner_client.post(
        f"{BASE}{pinned_server.pk}/host-key/repin/", {"fingerprint": new, "confirm": "on"}
    )

    assert confirmed.status_code == 302
    pinned_server.refresh_from_db()
    assert pinned_server.host_key_fingerprints == [new]
    assert AuditEvent.objects.get(verb="server.host_key_repinned").data["previous"] == [old]


def test_pasting_a_bad_known_hosts_line_is_a_form_error(owner_client, make_server):
    server = make_server()

    response = owner_client.post(
        f"{BASE}{server.pk}/host-key/paste/", {"known_hosts": "web-1 ssh-ed25519 !!!"}
    )

    assert response.status_code == 400
    assert "does not hold a public key" in text(response)


def test_pasting_a_known_hosts_line_pins_it(owner_client, sshd, make_server):
    server = make_server(host=sshd.host, port=sshd.port)

    response = owner_client.post(
        f"{BASE}{server.pk}/host-key/paste/",
        {"known_hosts": f"[{sshd.host}]:{sshd.port} {sshd.host_key_line}"},
    )

    assert response.status_code == 302
    server.refresh_from_db()
    assert server.host_key_fingerprints == [sshd.fingerprint]


# --- editing and deleting ------------------------------------------------------------------------


def test_editing_keeps_the_stored_password_when_left_empty(owner_client, make_server):
    server = make_server(credentials=Credentials("password", password="keep-me-1"))

    response = owner_client.post(
        f"{BASE}{server.pk}/edit/",
        form_data(name="web-2", auth_method="password", password=""),
    )

    assert response.status_code == 302
    server.refresh_from_db()
    assert server.name == "web-2" and server.password == "keep-me-1"


def test_deleting_asks_first_then_deletes(owner_client, make_server):
    server = make_server()

    assert "Delete web-1?" in text(owner_client.get(f"{BASE}{server.pk}/delete/"))
    response = owner_client.post(f"{BASE}{server.pk}/delete/")

    assert response.status_code == 302
    assert not Server.objects.exists()


# --- team key page -------------------------------------------------------------------------------


def test_pages_create_no_key_and_an_admin_creates_it_with_the_button(owner_client, team, viewer):
    for path in ("", "new/", "ssh-key/"):
        page = text(owner_client.get(BASE + path))
        assert "Create the team key" in page or path == "new/", path
    assert "The team has no SSH key yet" in text(client_for(viewer).get(BASE + "ssh-key/"))
    assert "Create the team key" not in text(client_for(viewer).get(BASE + "ssh-key/"))
    assert not TeamSshKey.objects.filter(team=team).exists(), "a GET created a key"
    assert client_for(viewer).post(BASE + "ssh-key/create/").status_code == 403

    response = owner_client.post(BASE + "ssh-key/create/", {"next": BASE})

    assert response.status_code == 302 and response["Location"] == BASE
    key = TeamSshKey.objects.get(team=team)
    assert key.public_key in text(owner_client.get(BASE))
    assert AuditEvent.objects.filter(verb="server.team_key_created").count() == 1
    away = owner_client.post(BASE + "ssh-key/create/", {"next": "https://elsewhere.example/"})
    assert away["Location"] == BASE + "ssh-key/"
    assert TeamSshKey.objects.filter(team=team).count() == 1


def test_the_team_key_page_shows_the_public_key_and_the_authorized_keys_line(
    owner_client, team, team_key
):
    page = text(owner_client.get(BASE + "ssh-key/"))

    key = TeamSshKey.objects.get(team=team)
    assert key.public_key in page and key.fingerprint in page
    assert 'data-copy="authorized-keys-current"' in page
    assert "PRIVATE" not in page


def test_rotating_the_team_key_from_the_page(owner_client, team, team_key):
    owner_client.post(BASE + "ssh-key/rotate/")
    new = TeamSshKey.objects.get(team=team, state="next")

    page = text(owner_client.get(BASE + "ssh-key/"))
    assert team_key.public_key in page and new.public_key in page
    assert "Finish rotation" in page

    owner_client.post(BASE + "ssh-key/rotate/finish/")

    assert TeamSshKey.objects.get(team=team, state="current") == new
    assert TeamSshKey.objects.get(pk=team_key.pk).state == "retired"


def test_a_viewer_sees_the_key_but_cannot_rotate_or_change_trust(team, viewer, team_key):
    client = client_for(viewer)

    assert team_key.public_key in text(client.get(BASE + "ssh-key/"))
    assert client.post(BASE + "ssh-key/rotate/").status_code == 403
    assert client.post(BASE + "settings/", {"trust_on_first_use": "on"}).status_code == 403
    assert not TeamSshKey.objects.filter(state="next").exists()


def test_an_admin_turns_on_trust_on_first_use(team, admin):
    client = client_for(admin)

    client.post(BASE + "settings/", {"trust_on_first_use": "on"})

    assert team.server_settings.trust_on_first_use is True
    assert AuditEvent.objects.get(verb="server.settings_changed").actor == admin


def test_an_unknown_host_key_is_said_once_with_one_badge_and_just_now(
    owner_client, sshd, team_key, make_server, django_capture_on_commit_callbacks
):
    sshd.authorize(team_key.public_key)
    server = make_server(host=sshd.host, port=sshd.port, username=sshd.user)

    with django_capture_on_commit_callbacks(execute=True):  # the test runs as a task
        owner_client.post(f"{BASE}{server.pk}/check/")
    page = text(owner_client.get(f"{BASE}{server.pk}/"))

    # One place says the key is not pinned: the host-key section, with one amber badge.
    assert page.count("Not pinned") == 1
    assert "Host key not pinned" not in page and "badge-error" not in page
    assert page.count("Compare it with") == 1
    assert "Last tested just now" in page and "0\xa0minutes" not in page
    # The key's type with its fingerprint, and the command that prints the same line.
    assert f"<code>ED25519 {sshd.fingerprint}</code>" in page
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in page


def test_the_action_page_names_parameter_types_as_the_form_does(owner_client, team, user):
    from pipetower.actions import services as action_services

    action = action_services.action_create(
        team=team,
        actor=user,
        name="greet",
        script="echo $PT_PARAM_WHO",
        parameters=[{"name": "who", "label": "Who", "kind": "string", "required": True}],
    )

    page = text(owner_client.get(f"/teams/{team.slug}/actions/{action.pk}/"))

    assert "<td>Text</td>" in page and "<td>string</td>" not in page


def test_every_status_badge_colour_is_in_the_stylesheet_every_page_loads(owner_client):
    from django.contrib.staticfiles import finders

    from pipetower.actions.models import TargetStatus

    assert "pipetower/pipetower.css" in text(owner_client.get(BASE))
    css = open(finders.find("pipetower/pipetower.css")).read()  # noqa: SIM115
    for status in TargetStatus.values:
        assert f".badge-run-{status}" in css, status
