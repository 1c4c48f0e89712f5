"""Actions and runs through their services: rules, messages, audit, run state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipetower.actions import engine, params, services
from pipetower.actions.models import Action, Run, RunStatus, RunTarget, TargetStatus
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.servers.models import TeamServerSettings
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server, unpinned_server
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


# --- actions ---------------------------------------------------------------------------


def test_an_admin_creates_an_action_and_it_is_audited(team, user, make_action):
    action = make_action("uptime", name="Uptime", description="How long up")
    assert Action.objects.get(team=team).name == "Uptime"
    event = AuditEvent.objects.get(verb="action.created")
    assert (event.team, event.actor, event.target_id) == (team, user, str(action.pk))


def test_an_operator_cannot_create_actions(team, operator):
    with pytest.raises(NotAllowed, match="Only admins and above can create actions"):
        services.action_create(team=team, actor=operator, name="x", script="true")


def test_two_actions_cannot_share_a_name(make_action):
    make_action(name="deploy")
    with pytest.raises(Conflict, match="An action named 'deploy' already exists"):
        make_action(name="deploy")


def test_an_oversized_script_is_refused_with_its_size_and_the_limit(make_action, settings):
    settings.ACTIONS_SCRIPT_MAX_BYTES = 1000
    with pytest.raises(ServiceError) as caught:
        make_action("echo " + "x" * 2000)
    assert caught.value.field == "script"
    assert caught.value.message.startswith("The script is 2,005 bytes; the limit is 1,000 bytes.")


def test_a_run_as_name_that_is_not_a_user_name_is_refused(make_action):
    with pytest.raises(ServiceError, match="not a valid user name for run-as"):
        make_action(run_as="root; rm -rf /")


def test_parameter_definitions_are_checked(make_action):
    with pytest.raises(ServiceError, match="Parameter name '1abc' is not allowed"):
        make_action(parameters=[{"name": "1abc"}])
    with pytest.raises(ServiceError, match="Two parameters are named Region"):
        make_action(parameters=[{"name": "region"}, {"name": "Region"}])
    with pytest.raises(ServiceError, match="Choice parameter env needs at least one choice"):
        make_action(parameters=[{"name": "env", "kind": "choice"}])
    with pytest.raises(ServiceError, match="Default of parameter n: Parameter n must be a whole"):
        make_action(parameters=[{"name": "n", "kind": "integer", "default": "ten"}])


def test_a_secret_default_is_stored_encrypted_and_never_in_the_definitions(make_action):
    action = make_action(parameters=[{"name": "token", "kind": "secret", "default": "hunter2"}])
    assert action.parameters[0]["default"] is None
    raw = Action.objects.filter(pk=action.pk).values_list("secret_defaults", flat=True).get()
    assert "hunter2" not in raw and raw.startswith("pt2:")
    assert Action.objects.get(pk=action.pk).secret_default_values() == {"token": "hunter2"}


def test_editing_an_action_records_what_changed(user, make_action):
    action = make_action("echo 1")
    services.action_update(action=action, actor=user, script="echo 2", timeout_seconds=60)
    event = AuditEvent.objects.get(verb="action.updated")
    assert event.data["changed"] == ["script", "timeout_seconds"]


def test_deleting_an_action_keeps_its_runs(user, server, make_action):
    action = make_action("echo hi")
    run = services.run_start(action=action, actor=user, server_ids=[server.pk])
    services.action_delete(action=action, actor=user)
    run.refresh_from_db()
    assert run.action is None and run.action_name == action.name and run.script == "echo hi"
    assert AuditEvent.objects.filter(verb="action.deleted").exists()


# --- parameter values ------------------------------------------------------------------


SPECS, _ = params.definitions_clean(
    [
        {"name": "count", "kind": "integer", "required": True},
        {"name": "verbose", "kind": "boolean", "default": False},
        {"name": "env", "kind": "choice", "choices": ["staging", "production"]},
        {"name": "note", "kind": "string"},
        {"name": "token", "kind": "secret"},
    ]
)


def test_values_are_typed_and_secrets_kept_apart():
    plain, secrets = params.values_resolve(
        SPECS, {}, {"count": "7", "verbose": "yes", "env": "staging", "token": "t0k"}
    )
    assert plain == {"count": 7, "verbose": True, "env": "staging", "note": ""}
    assert secrets == {"token": "t0k"}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"verbose": False}, "Parameter count is required."),
        ({"count": "", "verbose": False}, "Parameter count is required."),
        ({"count": "ten"}, "Parameter count must be a whole number, not 'ten'."),
        ({"count": True}, "Parameter count must be a whole number, not True."),
        ({"count": 1, "verbose": "maybe"}, "Parameter verbose must be true or false, not 'maybe'."),
        (
            {"count": 1, "verbose": 0, "env": "dev"},
            "Parameter env must be one of: staging, production; 'dev' is not.",
        ),
        ({"count": 1, "colour": "red"}, "Unknown parameter colour. This action takes: count, env"),
        ({"count": 1, "verbose": 0, "note": "a\x00b"}, "note must not contain a NUL character."),
        (
            {"count": 1},
            "Parameter verbose was not given. Pipetower does not fill in defaults on its own: "
            "give a value (the default is 'false'), or ask for the action's defaults.",
        ),
    ],
)
def test_bad_values_are_refused_with_a_message_naming_the_parameter(given, message):
    with pytest.raises(ServiceError) as caught:
        params.values_resolve(SPECS, {}, given)
    assert caught.value.message.startswith(message)


def test_the_remote_program_quotes_values_and_never_puts_them_in_the_script():
    program = engine.remote_program(
        script='echo "$PT_PARAM_X"', env={"PT_PARAM_X": "$(reboot)'"}, delimiter="__END__"
    )
    assert "export PT_PARAM_X='$(reboot)'\"'\"''" in program
    assert program.count("$(reboot)") == 1
    # A plain script is one quoted argument of bash -c: no temporary file, no
    # mktemp, cat, chmod or rm processes on the server.
    assert "__pt_s='echo \"$PT_PARAM_X\"'\n" in program
    assert "mktemp" not in program and "rm -rf" not in program


def test_a_shebang_script_goes_through_a_private_file_with_a_quoted_here_document():
    program = engine.remote_program(script="#!/bin/sh\necho hi", env={}, delimiter="__END__")
    assert "cat > \"$__pt_d/script\" <<'__END__'\n#!/bin/sh\necho hi\n__END__\n" in program


def test_a_script_line_equal_to_the_delimiter_gets_another_delimiter():
    program = engine.remote_program(script="#!/bin/sh\nx\n__END__\ny", env={}, delimiter="__END__")
    assert "<<'__END__'" not in program


def test_a_secret_split_across_reads_is_still_masked():
    masker = engine.Masker(["topsecret"])
    text = masker.feed("a tops") + masker.feed("ecret b") + masker.feed("", final=True)
    assert text == "a •••••• b"


def test_a_multibyte_character_split_across_reads_is_decoded_whole():
    buffer = engine.OutputBuffer(limit=1000)
    euro = "€".encode()
    buffer.feed("stdout", b"price " + euro[:1])
    buffer.feed("stdout", euro[1:] + b"5\n")
    buffer.close()
    assert buffer.take() == [("stdout", "price €5\n")]


# --- starting runs -----------------------------------------------------------------------


def test_starting_a_run_creates_one_target_per_server_and_audits(team, user, server, make_action):
    other = pinned_server(team, "web-2", port=9)
    action = make_action(parameters=[{"name": "token", "kind": "secret"}])
    run = services.run_start(
        action=action, actor=user, server_ids=[server.pk, other.pk], values={"token": "abc"}
    )
    assert list(run.targets.values_list("server_name", "status")) == [
        ("web-1", "queued"),
        ("web-2", "queued"),
    ]
    assert run.status == RunStatus.QUEUED
    event = AuditEvent.objects.get(verb="run.started")
    assert event.data["params"] == {"token": "••••••"}
    assert "abc" not in Run.objects.filter(pk=run.pk).values_list("secret_params", flat=True).get()


def test_a_viewer_cannot_start_a_run(user, viewer, server, make_action):
    with pytest.raises(NotAllowed, match="Only operators and above can run actions"):
        services.run_start(action=make_action(), actor=viewer, server_ids=[server.pk])


def test_tags_choose_every_server_carrying_them(team, user, make_action):
    from pipetower.servers.models import Tag

    web = Tag.objects.create(team=team, name="web")
    a, b = pinned_server(team, "a", 9), pinned_server(team, "b", 9)
    pinned_server(team, "c", 9)
    a.tags.add(web)
    b.tags.add(web)
    run = services.run_start(action=make_action(), actor=user, tags=["tag:WEB"])
    assert sorted(run.targets.values_list("server_name", flat=True)) == ["a", "b"]


def test_no_target_at_all_is_refused(user, make_action):
    with pytest.raises(ServiceError, match="Choose at least one server or tag to run on"):
        services.run_start(action=make_action(), actor=user)


def test_a_server_of_another_team_is_not_found(user, make_action):
    elsewhere = pinned_server(TeamFactory(), "theirs", port=9)
    with pytest.raises(services.TargetNotFound) as caught:
        services.run_start(action=make_action(), actor=user, server_ids=[elsewhere.pk])
    assert caught.value.status == 404
    assert caught.value.message == f"Server {elsewhere.pk} was not found in this team."


def test_a_server_without_a_pinned_host_key_is_refused_before_anything_runs(
    team, user, make_action
):
    fresh = unpinned_server(team, "fresh")
    with pytest.raises(ServiceError) as caught:
        services.run_start(action=make_action(), actor=user, server_ids=[fresh.pk])
    assert caught.value.code == "host_key_not_pinned"
    assert caught.value.message.startswith("No host key is pinned for fresh.")
    assert not Run.objects.exists()


def test_trust_on_first_use_allows_a_server_without_a_pin(team, user, make_action):
    TeamServerSettings.objects.create(team=team, trust_on_first_use=True)
    fresh = unpinned_server(team, "fresh")
    run = services.run_start(action=make_action(), actor=user, server_ids=[fresh.pk])
    assert run.targets.count() == 1


# --- run state ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["queued", "queued"], "queued"),
        (["running", "queued"], "running"),
        (["succeeded", "connecting"], "running"),
        (["succeeded", "succeeded"], "succeeded"),
        (["succeeded", "timed_out"], "failed"),
        (["cancelled", "unreachable"], "failed"),
        (["succeeded", "cancelled"], "cancelled"),
        (["worker_lost"], "failed"),
    ],
)
def test_the_run_status_follows_from_its_targets(user, server, make_action, statuses, expected):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk] * 1)
    run.targets.all().delete()
    RunTarget.objects.bulk_create(
        [RunTarget(run=run, server_name=f"s{i}", status=s) for i, s in enumerate(statuses)]
    )
    assert services.run_status_refresh(run_id=run.pk) == expected


def test_cancelling_a_queued_run_ends_every_target_at_once(user, operator, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    run = services.run_cancel(run=run, actor=operator)
    assert run.status == RunStatus.CANCELLED and run.cancelled_by == operator
    target = run.targets.get()
    assert target.status == TargetStatus.CANCELLED
    assert target.error == f"Cancelled by {operator.email} before it started."
    with pytest.raises(Conflict, match="This run has already finished"):
        services.run_cancel(run=run, actor=operator)


def test_rerun_failed_starts_a_new_run_on_only_the_failed_servers(team, user, make_action):
    a, b = pinned_server(team, "a", 9), pinned_server(team, "b", 9)
    action = make_action(parameters=[{"name": "token", "kind": "secret"}])
    run = services.run_start(
        action=action, actor=user, server_ids=[a.pk, b.pk], values={"token": "xyz"}
    )
    run.targets.filter(server=a).update(status=TargetStatus.SUCCEEDED)
    run.targets.filter(server=b).update(status=TargetStatus.UNREACHABLE)
    services.run_status_refresh(run_id=run.pk)
    run.refresh_from_db()
    again = services.run_rerun_failed(run=run, actor=user)
    assert list(again.targets.values_list("server_name", flat=True)) == ["b"]
    assert again.rerun_of == run and again.trigger == Run.Trigger.RERUN
    assert again.secret_param_values() == {"token": "xyz"}


def test_rerun_is_refused_while_running_and_when_nothing_failed(user, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    with pytest.raises(Conflict, match="This run is still going"):
        services.run_rerun_failed(run=run, actor=user)
    run.targets.update(status=TargetStatus.SUCCEEDED)
    services.run_status_refresh(run_id=run.pk)
    run.refresh_from_db()
    with pytest.raises(Conflict, match="No target failed in this run"):
        services.run_rerun_failed(run=run, actor=user)


def test_rerun_of_a_deleted_action_is_gone(user, server, make_action):
    action = make_action()
    run = services.run_start(action=action, actor=user, server_ids=[server.pk])
    run.targets.update(status=TargetStatus.FAILED)
    services.run_status_refresh(run_id=run.pk)
    services.action_delete(action=action, actor=user)
    run.refresh_from_db()
    with pytest.raises(Gone, match="has been deleted"):
        services.run_rerun_failed(run=run, actor=user)


def test_the_reaper_ends_targets_with_a_stale_heartbeat_as_worker_lost(user, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    target = run.targets.get()
    assert services.run_target_claim(target_id=target.pk, worker="w1")
    services.output_chunks_store(target_id=target.pk, chunks=[("stdout", "before the crash\n")])
    RunTarget.objects.filter(pk=target.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    assert services.run_targets_reap() == 1
    target.refresh_from_db()
    run.refresh_from_db()
    assert target.status == TargetStatus.WORKER_LOST
    assert "stopped responding" in target.error
    assert target.chunks.get().data == "before the crash\n"
    assert run.status == RunStatus.FAILED
    # A late answer from the lost worker does not overwrite the ending.
    assert not services.run_target_finish(target_id=target.pk, status=TargetStatus.SUCCEEDED)


def test_the_reaper_leaves_targets_with_a_fresh_heartbeat_alone(user, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    target = run.targets.get()
    services.run_target_claim(target_id=target.pk, worker="w1")
    assert services.run_targets_reap() == 0
    assert RunTarget.objects.get(pk=target.pk).status == TargetStatus.CONNECTING


def test_role_needed_is_named_in_the_refusal(team, make_member, server, make_action):
    viewer = make_member(Role.VIEWER)
    with pytest.raises(NotAllowed, match="Your role is Viewer"):
        services.action_update(action=make_action(), actor=viewer, name="x")


def test_a_task_delivered_again_while_its_shard_lives_takes_nothing(user, server, make_action):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    ids = list(run.targets.values_list("pk", flat=True))
    assert services.run_targets_hold(run_id=run.pk, target_ids=ids, worker="w1") == ids
    assert services.run_targets_hold(run_id=run.pk, target_ids=ids, worker="w2") == []
    # Also on another process of the same worker (prefork children share its name).
    assert services.run_targets_hold(run_id=run.pk, target_ids=ids, worker="w1") == []
    RunTarget.objects.filter(pk__in=ids).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.run_targets_hold(run_id=run.pk, target_ids=ids, worker="w2") == ids


def test_the_reaper_queues_again_the_queued_targets_of_a_dead_shard(
    user, server, make_action, django_capture_on_commit_callbacks
):
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    target = run.targets.get()
    services.run_targets_hold(run_id=run.pk, target_ids=[target.pk], worker="w1")
    assert services.run_targets_reap() == 0  # a live shard's queued target stays put
    RunTarget.objects.filter(pk=target.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.run_targets_reap() == 1
    assert len(callbacks) == 1  # a new shard task for it
    target.refresh_from_db()
    assert (target.status, target.heartbeat_at, target.worker) == (TargetStatus.QUEUED, None, "")
    assert services.run_targets_reap() == 0  # waiting in the broker now: left alone


def test_a_shard_claims_many_targets_with_the_team_key_parsed_once(team, user, make_action):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.actions.conftest import pinned_server

    def claim(count: int) -> tuple[int, list]:
        servers = [pinned_server(team, f"n{count}-{i}", port=9) for i in range(count)]
        run = services.run_start(
            action=make_action(concurrency=100), actor=user, server_ids=[s.pk for s in servers]
        )
        ids = list(run.targets.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            claimed, rest = engine._claim(
                run_id=run.pk, target_ids=ids, worker="w", want=100, cache={}
            )
        assert rest == [] and len(claimed) == count
        return len(queries), [spec for _, spec, _ in claimed]

    claim(1)  # first reads create the team's settings row
    few, _ = claim(2)
    many, specs = claim(12)
    assert many == few  # no query per target
    assert all(spec.client_keys is specs[0].client_keys for spec in specs)  # parsed once
