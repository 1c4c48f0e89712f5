"""Notifications when a run ends, delivered to a real HTTP receiver on 127.0.0.1
and to a real SMTP server: signature, retries with backoff, timeouts, refusals."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from typing import Any

import pytest

from pipetower.notifications import delivery, services
from pipetower.notifications.models import NotificationDelivery, NotificationRule
from tests.factories import member
from tests.notifications.conftest import DRIP, HANG, end_run

pytestmark = pytest.mark.django_db


def webhook_rule(team: Any, user: Any, url: str, **fields: Any) -> tuple[NotificationRule, str]:
    return services.notification_rule_create(
        team=team, actor=user, name=fields.pop("name", "ops hook"), channel="webhook", url=url,
        **fields,
    )  # fmt: skip


def log(rule: NotificationRule) -> list[NotificationDelivery]:
    return list(rule.deliveries.order_by("attempt", "id"))


def test_a_failed_run_posts_a_signed_json_notification(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    hook = receiver()
    rule, secret = webhook_rule(team, user, hook.url, when="failure")
    with django_capture_on_commit_callbacks(execute=True):
        run = end_run(action, "failed", "succeeded")

    [request] = hook.received
    assert request.path == "/hooks/pipetower?team=engines"
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Pipetower-Signature"] == expected
    body = request.json
    assert body["timestamp"] == int(request.headers["X-Pipetower-Timestamp"])
    assert abs(body["timestamp"] - time.time()) < 60
    assert request.headers["X-Pipetower-Event"] == "failed"
    assert body["event"] == "failed"
    assert body["run"]["id"] == run.pk and body["run"]["status"] == "failed"
    assert body["run"]["servers"] == {"total": 2, "succeeded": 1, "failed": 1}
    assert body["run"]["url"].endswith(f"/teams/engines/runs/{run.pk}/")
    assert body["action"] == {"id": action.pk, "name": "deploy"}
    assert body["text"] == f"Run #{run.pk} of deploy failed in Analytical Engines: " + (
        "1 of 2 servers succeeded, 1 failed."
    )
    [row] = log(rule)
    assert (row.outcome, row.status_code, row.attempt, row.run_id) == ("delivered", 200, 1, run.pk)


def test_only_the_rules_secret_verifies_the_signature(notify_settings, receiver, team, user):
    hook = receiver()
    rule, secret = webhook_rule(team, user, hook.url, when="always")
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    [request] = hook.received
    signature = request.headers["X-Pipetower-Signature"]
    for key, verifies in ((secret, True), ("not the secret", False)):
        made = "sha256=" + hmac.new(key.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(made, signature) is verifies
    assert request.json["event"] == "test" and request.json["run"] is None


def test_the_slack_format_sends_only_text(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    hook = receiver()
    webhook_rule(team, user, hook.url, when="always", format="slack")
    with django_capture_on_commit_callbacks(execute=True):
        run = end_run(action, "succeeded")
    body = hook.received[0].json
    assert list(body) == ["text"]
    assert body["text"].startswith(f"Run #{run.pk} of deploy succeeded in Analytical Engines")
    assert f"/runs/{run.pk}/|Open run #{run.pk}>" in body["text"]


def test_a_receiver_answering_500_is_retried_then_delivered(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    notify_settings.NOTIFY_BACKOFF_SECONDS = 7
    hook = receiver([500])
    rule, _ = webhook_rule(team, user, hook.url)
    with django_capture_on_commit_callbacks(execute=True):
        end_run(action, "failed")

    assert len(hook.received) == 2
    ids = {r.headers["X-Pipetower-Delivery"] for r in hook.received}
    assert len(ids) == 1  # the same notification, tried twice
    first, second = log(rule)
    assert (first.outcome, first.status_code, first.attempt) == ("retrying", 500, 1)
    assert first.message == (
        "Answered 500 Internal Server Error. Attempt 1 of 3; trying again in 7 s."
    )
    assert first.next_retry_at is not None
    assert (second.outcome, second.status_code, second.attempt) == ("delivered", 200, 2)


def test_the_backoff_doubles_after_each_attempt(settings):
    settings.NOTIFY_BACKOFF_SECONDS = 10
    assert [delivery.backoff(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 160]


def test_the_retry_is_queued_through_the_outbox_with_its_backoff(
    notify_settings, receiver, team, user, action
):
    from pipetower.core.models import OutboxMessage

    notify_settings.NOTIFY_BACKOFF_SECONDS = 30
    hook = receiver([503])
    rule, _ = webhook_rule(team, user, hook.url)
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=2)
    [queued] = OutboxMessage.objects.filter(task__endswith="notification_send_task")
    assert queued.args == [rule.pk, None, "test", 3]
    assert queued.options == {"countdown": 60}  # 30 s doubled once: the second attempt failed


def test_a_hanging_receiver_times_out_is_retried_and_logged_as_failed(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    hook = receiver([HANG, HANG, HANG])
    rule, _ = webhook_rule(team, user, hook.url)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        end_run(action, "failed")
    elapsed = time.monotonic() - started

    assert len(hook.received) == 3
    assert elapsed < 5  # three timeouts of 0.5 s, not the receiver's 10 s
    rows = log(rule)
    assert [r.outcome for r in rows] == ["retrying", "retrying", "failed"]
    assert rows[-1].status_code is None
    assert rows[-1].message == "No answer within 0.5 s (timed out). Gave up after 3 attempts."


def test_a_receiver_answering_a_byte_at_a_time_is_cut_off_at_the_timeout(
    notify_settings, receiver, team, user
):
    notify_settings.NOTIFY_RETRIES = 0
    hook = receiver([DRIP])
    rule, _ = webhook_rule(team, user, hook.url)
    started = time.monotonic()
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    assert time.monotonic() - started < 3  # not the receiver's 10 s
    [row] = log(rule)
    assert (row.outcome, row.message) == (
        "failed",
        "No answer within 0.5 s (timed out). Gave up after 1 attempt.",
    )


def test_a_closed_port_is_logged_with_the_reason(notify_settings, team, user):
    from tests.smtp import free_port

    notify_settings.NOTIFY_RETRIES = 0
    rule, _ = webhook_rule(team, user, f"http://127.0.0.1:{free_port()}/")
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    [row] = log(rule)
    assert row.message == "Could not connect: Connection refused. Gave up after 1 attempt."


def test_a_4xx_answer_fails_at_once(notify_settings, receiver, team, user, action):
    hook = receiver([404])
    rule, _ = webhook_rule(team, user, hook.url)
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    [row] = log(rule)
    assert (row.outcome, row.status_code) == ("failed", 404)
    assert len(hook.received) == 1


def test_a_loopback_url_is_refused_when_saved_without_the_setting(team, user, settings):
    settings.NOTIFY_ALLOW_PRIVATE = False
    with pytest.raises(services.ServiceError) as refused:
        webhook_rule(team, user, "http://127.0.0.1:9/hook")
    assert refused.value.field == "url"
    assert refused.value.message == (
        "Pipetower does not connect to 127.0.0.1: loopback addresses are forbidden on this "
        "installation (set PIPETOWER_NOTIFY_ALLOW_PRIVATE=1 to allow them)."
    )
    for url in ("http://localhost:8000/", "https://10.1.2.3/", "http://169.254.169.254/"):
        with pytest.raises(services.ServiceError):
            webhook_rule(team, user, url)
    assert not NotificationRule.objects.exists()


def test_the_guard_asks_again_at_send_time(notify_settings, receiver, team, user, action):
    """Saved while allowed; the operator then forbids private addresses: nothing is sent."""
    hook = receiver()
    rule, _ = webhook_rule(team, user, hook.url)
    notify_settings.NOTIFY_ALLOW_PRIVATE = False
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    assert hook.received == []
    [row] = log(rule)
    assert row.outcome == "failed"
    assert row.message.startswith("Not sent: Pipetower does not connect to 127.0.0.1")


def test_a_name_that_resolves_to_loopback_is_refused_at_send_time(
    notify_settings, receiver, team, user
):
    """A host name passes the save-time check (no DNS then); the address it resolves
    to right before sending is checked too (this machine's own name)."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        pytest.skip("this machine's name does not resolve")
    if not address.startswith(("127.", "10.", "192.168.", "172.")):
        pytest.skip("this machine's name resolves to a public address")
    hook = receiver()
    rule, _ = webhook_rule(team, user, f"http://{name}:{hook.port}/")
    notify_settings.NOTIFY_ALLOW_PRIVATE = False
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    [row] = log(rule)
    assert row.outcome == "failed"
    assert f"does not connect to {name} ({address})" in row.message
    assert hook.received == []


def test_an_email_rule_mails_members_at_its_role_through_the_smtp_server(
    settings, smtp_sink, team, user, action, django_capture_on_commit_callbacks
):
    settings.MAILERS = {"default": smtp_sink.mailer}
    admin = member(team, "admin")
    member(team, "viewer")
    rule, secret = services.notification_rule_create(
        team=team, actor=user, name="mail admins", channel="email", recipients="admin"
    )
    assert secret == ""
    with django_capture_on_commit_callbacks(execute=True):
        run = end_run(action, "failed")

    deliveries = smtp_sink.wait_for(2)
    assert sorted(d.rcpt_tos[0] for d in deliveries) == sorted([user.email, admin.email])
    assert all(len(d.rcpt_tos) == 1 for d in deliveries)  # nobody sees the others
    message = deliveries[0].message
    assert f"Run #{run.pk} of deploy failed in Analytical Engines" in message["Subject"]
    assert f"/teams/engines/runs/{run.pk}/" in message.get_content()
    [row] = log(rule)
    assert (row.outcome, row.message) == ("delivered", "Mailed 2 members.")


def test_an_email_rule_for_its_creator_mails_only_them(
    settings, smtp_sink, team, user, action, django_capture_on_commit_callbacks
):
    settings.MAILERS = {"default": smtp_sink.mailer}
    member(team, "owner")
    services.notification_rule_create(
        team=team, actor=user, name="me", channel="email", recipients="creator", when="always"
    )
    with django_capture_on_commit_callbacks(execute=True):
        end_run(action, "succeeded")
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == [user.email]


def test_back_to_normal_is_a_success_after_a_failure_of_the_same_action(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    hook = receiver()
    webhook_rule(team, user, hook.url, when="back_to_normal")
    with django_capture_on_commit_callbacks(execute=True):
        end_run(action, "succeeded")  # nothing failed before: silent
        end_run(action, "failed")  # a failure: silent for this rule
        recovered = end_run(action, "succeeded")  # back to normal
        end_run(action, "succeeded")  # still normal: silent
    assert [r.json["event"] for r in hook.received] == ["back_to_normal"]
    assert hook.received[0].json["run"]["id"] == recovered.pk
    assert "succeeded again after a failure" in hook.received[0].json["text"]


def test_when_decides_which_runs_notify(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    hooks = {when: receiver() for when in ("failure", "success", "always")}
    for when, hook in hooks.items():
        webhook_rule(team, user, hook.url, name=when, when=when)
    with django_capture_on_commit_callbacks(execute=True):
        end_run(action, "succeeded")
        end_run(action, "failed")
        end_run(action, "cancelled")
    events = {when: [r.json["event"] for r in hook.received] for when, hook in hooks.items()}
    assert events == {
        "failure": ["failed"],
        "success": ["succeeded"],
        "always": ["succeeded", "failed", "cancelled"],
    }


def test_disabled_rules_and_rules_of_other_actions_stay_silent(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    from pipetower.actions import services as action_services

    other = action_services.action_create(team=team, actor=user, name="backup", script="true")
    hook = receiver()
    webhook_rule(team, user, hook.url, name="off", enabled=False)
    webhook_rule(team, user, hook.url, name="other action", action=other)
    with django_capture_on_commit_callbacks(execute=True):
        end_run(action, "failed")
    assert hook.received == []
    assert not NotificationDelivery.objects.exists()


def test_a_run_is_notified_once_even_if_its_task_runs_twice(
    notify_settings, receiver, team, user, action, django_capture_on_commit_callbacks
):
    hook = receiver()
    webhook_rule(team, user, hook.url)
    with django_capture_on_commit_callbacks(execute=True):
        run = end_run(action, "failed")
    assert delivery.run_notify(run.pk) == 0
    assert len(hook.received) == 1


def test_a_run_without_rules_queues_no_notification_task(
    team, user, action, django_capture_on_commit_callbacks
):
    from pipetower.core.models import OutboxMessage

    end_run(action, "failed")
    assert not OutboxMessage.objects.filter(task__contains="notification").exists()


def test_old_delivery_rows_are_purged(notify_settings, receiver, team, user):
    from datetime import timedelta

    from django.utils import timezone

    hook = receiver()
    rule, _ = webhook_rule(team, user, hook.url)
    row = delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    assert row is not None
    later = timezone.now() + timedelta(days=notify_settings.NOTIFY_LOG_DAYS, minutes=1)
    assert delivery.deliveries_purge(now=later) == 1
    assert not rule.deliveries.exists()
