"""Webhook triggers: a signed JSON delivery to a hook's URL starts a run of its
action on fixed targets, with values taken from the body checked exactly as the
run form's; a replayed delivery id, a bad signature, a body of the wrong shape
or size, a disabled hook and too many deliveries are refused with a clear
answer, and every delivery is logged."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from pipetower.actions import webhooks
from pipetower.actions.models import Run, Webhook, WebhookDelivery
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import NotAllowed, ServiceError
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def action(make_action):
    return make_action(
        "echo $PT_PARAM_REF",
        parameters=[
            {"name": "ref", "kind": "string", "required": True},
            {"name": "count", "kind": "integer", "min": 1, "max": 10},
            {"name": "where", "kind": "string"},
        ],
    )


@pytest.fixture
def hook(action, user, server):
    return make_hook(action, user, server)


def make_hook(action, actor, server, **fields: Any) -> tuple[Webhook, str]:
    fields.setdefault("name", "on push")
    fields.setdefault("server_ids", [server.pk])
    fields.setdefault("values", {"where": "eu"})
    fields.setdefault("mapping", {"ref": "ref", "count": "head_commit.count"})
    return webhooks.webhook_create(action=action, actor=actor, **fields)


def deliver(
    hook: tuple[Webhook, str],
    body: Any,
    *,
    delivery: str | None = "d-1",
    secret: str | None = None,
    signature: str | None = None,
    raw: bytes | None = None,
    header: str = "HTTP_X_GITHUB_DELIVERY",
) -> Any:
    webhook, hook_secret = hook
    data = raw if raw is not None else json.dumps(body).encode()
    extra: dict[str, str] = {}
    if signature is None:
        signature = webhooks.signature_for(secret or hook_secret, data)
    if signature:
        extra["HTTP_X_HUB_SIGNATURE_256"] = signature
    if delivery is not None:
        extra[header] = delivery
    return Client().post(
        f"/hooks/{webhook.token}/", data=data, content_type="application/json", **extra
    )


PUSH = {"ref": "refs/heads/main", "head_commit": {"id": "abc123", "count": 3}}


# --- a good delivery -------------------------------------------------------------------


def test_a_signed_delivery_starts_a_run_with_values_from_the_body(hook, server):
    answer = deliver(hook, PUSH)
    assert answer.status_code == 202
    run = Run.objects.get()
    assert answer.json() == {"run_id": run.pk, "url": f"/teams/{run.team.slug}/runs/{run.pk}/"}
    assert run.trigger == Run.Trigger.WEBHOOK
    assert run.started_by is None
    assert run.started_by_text == "Webhook: on push"
    assert run.params == {"ref": "refs/heads/main", "count": 3, "where": "eu"}
    assert [t.server_id for t in run.targets.all()] == [server.pk]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.delivery_id, delivery.run) == (202, "d-1", run)
    accepted = AuditEvent.objects.get(verb="webhook.delivery_accepted")
    assert accepted.data["run"] == run.pk and accepted.actor is None


def test_the_pipetower_delivery_header_serves_as_well(hook):
    answer = deliver(hook, PUSH, header="HTTP_X_PIPETOWER_DELIVERY")
    assert answer.status_code == 202


def test_a_hook_without_signatures_takes_an_unsigned_delivery(action, user, server):
    hook = make_hook(action, user, server, require_signature=False)
    assert deliver(hook, PUSH, signature="").status_code == 202


# --- signatures ------------------------------------------------------------------------


def test_a_delivery_without_a_signature_is_refused_with_401(hook):
    answer = deliver(hook, PUSH, signature="")
    assert answer.status_code == 401
    assert "X-Hub-Signature-256 header is missing" in answer.json()["error"]["message"]
    assert not Run.objects.exists()


def test_a_delivery_signed_with_another_secret_is_refused_with_401(hook):
    answer = deliver(hook, PUSH, secret="not-the-secret")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "signature_mismatch"
    assert not Run.objects.exists()
    refused = WebhookDelivery.objects.get()
    assert refused.status == 401 and refused.run is None
    event = AuditEvent.objects.get(verb="webhook.delivery_refused")
    assert event.data["status"] == 401
    assert hook[1] not in json.dumps(event.data)


def test_a_signature_of_another_body_is_refused(hook):
    other = webhooks.signature_for(hook[1], b'{"ref": "evil"}')
    assert deliver(hook, PUSH, signature=other).status_code == 401


def test_a_regenerated_secret_makes_the_old_one_stop_working(hook, user):
    webhook, old = hook
    _, new = webhooks.webhook_secret_regenerate(webhook=webhook, actor=user)
    assert new != old
    assert deliver((webhook, old), PUSH).status_code == 401
    assert deliver((webhook, new), PUSH, delivery="d-2").status_code == 202


# --- replays ---------------------------------------------------------------------------


def test_a_replayed_delivery_is_refused_with_409_and_starts_no_second_run(hook):
    assert deliver(hook, PUSH).status_code == 202
    again = deliver(hook, PUSH)
    assert again.status_code == 409
    assert "already accepted" in again.json()["error"]["message"]
    assert again.json()["error"]["code"] == "replayed"
    assert Run.objects.count() == 1
    assert deliver(hook, PUSH, delivery="d-2").status_code == 202


def test_a_delivery_without_an_id_is_refused_with_400(hook):
    answer = deliver(hook, PUSH, delivery=None)
    assert answer.status_code == 400
    assert "X-GitHub-Delivery or X-Pipetower-Delivery" in answer.json()["error"]["message"]
    assert not Run.objects.exists()


def test_a_refused_delivery_does_not_use_up_its_id(hook, user, action):
    assert deliver(hook, {"head_commit": {}}).status_code == 422
    assert deliver(hook, PUSH).status_code == 202


def test_delivery_ids_are_forgotten_after_the_replay_window(hook, settings):
    settings.ACTIONS_WEBHOOK_REPLAY_WINDOW = timedelta(hours=24)
    assert deliver(hook, PUSH).status_code == 202
    assert webhooks.webhook_deliveries_purge() == 0
    later = timezone.now() + timedelta(hours=25)
    assert webhooks.webhook_deliveries_purge(now=later) == 1
    assert not WebhookDelivery.objects.exists()


# --- the body --------------------------------------------------------------------------


def test_a_missing_required_value_is_refused_with_422_naming_the_field(hook):
    answer = deliver(hook, {"head_commit": {"count": 2}})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "ref"
    assert "Parameter ref is required." in error["message"]
    assert not Run.objects.exists()


def test_a_value_out_of_bounds_is_refused_as_the_run_form_refuses_it(hook):
    answer = deliver(hook, {"ref": "main", "head_commit": {"count": 99}})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "count"
    assert "10" in answer.json()["error"]["message"]


def test_an_object_where_a_value_is_expected_is_refused_with_422(hook):
    answer = deliver(hook, {"ref": {"name": "main"}})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "ref"
    assert "not a single value" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (b"ref=main", "not_json", "The body is not JSON."),
        (b"\xff\xfe", "not_json", "The body is not JSON."),
        (b'["main"]', "not_an_object", "must be a JSON object"),
        (b'"main"', "not_an_object", "must be a JSON object"),
    ],
)
def test_a_body_of_the_wrong_shape_is_refused_with_400(hook, raw, code, message):
    answer = deliver(hook, None, raw=raw)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code
    assert message in answer.json()["error"]["message"]


def test_a_body_over_the_limit_is_refused_with_413(hook, settings):
    settings.ACTIONS_WEBHOOK_BODY_MAX_BYTES = 1024
    big = {"ref": "main", "padding": "x" * 2000}
    answer = deliver(hook, big)
    assert answer.status_code == 413
    assert "1,024 bytes" in answer.json()["error"]["message"]
    assert not Run.objects.exists()


# --- the hook --------------------------------------------------------------------------


def test_an_unknown_token_is_answered_404(hook):
    answer = Client().post("/hooks/nothing-here/", data=b"{}", content_type="application/json")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_a_disabled_hook_is_answered_404_and_the_refusal_is_logged(hook, user):
    webhooks.webhook_update(webhook=hook[0], actor=user, enabled=False)
    answer = deliver(hook, PUSH)
    assert answer.status_code == 404
    assert "disabled" in answer.json()["error"]["message"]
    assert WebhookDelivery.objects.get().status == 404
    assert not Run.objects.exists()


def test_a_get_is_not_a_delivery(hook):
    assert Client().get(f"/hooks/{hook[0].token}/").status_code == 405


def test_too_many_deliveries_are_refused_with_429_and_retry_after(hook, settings):
    settings.ACTIONS_WEBHOOK_RATE_LIMIT = "2/m"
    assert deliver(hook, PUSH, delivery="a").status_code == 202
    assert deliver(hook, PUSH, delivery="b").status_code == 202
    answer = deliver(hook, PUSH, delivery="c")
    assert answer.status_code == 429
    assert 1 <= int(answer["Retry-After"]) <= 60
    assert Run.objects.count() == 2


# --- creating and changing hooks ------------------------------------------------------


def test_the_secret_is_stored_encrypted_and_the_url_token_is_unguessable(hook):
    webhook, secret = hook
    assert len(secret) >= 40 and len(webhook.token) >= 40
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM actions_webhook WHERE id = %s", [webhook.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored and stored.startswith("pt2:")
    assert Webhook.objects.get().secret == secret


def test_a_viewer_cannot_create_a_webhook(action, make_member, server):
    viewer = make_member(Role.VIEWER)
    with pytest.raises(NotAllowed):
        make_hook(action, viewer, server)
    assert not Webhook.objects.exists()


def test_an_operator_can_create_a_webhook(action, make_member, server):
    operator = make_member(Role.OPERATOR)
    webhook, _ = make_hook(action, operator, server)
    assert webhook.created_by == operator
    assert AuditEvent.objects.filter(verb="webhook.created", actor=operator).exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": ""}, "name", "Give the webhook a name."),
        ({"name": "x" * 101}, "name", "too long"),
        ({"server_ids": []}, "targets", "Choose at least one server or tag"),
        ({"mapping": {"nope": "ref"}}, "mapping", "Unknown parameter 'nope'"),
        ({"mapping": {"ref": "head commit"}}, "mapping", "is not a path in the body"),
        ({"mapping": {"ref": "a..b"}}, "mapping", "is not a path in the body"),
        ({"mapping": ["ref"]}, "mapping", "must pair parameter names"),
        ({"mapping": {}, "values": {"where": "eu"}}, "ref", "Parameter ref is required."),
        ({"values": {"ref": "main"}}, "ref", "has a fixed value and is taken from the body"),
        ({"values": {"count": "many"}, "mapping": {"ref": "ref"}}, "count", "whole number"),
    ],
)
def test_bad_hook_settings_are_refused_with_what_is_wrong(
    action, user, server, fields, field, message
):
    with pytest.raises(ServiceError) as caught:
        make_hook(action, user, server, **fields)
    assert caught.value.field == field
    assert message in caught.value.message
    assert not Webhook.objects.exists()


def test_two_hooks_of_an_action_cannot_share_a_name(hook, action, user, server):
    with pytest.raises(ServiceError) as caught:
        make_hook(action, user, server)
    assert caught.value.status == 409


def test_deleting_a_hook_keeps_its_runs_named(hook, user):
    assert deliver(hook, PUSH).status_code == 202
    webhooks.webhook_delete(webhook=hook[0], actor=user)
    run = Run.objects.get()
    assert run.webhook is None and run.started_by_text == "Webhook: on push"
    assert deliver(hook, PUSH, delivery="d-2").status_code == 404


def test_a_team_scheduled_for_deletion_starts_no_run_and_says_why(hook, team):
    team.deletion_scheduled_for = timezone.now() + timedelta(days=14)
    team.save()
    answer = deliver(hook, PUSH)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "team_frozen"
    assert "scheduled for deletion" in answer.json()["error"]["message"]
    assert not Run.objects.exists()
    assert WebhookDelivery.objects.get().status == 409


def test_a_body_larger_than_django_reads_is_refused_with_413_unread(hook):
    big = b'{"ref": "' + b"x" * (6 * 1024 * 1024) + b'"}'  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    answer = deliver(hook, None, raw=big)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"


def test_a_nul_character_in_the_body_is_refused_with_a_json_400(hook):
    answer = deliver(hook, {"ref": "main\x00evil"})
    assert answer.status_code == 400
    assert "NUL" in answer.json()["error"]["message"]
    assert not Run.objects.exists()


def test_the_audit_of_a_hook_masks_its_secret_values_and_never_holds_its_secret(
    make_action, user, server
):
    action = make_action(
        parameters=[{"name": "token", "kind": "secret"}, {"name": "ref", "kind": "string"}]
    )
    hook = make_hook(action, user, server, values={"token": "s3cret-value"}, mapping={"ref": "ref"})
    assert deliver(hook, PUSH, secret=None).status_code == 202
    everything = json.dumps([e.data for e in AuditEvent.objects.all()])
    assert "s3cret-value" not in everything
    assert hook[1] not in everything
    assert AuditEvent.objects.get(verb="webhook.created").data["params"] == {"token": "••••••"}


def test_the_scheduler_purges_deliveries_past_the_window(hook, settings):
    from pipetower.actions.tasks import webhook_deliveries_purge_task

    entry = settings.CELERY_BEAT_SCHEDULE["purge-webhook-deliveries"]
    assert entry["task"] == webhook_deliveries_purge_task.name
    assert deliver(hook, PUSH).status_code == 202
    WebhookDelivery.objects.update(received_at=timezone.now() - timedelta(hours=25))
    assert webhook_deliveries_purge_task.delay().get() == 1
    assert not WebhookDelivery.objects.exists()
    # The id is forgotten with it: the same delivery now starts a run again.
    assert deliver(hook, PUSH).status_code == 202


def test_a_delivery_for_an_action_that_requires_approval_starts_a_waiting_run(
    hook, action, user, mailoutbox, django_capture_on_commit_callbacks
):
    from pipetower.actions import services
    from pipetower.actions.models import ApprovalRequest, RunStatus

    services.action_update(action=action, actor=user, requires_approval=True)
    with django_capture_on_commit_callbacks(execute=True):
        answer = deliver(hook, PUSH)
    assert answer.status_code == 202
    run = Run.objects.get()
    assert run.status == RunStatus.PENDING_APPROVAL
    request = ApprovalRequest.objects.get(run=run)
    assert request.requested_by is None
    assert [m.to for m in mailoutbox] == [[user.email]]  # nobody asked: every admin is told
    assert "Webhook: on push wants to run" in mailoutbox[0].body
