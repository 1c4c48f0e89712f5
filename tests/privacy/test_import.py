from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pipetower.accounts.models import User
from pipetower.actions.models import Action
from pipetower.privacy import export
from pipetower.servers.models import Server
from pipetower.teams.models import Role, Team
from tests.factories import UserFactory
from tests.privacy.helpers import open_zip, populate

pytestmark = pytest.mark.django_db


def test_round_trip_restores_teams_servers_and_actions_into_a_fresh_account(
    user: User, team: Team, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(user, team)
    archive = tmp_path / "export.zip"
    archive.write_bytes(export.export_archive(user=user))
    fresh = UserFactory(email="grace@example.com")

    call_command("import_export", str(archive), "--email", "grace@example.com")

    out = capsys.readouterr().out
    assert "Imported 1 team(s), 1 server(s) and 1 action(s)" in out
    assert "password was not exported" in out
    imported = Team.objects.get(memberships__user=fresh, memberships__role=Role.OWNER)
    assert imported.name == team.name and imported.pk != team.pk
    server = Server.objects.get(team=imported)
    assert (server.name, server.host, server.username) == ("web-1", "web1.example.net", "deploy")
    assert [t.name for t in server.tags.all()] == ["web"]
    action = Action.objects.get(team=imported)
    assert action.script == "systemctl restart nginx"
    assert list(action.default_servers.all()) == [server]
    # And the import exports again to the same content.
    again = open_zip(export.export_archive(user=fresh))
    assert b"web1.example.net" in again.read("teams.json")


def test_import_refuses_a_file_that_is_not_an_export(user: User, tmp_path: Path) -> None:
    bad = tmp_path / "notes.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="not a Pipetower export"):
        call_command("import_export", str(bad), "--email", user.email)


def test_import_refuses_an_unknown_account(tmp_path: Path, db: None) -> None:
    with pytest.raises(CommandError, match="There is no account"):
        call_command("import_export", str(tmp_path / "x.zip"), "--email", "nobody@example.com")
