"""The run engine against real sshd processes (tests/sshd.py): what happens on the
servers and what is stored, target by target."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from pipetower.actions import services
from pipetower.actions.models import OutputChunk, RunStatus, TargetStatus
from tests.actions.conftest import add_server, execute, output_of, pinned_server
from tests.sshd import allow_sudo_as

pytestmark = pytest.mark.django_db


def start(action, user, servers, **values):
    return services.run_start(
        action=action, actor=user, server_ids=[s.pk for s in servers], values=values
    )


def test_a_successful_script_stores_its_output_and_exit_code(user, ssh_server, make_action):
    action = make_action("echo hello from $PT_SERVER_NAME")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert run.status == RunStatus.SUCCEEDED
    assert target.status == TargetStatus.SUCCEEDED
    assert target.exit_code == 0
    assert target.started_at and target.finished_at and target.duration.total_seconds() >= 0
    assert output_of(target) == "hello from web-1\n"
    assert run.finished_at is not None


def test_a_non_zero_exit_fails_the_target_and_the_run(user, ssh_server, make_action):
    action = make_action("echo partial; echo 'went wrong' >&2; exit 3")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert (run.status, target.status, target.exit_code) == ("failed", "failed", 3)
    assert target.error == "Exited with status 3."
    assert output_of(target, "stdout") == "partial\n"
    assert output_of(target, "stderr") == "went wrong\n"


def test_stdout_and_stderr_are_told_apart_in_arrival_order(user, ssh_server, make_action):
    action = make_action("echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2")
    run = execute(start(action, user, [ssh_server]))
    streams = list(run.targets.get().chunks.order_by("seq").values_list("stream", "data"))
    assert streams == [("stdout", "out1\n"), ("stderr", "err1\n"), ("stdout", "out2\n")]


def test_many_lines_arrive_complete_and_in_order_with_gapless_sequence_numbers(
    user, ssh_server, make_action
):
    action = make_action("seq 1 30000")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert output_of(target) == "".join(f"{n}\n" for n in range(1, 30001))
    seqs = list(target.chunks.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert target.last_seq == len(seqs)


def test_a_parameter_value_arrives_literally_and_runs_nothing(user, ssh_server, make_action):
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    action = make_action(
        'printf "%s|" "$PT_PARAM_NOTE"',
        parameters=[{"name": "note", "kind": "string"}],
    )
    hostile = f"$(touch {marker}) `touch {marker}`; touch {marker} ' \" \n next"
    run = execute(start(action, user, [ssh_server], note=hostile))
    target = run.targets.get()
    assert target.status == TargetStatus.SUCCEEDED
    assert output_of(target) == hostile + "|"
    assert not marker.exists()


def test_typed_parameters_reach_the_script_as_environment_variables(user, ssh_server, make_action):
    action = make_action(
        'echo "$PT_PARAM_COUNT $PT_PARAM_DRY_RUN $PT_PARAM_COLOUR"',
        parameters=[
            {"name": "count", "kind": "integer", "default": 3},
            {"name": "dry_run", "kind": "boolean", "default": True},
            {"name": "colour", "kind": "choice", "choices": ["red", "blue"], "default": "red"},
        ],
    )
    run = execute(start(action, user, [ssh_server], count="42", dry_run="yes", colour="blue"))
    assert output_of(run.targets.get()) == "42 true blue\n"


def test_a_secret_parameter_is_usable_by_the_script_but_masked_in_output(
    user, ssh_server, make_action
):
    action = make_action(
        '[ "$PT_PARAM_TOKEN" = "s3cr3t-value" ] && echo matches; echo "token=$PT_PARAM_TOKEN"; '
        'printf "%s" "$PT_PARAM_TOKEN" | cut -c1-6; printf "%s\\n" "$PT_PARAM_TOKEN" >&2',
        parameters=[{"name": "token", "kind": "secret", "required": True}],
    )
    run = execute(start(action, user, [ssh_server], token="s3cr3t-value"))
    target = run.targets.get()
    text = output_of(target)
    assert "matches\n" in text
    assert "token=••••••\n" in text
    assert "s3cr3t-value" not in text
    assert output_of(target, "stderr") == "••••••\n"
    assert "s3cr3t-value" not in str(run.params)


def test_a_shebang_line_chooses_the_interpreter(user, ssh_server, make_action):
    action = make_action(
        '#!/usr/bin/env python3\nimport os\nprint("py", os.environ["PT_SERVER_NAME"])'
    )
    run = execute(start(action, user, [ssh_server]))
    assert output_of(run.targets.get()) == "py web-1\n"


def test_without_a_shebang_the_script_runs_with_bash(user, ssh_server, make_action):
    action = make_action('words=(a b c); echo "${#words[@]} ${BASH_VERSION:+bash}"')
    run = execute(start(action, user, [ssh_server]))
    assert output_of(run.targets.get()) == "3 bash\n"


def test_run_as_another_user_goes_through_sudo(team, user, ssh_server, make_action):
    allow_sudo_as("nobody")
    action = make_action("id -un", run_as="nobody")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert target.status == TargetStatus.SUCCEEDED, output_of(target)
    assert output_of(target) == "nobody\n"


def test_run_as_a_user_sudo_refuses_fails_with_an_explanation(user, ssh_server, make_action):
    allow_sudo_as("nobody")
    action = make_action("id -un", run_as="daemon")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert target.status == TargetStatus.FAILED
    assert "sudo refused to run the script as 'daemon'" in target.error
    assert "sudo:" in output_of(target, "stderr")


def test_a_script_over_its_timeout_is_stopped_and_ends_timed_out(
    user, ssh_server, make_action, fast_engine
):
    tag = uuid.uuid4().hex[:8]
    action = make_action(f"echo begin; exec -a pt-timeout-{tag} sleep 60", timeout_seconds=1)
    began = time.monotonic()
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert time.monotonic() - began < 15
    assert target.status == TargetStatus.TIMED_OUT
    assert "Timed out after 1 s" in target.error
    assert output_of(target, "stdout") == "begin\n"
    assert run.status == RunStatus.FAILED
    assert _remote_processes(f"pt-timeout-{tag}") == ""


def _remote_processes(pattern: str) -> str:
    time.sleep(0.3)
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True)
    return found.stdout.strip()


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_run_stops_the_remote_script_and_ends_targets_as_cancelled(
    team, user, sshd, make_action, fast_engine, tasks_queued
):
    server = add_server(team, user, sshd, name="web-1")
    queued = pinned_server(team, "later", port=9)  # never started: concurrency 1
    tag = uuid.uuid4().hex[:8]
    action = make_action(
        f"echo started; exec -a pt-cancel-{tag} sleep 60", concurrency=1, timeout_seconds=120
    )
    run = start(action, user, [server, queued])
    worker = threading.Thread(target=execute, args=(run,))
    worker.start()
    deadline = time.monotonic() + 20
    while not OutputChunk.objects.filter(run_target__run=run, data="started\n").exists():
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.1)
    cancelled_at = time.monotonic()
    services.run_cancel(run=run, actor=user)
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 10
    run.refresh_from_db()
    statuses = dict(run.targets.values_list("server_name", "status"))
    assert statuses == {"web-1": "cancelled", "later": "cancelled"}
    assert run.status == RunStatus.CANCELLED
    assert "before it started" in run.targets.get(server_name="later").error
    assert _remote_processes(f"pt-cancel-{tag}") == ""


def test_a_closed_port_ends_the_target_as_unreachable(team, user, free_port, make_action):
    server = pinned_server(team, "closed", port=free_port)
    run = execute(start(make_action(), user, [server]))
    target = run.targets.get()
    assert target.status == TargetStatus.UNREACHABLE
    assert "Connection refused" in target.error
    assert run.status == RunStatus.FAILED


def test_a_key_the_server_does_not_accept_fails_the_login(team, user, sshd, make_action):
    server = add_server(team, user, sshd, authorize=False)
    run = execute(start(make_action(), user, [server]))
    target = run.targets.get()
    assert target.status == TargetStatus.FAILED
    assert "refused the login as 'pipetower-test'" in target.error


def test_a_changed_host_key_stops_the_target_with_both_fingerprints(team, user, sshd, make_action):
    server = add_server(team, user, sshd)
    old = sshd.fingerprint
    new = sshd.regenerate_host_key_and_restart()
    run = execute(start(make_action(), user, [server]))
    target = run.targets.get()
    assert target.status == TargetStatus.HOST_KEY_MISMATCH
    assert old in target.error and new in target.error
    assert not target.chunks.filter(stream="stdout").exists()


def test_output_over_the_cap_is_truncated_with_a_marker_while_the_script_keeps_running(
    user, ssh_server, make_action, settings
):
    settings.ACTIONS_OUTPUT_LIMIT_BYTES = 100_000
    marker = f"/tmp/pt-finished-{uuid.uuid4().hex}"
    action = make_action(f"head -c 300000 /dev/zero | tr '\\0' a; echo; touch {marker}")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert target.status == TargetStatus.SUCCEEDED
    assert target.truncated
    assert len(output_of(target, "stdout")) == 100_000
    assert target.output_bytes == 300_001
    notes = output_of(target, "system")
    assert "output truncated at 97.7 KB" in notes
    assert "more output was discarded" in notes
    assert Path(marker).exists()
    Path(marker).unlink()


def test_binary_and_invalid_utf8_output_is_stored_readably(user, ssh_server, make_action):
    action = make_action(r"printf 'ok \377\376 bad \000 nul \342\202\254 euro\n'")
    run = execute(start(action, user, [ssh_server]))
    target = run.targets.get()
    assert target.status == TargetStatus.SUCCEEDED
    assert output_of(target) == "ok \ufffd\ufffd bad \u2400 nul € euro\n"


def test_fifty_servers_run_concurrently_and_each_stores_its_own_output(
    team, user, sshd_fleet, make_action
):
    fleet = sshd_fleet(50)
    servers = [add_server(team, user, s, name=f"node-{i:02d}") for i, s in enumerate(fleet)]
    action = make_action("sleep 1; echo $PT_SERVER_NAME", concurrency=50)
    began = time.monotonic()
    run = execute(start(action, user, servers))
    elapsed = time.monotonic() - began
    assert run.status == RunStatus.SUCCEEDED
    outputs = {t.server_name: output_of(t) for t in run.targets.all()}
    assert outputs == {s.name: f"{s.name}\n" for s in servers}
    assert elapsed < 25  # one at a time would take over 50 s


def test_a_large_run_is_split_into_shards_that_each_take_their_own_targets(
    team, user, sshd, make_action, settings
):
    settings.ACTIONS_SHARD_SIZE = 2
    servers = [add_server(team, user, sshd, name=f"same-host-{i}") for i in range(5)]
    run = start(make_action("echo ok"), user, servers)
    assert run.shard_count == 3
    assert sorted(run.targets.values_list("shard", flat=True)) == [0, 0, 1, 1, 2]
    run = execute(run)
    assert run.status == RunStatus.SUCCEEDED


def test_stop_after_k_failures_skips_the_targets_not_yet_started(team, user, make_action):
    servers = [pinned_server(team, f"down-{i}", port=9) for i in range(4)]
    action = make_action(concurrency=1, failure_limit=2)
    run = execute(start(action, user, servers))
    statuses = sorted(run.targets.values_list("status", flat=True))
    assert statuses == ["cancelled", "cancelled", "unreachable", "unreachable"]
    skipped = run.targets.filter(status="cancelled").first()
    assert "stopped after 2 failed targets" in skipped.error
    assert run.status == RunStatus.FAILED


def test_a_target_already_taken_by_another_worker_is_not_run_twice(user, ssh_server, make_action):
    run = execute(start(make_action("echo once"), user, [ssh_server]))
    run = execute(run)  # a redelivered task finds nothing queued
    assert output_of(run.targets.get()) == "once\n"


def test_the_remote_program_starts_only_a_watcher_beside_the_script(user, ssh_server, make_action):
    """On the server: the `sh` reading the program has two children, the script and
    the watcher that stops it on cancel; nothing else (no temporary file helpers)."""
    script = 'ps -o comm= --ppid "$PPID" | sort | tr "\\n" " "; echo; ps -o comm= -p "$PPID"'
    run = execute(start(make_action(script), user, [ssh_server]))
    children, parent = output_of(run.targets.get(), "stdout").splitlines()
    assert parent.strip() == "sh"
    assert children.split() == ["bash", "sh"]  # the script (bash -c) and the watcher


def test_a_script_too_large_for_one_argument_still_runs(user, ssh_server, make_action, settings):
    filler = "# " + "x" * 1000 + "\n"
    script = filler * 120 + "echo large script ran\n"  # about 120 KB
    run = execute(start(make_action(script), user, [ssh_server]))
    target = run.targets.get()
    assert target.status == TargetStatus.SUCCEEDED
    assert output_of(target, "stdout") == "large script ran\n"
