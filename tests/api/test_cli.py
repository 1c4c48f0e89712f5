"""The API's command line (`pipetower login`, `servers`, `actions`, `runs`,
`schedules`, `export`), run as a real process against a served Pipetower, with
runs executed on a real sshd."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import zipfile
from pathlib import Path

import pytest

from pipetower.actions.models import Run
from pipetower.api.services import api_token_create
from tests.actions.conftest import add_server, execute
from tests.core._ops import run_pipetower

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(user):
    return api_token_create(user=user, name="cli", scope="write")[1]


@pytest.fixture
def env(tmp_path):
    """A clean environment: no token or URL in it, a config folder of its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIPETOWER_", "DJANGO_"))}
    return {**clean, "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.fixture
def logged_in(live_server, env, token, team):
    done = run_pipetower("login", live_server.url, "--token", token, env=env)
    assert done.returncode == 0, done.stderr
    return env


def cli(env, *args, timeout=60):
    return run_pipetower(*args, env=env, timeout=timeout)


def worker_for_next_run(after: int = 0) -> threading.Thread:
    """Executes the next run that appears (id > after), as a worker would."""

    def work() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = Run.objects.filter(pk__gt=after).order_by("pk").first()
            if run is not None:
                time.sleep(0.3)
                execute(run)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_login_checks_the_token_and_stores_it_for_the_owner_only(live_server, env, token, team):
    done = cli(env, "login", live_server.url, "--token", token)

    assert done.returncode == 0, done.stderr
    assert "as ada@example.com" in done.stdout
    path = Path(env["XDG_CONFIG_HOME"]) / "pipetower" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": live_server.url, "token": token}


def test_login_with_a_bad_token_stores_nothing(live_server, env, team):
    done = cli(env, "login", live_server.url, "--token", "ptk_000000000000_" + "x" * 43)

    assert done.returncode == 2
    assert "not valid" in done.stderr
    assert not (Path(env["XDG_CONFIG_HOME"]) / "pipetower" / "config.json").exists()


def test_commands_without_a_login_say_how_to_log_in(env):
    done = cli(env, "servers", "list")

    assert done.returncode == 2
    assert "pipetower login URL" in done.stderr


def test_servers_add_then_list_as_text_and_json(logged_in):
    added = cli(logged_in, "servers", "add", "web-1", "--host", "127.0.0.1", "--user", "deploy")
    listed = cli(logged_in, "servers", "list")
    as_json = cli(logged_in, "servers", "list", "--json")

    assert added.returncode == 0, added.stderr
    assert "Added server" in added.stdout
    assert "web-1" in listed.stdout and "127.0.0.1" in listed.stdout
    assert [s["name"] for s in json.loads(as_json.stdout)] == ["web-1"]


def test_a_refused_request_exits_two_with_the_api_message(logged_in):
    done = cli(logged_in, "servers", "add", "x", "--host", "", "--user", "deploy")

    assert done.returncode == 2
    assert "host" in done.stderr.lower()


def test_actions_run_follow_and_runs_commands_follow_the_run_status(
    logged_in, team, user, sshd, make_action, tasks_queued
):
    add_server(team, user, sshd, name="web-1", tags=["web"])
    make_action('echo "hello $PT_PARAM_WHO"', name="greet", parameters=[{"name": "who"}])
    make_action("echo broken; exit 3", name="breaks")

    shown = cli(logged_in, "actions", "show", "greet", "--json")
    assert json.loads(shown.stdout)["name"] == "greet"
    assert "greet" in cli(logged_in, "actions", "list").stdout

    worker = worker_for_next_run()
    ok = cli(logged_in, "actions", "run", "greet", "-t", "tag:web", "-p", "who=ada", "--follow")
    worker.join()
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "hello ada\n", ok.stderr
    first = Run.objects.get()

    worker = worker_for_next_run(first.pk)
    failed = cli(logged_in, "actions", "run", "breaks", "-t", "web-1", "--follow", "--json")
    worker.join()
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"
    broken = Run.objects.order_by("-pk").first()

    assert cli(logged_in, "runs", "show", str(first.pk)).returncode == 0
    shown_failed = cli(logged_in, "runs", "show", str(broken.pk))
    assert shown_failed.returncode == 1
    assert "web-1: failed exit 3" in shown_failed.stdout
    listed = json.loads(cli(logged_in, "runs", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [broken.pk, first.pk]

    worker = worker_for_next_run(broken.pk)
    rerun = cli(logged_in, "runs", "rerun", str(first.pk), "--follow")
    worker.join()
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == "hello ada\n", rerun.stderr


def test_a_queued_run_shows_as_running_and_can_be_cancelled(
    logged_in, team, user, sshd, make_action, tasks_queued
):
    add_server(team, user, sshd, name="web-1")
    make_action("sleep 30", name="slow")
    started = cli(logged_in, "actions", "run", "slow", "-t", "web-1", "--json")
    run_id = json.loads(started.stdout)["id"]

    assert cli(logged_in, "runs", "show", str(run_id)).returncode == 5
    cancelled = cli(logged_in, "runs", "cancel", str(run_id), "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert Run.objects.get(pk=run_id).status == "cancelled"
    assert cli(logged_in, "runs", "show", str(run_id)).returncode == 3


def test_schedules_add_and_list(logged_in, team, user, sshd, make_action):
    add_server(team, user, sshd, name="web-1")
    make_action("true", name="nightly-job")

    added = cli(
        logged_in,
        "schedules", "add", "nightly-job",
        "--name", "nightly", "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
        "-t", "web-1",
    )  # fmt: skip
    listed = cli(logged_in, "schedules", "list", "--json")

    assert added.returncode == 0, added.stderr
    assert "Schedule #" in added.stdout
    (schedule,) = json.loads(listed.stdout)
    assert (schedule["name"], schedule["timezone"]) == ("nightly", "Europe/Berlin")


def test_export_request_then_download_writes_the_zip(logged_in, tmp_path):
    asked = cli(logged_in, "export", "request")
    target = tmp_path / "mine.zip"
    saved = cli(logged_in, "export", "download", "-o", str(target))

    assert asked.returncode == 0, asked.stderr
    assert saved.returncode == 0, saved.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist()


def test_pipetower_run_uses_the_stored_login(logged_in, team, user, sshd, make_action):
    add_server(team, user, sshd, name="web-1")
    make_action("true", name="noop")

    started = cli(logged_in, "run", "noop", "-t", "web-1")

    assert started.returncode == 0, started.stderr
    assert "Run #" in started.stderr
    assert Run.objects.filter(action_name="noop").exists()
