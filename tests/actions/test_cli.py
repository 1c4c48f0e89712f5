"""`pipetower run`: the command-line client, against a live Pipetower and real sshd."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime

import pytest

from pipetower.actions.cli import main, retry_after_seconds
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


def test_without_a_target_nothing_runs_and_the_cli_says_how_to_choose(
    live_server, monkeypatch, team, user, sshd, make_action, token
):
    server = add_server(team, user, sshd, name="web-1")
    make_action("touch /tmp/never", name="deploy", default_server_ids=[server.pk])
    code, _, err = run_cli(live_server, token, monkeypatch, "deploy")
    assert code == 2
    assert err.strip() == (
        "pipetower run: Choose at least one server or tag to run on. Name them with "
        "--target NAME or --target tag:TAG, or pass --default-targets to run on the "
        "action's default targets."
    )
    assert not Run.objects.exists()


def test_default_targets_and_params_are_used_only_when_asked_for(
    live_server, monkeypatch, team, user, sshd, make_action, token, tasks_queued
):
    server = add_server(team, user, sshd, name="web-1")
    make_action(
        name="deploy",
        parameters=[{"name": "region", "kind": "string", "default": "eu"}],
        default_server_ids=[server.pk],
    )
    code, _, err = run_cli(live_server, token, monkeypatch, "deploy", "--default-targets")
    assert code == 2
    assert "Parameter region was not given." in err and "--default-params" in err
    assert not Run.objects.exists()
    code, _, err = run_cli(
        live_server, token, monkeypatch, "deploy", "--default-targets", "--default-params"
    )
    assert code == 0, err
    assert "started on 1 server" in err
    run = Run.objects.get()
    assert run.params == {"region": "eu"}
    assert list(run.targets.values_list("server_name", flat=True)) == ["web-1"]


def test_follow_waits_out_the_real_rate_limit_and_loses_no_output(
    live_server, monkeypatch, settings, team, user, sshd, make_action, token, tasks_queued
):
    """The API's own limiter in a running server, with its rate lowered to 2 requests a
    second so the CLI meets it at once; nothing is simulated. Without the waiting, the
    CLI would stop at the first 429 (exit 2, "Too many requests")."""
    settings.API_RATE_LIMIT = "2/s"
    add_server(team, user, sshd, name="web-1")
    make_action('for i in 1 2 3 4 5; do echo "line $i"; sleep 0.2; done', name="count")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    monkeypatch.setenv("PIPETOWER_URL", live_server.url)
    monkeypatch.setenv("PIPETOWER_TOKEN", token)
    out, err = io.StringIO(), io.StringIO()
    worker = play_worker()
    code = main(["count", "--team", team.slug, "-t", "web-1", "-f"], out=out, err=err, sleep=sleep)
    worker.join()
    notes = err.getvalue()
    assert code == 0, notes
    assert out.getvalue() == "".join(f"line {i}\n" for i in range(1, 6))
    assert "== web-1: succeeded, exit 0" in notes
    limited = [line for line in notes.splitlines() if "(429)" in line]
    assert limited, notes
    # Each wait is the one the server's Retry-After asked for (1 s at this rate).
    assert waits == [1.0] * len(limited)
    assert all(line.endswith("trying again in 1 s, as it asks.") for line in limited)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 1.0),
        ("86400", 300.0),
        ("soon", 5.0),
        (None, 5.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_within_bounds(header, seconds):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == seconds


def test_follow_says_waiting_for_approval_once_and_a_denied_run_exits_as_cancelled(
    live_server, monkeypatch, team, user, sshd, make_action, make_member, token, tasks_queued
):
    from pipetower.actions import approvals
    from pipetower.teams.models import Role

    add_server(team, user, sshd, name="web-1")
    make_action("echo never", name="gated", requires_approval=True)
    other_admin = make_member(Role.ADMIN)

    def deny_later() -> None:
        deadline = time.monotonic() + 30
        while not Run.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # the CLI is following and waiting by now
        approvals.approval_deny(run=Run.objects.get(), actor=other_admin, reason="not today")

    denier = threading.Thread(target=deny_later)
    denier.start()
    code, out, err = run_cli(live_server, token, monkeypatch, "gated", "-t", "web-1", "-f")
    denier.join()
    assert code == 3, err
    assert err.count("Waiting for approval") == 1
    assert out == ""
    assert "Not started: denied by" in err and "not today" in err
