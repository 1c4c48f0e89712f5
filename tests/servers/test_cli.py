"""`pipetower servers import`: the command-line client of `servers_import`, against a
live Pipetower."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipetower.api.cli import main
from pipetower.api.services import api_token_create
from pipetower.cli import main as pipetower_main
from pipetower.servers.models import Server

pytestmark = pytest.mark.django_db(transaction=True)
FILES = Path(__file__).parent / "inventories"


@pytest.fixture
def token(user, team):
    return api_token_create(user=user, name="cli", scope="write")[1]


def servers_cli(live_server, token, monkeypatch, *args):
    monkeypatch.setenv("PIPETOWER_URL", live_server.url)
    monkeypatch.setenv("PIPETOWER_TOKEN", token)
    monkeypatch.delenv("PIPETOWER_TEAM", raising=False)
    out, err = io.StringIO(), io.StringIO()
    code = main("servers", list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_dry_run_lists_every_line_and_adds_nothing(live_server, monkeypatch, token, team):
    code, out, err = servers_cli(
        live_server, token, monkeypatch, "import", str(FILES / "broken.ini"), "--dry-run"
    )

    assert code == 1
    assert "line 4: web2 deploy@198.51.100.2:22 #web — ok" in out
    assert "line 5: web3 deploy@198.51.100.2:22 #web — error: Duplicate:" in out
    assert "Dry run: 2 of 8 servers can be imported; 6 lines with errors." in err
    assert not Server.objects.exists()


def test_importing_a_yaml_inventory(live_server, monkeypatch, token, team):
    code, out, err = servers_cli(
        live_server,
        token,
        monkeypatch,
        "import",
        str(FILES / "hosts.yml"),
        "--format",
        "ansible_yaml",
    )

    assert code == 0, err
    assert "line 19: db-b postgres@192.0.2.22:5022 #dbservers #eu_west — ok" in out
    assert "Imported 7 servers. Compare and pin their host keys:" in err
    assert f"{live_server.url}/teams/{team.slug}/servers/host-keys/" in err
    assert Server.objects.filter(team=team).count() == 7


def test_a_refused_import_says_why(live_server, monkeypatch, token, tmp_path):
    bad = tmp_path / "fleet.csv"
    bad.write_text("web-1,192.0.2.1\n")

    code, _out, err = servers_cli(
        live_server, token, monkeypatch, "import", str(bad), "--format", "csv"
    )

    assert code == 2
    assert "pipetower servers: The first line of a CSV file is its header" in err


def test_with_json_the_answer_is_printed_as_the_api_gave_it(live_server, monkeypatch, token):
    code, out, _err = servers_cli(
        live_server, token, monkeypatch, "import", str(FILES / "broken.ini"), "--dry-run", "--json"
    )

    assert code == 1
    answer = json.loads(out)
    assert answer["dry_run"] is True
    assert [row["name"] for row in answer["rows"] if row["ok"]] == ["web2", "existing"]
    assert not Server.objects.exists()


def test_the_pipetower_command_names_it(capsys):
    assert pipetower_main(["--help"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("servers ")]
    assert "import FILE" in line
