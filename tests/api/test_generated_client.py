"""A client generated from the live OpenAPI schema by openapi-python-client does a
whole journey against a served Pipetower and a real sshd: team, server, pin,
action, run, output, audit. Refusals come back as the error shape, never None
(each operation declares the statuses it can answer)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pipetower.api.services import api_token_create

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "pipetower_generated_client"


def _generator() -> str:
    found = shutil.which("openapi-python-client") or str(
        Path(sys.executable).parent / "openapi-python-client"
    )
    if not Path(found).exists():
        pytest.skip("openapi-python-client is not installed (pip install -e '.[test]').")
    return found


@pytest.fixture
def generated(live_server, tmp_path, monkeypatch) -> Any:
    """The client package generated from the schema the server serves, imported."""
    with urllib.request.urlopen(f"{live_server.url}/api/v1/schema/") as answer:
        (tmp_path / "schema.json").write_bytes(answer.read())
    done = subprocess.run(
        [
            _generator(),
            "generate",
            "--meta",
            "none",
            *("--path", "schema.json", "--output-path", PACKAGE),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Only the zip download has no typed answer (a file); everything else generates.
    report = (done.stdout + done.stderr).splitlines()
    problems = [line for line in report if line.startswith(("WARNING", "Unable"))]
    assert problems == ["WARNING parsing GET /api/v1/me/exports/{export_id}/download within me."]
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
        del sys.modules[name]
    return importlib.import_module(PACKAGE)


def _op(group: str, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{group}.{name}")


def _models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


def test_a_generated_client_does_the_whole_journey(generated, live_server, user, sshd):
    m = _models()
    token = api_token_create(user=user, name="generated", scope="write")[1]
    client = generated.AuthenticatedClient(base_url=live_server.url, token=token)

    team = _op("teams", "teams_create").sync(client=client, body=m.TeamCreateIn(name="Journey"))
    assert isinstance(team, m.TeamOut), team
    slug = team.slug

    keys = _op("servers", "ssh_key_create").sync(slug, client=client)
    assert isinstance(keys, m.TeamKeysOut), keys
    sshd.authorize(keys.current.authorized_keys_line)

    server = _op("servers", "servers_create").sync(
        slug,
        client=client,
        body=m.ServerCreateIn(
            name="web-1", host=sshd.host, port=sshd.port, username=sshd.user, tags=["web"]
        ),
    )
    assert isinstance(server, m.ServerOut), server
    asked = _op("servers", "servers_check").sync(slug, server.id, client=client)
    assert isinstance(asked, m.CheckOut), asked
    deadline = time.monotonic() + 30
    check = asked
    while check.status != m.CheckOutStatus.DONE and time.monotonic() < deadline:
        time.sleep(0.2)
        check = _op("servers", "servers_check_result").sync(slug, server.id, client=client)
    assert check.status == m.CheckOutStatus.DONE
    if not check.server.host_key.pinned:
        pinned = _op("servers", "servers_host_key_pin").sync(
            slug,
            server.id,
            client=client,
            body=m.PinIn(fingerprint=check.offered_fingerprint),
        )
        assert isinstance(pinned, m.ServerOut), pinned
        assert pinned.host_key.pinned

    action = _op("actions", "actions_create").sync(
        slug,
        client=client,
        body=m.ActionIn(
            name="greet",
            script='echo "hello $PT_PARAM_WHO"',
            parameters=[m.ParameterIn(name="who", kind=m.ParameterInKind.STRING)],
        ),
    )
    assert isinstance(action, m.ActionOut), action

    # A refused request comes back as the error shape (400), not as None.
    refused = _op("actions", "runs_start").sync(
        slug, action.id, client=client, body=m.RunStartIn(params=m.RunStartInParams())
    )
    assert isinstance(refused, m.ErrorOut), refused
    assert refused.error.code == "no_targets"

    params = m.RunStartInParams.from_dict({"who": "ada"})
    run = _op("actions", "runs_start").sync(
        slug, action.id, client=client, body=m.RunStartIn(targets=["tag:web"], params=params)
    )
    assert isinstance(run, m.RunDetailOut), run
    deadline = time.monotonic() + 30
    while run.status not in (m.RunStatus.SUCCEEDED, m.RunStatus.FAILED):
        assert time.monotonic() < deadline, run.status
        time.sleep(0.2)
        run = _op("actions", "runs_get").sync(slug, run.id, client=client)
    assert run.status == m.RunStatus.SUCCEEDED
    assert run.targets[0].status == m.TargetStatus.SUCCEEDED
    assert run.target_counts.succeeded == 1

    output = _op("actions", "runs_target_output").sync(
        slug, run.id, run.targets[0].id, client=client
    )
    assert isinstance(output, m.TargetOutputOut), output
    assert "".join(c.data for c in output.chunks if c.stream == "stdout") == "hello ada\n"

    events = _op("teams", "audit_events_list").sync(slug, client=client, page_size=100)
    assert isinstance(events, m.PageAuditEventOut), events
    verbs = {event.verb for event in events.items}
    assert {"team.created", "server.created", "action.created", "run.started"} <= verbs
    started = next(e for e in events.items if e.verb == "run.started")
    assert json.loads(json.dumps(started.data.to_dict()))["params"] == {"who": "ada"}

    # Another team's slug: 404 as the error shape too.
    missing = _op("teams", "teams_get").sync("no-such-team", client=client)
    assert isinstance(missing, m.ErrorOut)
    assert missing.error.code == "not_found"
