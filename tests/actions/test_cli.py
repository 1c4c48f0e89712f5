"""`pipetower run`: the command-line client, against a live Pipetower and real sshd."""

from __future__ import annotations

import io
import threading
import time

import pytest

from pipetower.actions.cli import main
from pipetower.actions.models import Run
from pipetower.api.services import api_token_create
from tests.actions.conftest import add_server, execute

pytestmark = pytest.mark.django_db(transaction=True)


def run_cli(live_server, token, monkeypatch, *args):
    monkeypatch.setenv("PIPETOWER_URL", live_server.url)
    monkeypatch.setenv("PIPETOWER_TOKEN", token)
    monkeypatch.delenv("PIPETOWER_TEAM", raising=False)
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def play_worker() -> threading.Thread:
    """Executes the next run that appears, as a worker would, while the CLI follows it."""

    def work() -> None:
        deadline = time.monotonic() + 30
        while not Run.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        run = Run.objects.first()
        if run is not None:
            time.sleep(0.5)  # let the CLI start following before output arrives
            execute(run)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


@pytest.fixture
def token(user):
    return api_token_create(user=user, name="cli", scope="write")[1]


def test_follow_streams_the_output_and_exits_zero_on_success(
    live_server, monkeypatch, team, user, sshd, make_action, token, tasks_queued
):
    add_server(team, user, sshd, name="web-1", tags=["web"])
    make_action(
        'echo "hello $PT_PARAM_WHO"; sleep 0.3; echo warn >&2',
        name="greet",
        parameters=[{"name": "who", "kind": "string"}],
    )
    worker = play_worker()
    code, out, err = run_cli(
        live_server,
        token,
        monkeypatch,
        "greet",
        "--target",
        "tag:web",
        "--param",
        "who=ada",
        "--follow",
    )
    worker.join()
    assert code == 0, err
    assert out == "hello ada\n"
    assert "warn\n" in err
    assert "Run #" in err and "== web-1: succeeded, exit 0" in err


def test_follow_exits_one_when_the_run_fails_and_prefixes_lines_per_server(
    live_server, monkeypatch, team, user, sshd, make_action, token, tasks_queued
):
    add_server(team, user, sshd, name="web-1")
    add_server(team, user, sshd, name="web-2")
    make_action('echo "on $PT_SERVER_NAME"; [ "$PT_SERVER_NAME" = web-1 ]', name="check")
    worker = play_worker()
    code, out, err = run_cli(
        live_server, token, monkeypatch, "check", "-t", "web-1", "-t", "web-2", "-f"
    )
    worker.join()
    assert code == 1
    assert sorted(out.splitlines()) == ["web-1 | on web-1", "web-2 | on web-2"]
    assert "== web-2: failed, exit 1" in err


def test_a_bad_parameter_is_reported_with_exit_two(
    live_server, monkeypatch, team, user, sshd, make_action, token
):
    add_server(team, user, sshd, name="web-1")
    make_action(name="count", parameters=[{"name": "n", "kind": "integer"}])
    code, _, err = run_cli(live_server, token, monkeypatch, "count", "-t", "web-1", "-p", "n=many")
    assert code == 2
    assert err.strip() == "pipetower run: Parameter n must be a whole number, not 'many'."
    assert not Run.objects.exists()


def test_an_unknown_action_and_a_missing_token_are_explained(live_server, monkeypatch, team, token):
    code, _, err = run_cli(live_server, token, monkeypatch, "nope")
    assert (code, err.strip()) == (2, "pipetower run: no action named 'nope' in team engines.")
    code, _, err = run_cli(live_server, "", monkeypatch, "nope")
    assert code == 2 and "set PIPETOWER_TOKEN" in err
