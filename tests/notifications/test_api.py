"""The notifications API: the same rules and messages as the pages."""

from __future__ import annotations

import pytest

from pipetower.notifications import delivery, services
from pipetower.notifications.models import NotificationRule
from tests.factories import member

pytestmark = pytest.mark.django_db

BASE = "/teams/engines/notifications"
URL = "https://hooks.example.com/T000/SECRETPART"


def test_create_a_webhook_rule_answers_its_secret_once(api, action):
    answer = api.post(
        BASE,
        {"name": "chat", "channel": "webhook", "url": URL, "format": "slack",
         "when": "back_to_normal", "action_id": action.pk},
    )  # fmt: skip
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    rule = NotificationRule.objects.get(pk=body["id"])
    assert body["secret"] == rule.secret
    assert body["url"] == URL and body["action_name"] == "deploy"
    again = api.get(f"{BASE}/{rule.pk}").json()
    assert "secret" not in again and again["when"] == "back_to_normal"


def test_an_email_rule_has_no_secret(api):
    answer = api.post(BASE, {"name": "mail", "channel": "email", "recipients": "owner"})
    assert answer.status_code == 201
    assert answer.json()["secret"] is None and answer.json()["url"] is None


def test_a_loopback_url_is_refused_with_the_reason(api, settings):
    settings.NOTIFY_ALLOW_PRIVATE = False
    answer = api.post(BASE, {"name": "x", "channel": "webhook", "url": "http://[::1]:80/"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "url_refused"
    assert error["message"].startswith("Pipetower does not connect to ::1: loopback addresses")
    assert not NotificationRule.objects.exists()


def test_unknown_values_are_refused_by_validation(api):
    answer = api.post(BASE, {"name": "x", "channel": "pigeon"})
    assert answer.status_code == 422


def test_viewers_list_rules_without_urls_and_cannot_write(api_as, team, user):
    services.notification_rule_create(
        team=team, actor=user, name="chat", channel="webhook", url=URL
    )
    viewer = api_as(member(team, "viewer"))
    [rule] = viewer.get(BASE).json()["items"]
    assert rule["name"] == "chat" and rule["url"] is None
    assert viewer.post(BASE, {"name": "n", "channel": "email"}).status_code == 403
    assert viewer.delete(f"{BASE}/{rule['id']}").status_code == 403


def test_update_and_delete(api, team, user):
    rule, _ = services.notification_rule_create(team=team, actor=user, name="mail", channel="email")
    answer = api.patch(f"{BASE}/{rule.pk}", {"when": "always", "enabled": False})
    assert answer.status_code == 200
    assert answer.json()["when"] == "always" and answer.json()["enabled"] is False
    answer = api.patch(f"{BASE}/{rule.pk}", {"channel": "webhook", "url": URL})
    assert answer.json()["secret"]  # became a webhook rule: its secret, once
    assert api.delete(f"{BASE}/{rule.pk}").status_code == 204
    assert api.get(f"{BASE}/{rule.pk}").status_code == 404


def test_deliveries_are_listed_newest_first(notify_settings, receiver, api, team, user):
    hook = receiver([500])
    rule, _ = services.notification_rule_create(
        team=team, actor=user, name="flaky", channel="webhook", url=hook.url
    )
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=2)
    items = api.get(f"{BASE}/{rule.pk}/deliveries").json()["items"]
    assert [(i["attempt"], i["outcome"], i["status_code"]) for i in items] == [
        (2, "delivered", 200),
        (1, "retrying", 500),
    ]


def test_send_a_test_is_queued(api, team, user, django_capture_on_commit_callbacks, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    rule, _ = services.notification_rule_create(
        team=team, actor=user, name="mail", channel="email", recipients="creator"
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"{BASE}/{rule.pk}/test")
    assert answer.status_code == 202 and answer.json() == {"queued": True}
    [row] = rule.deliveries.all()
    assert (row.event, row.outcome, row.message) == ("test", "delivered", "Mailed 1 member.")


def test_another_teams_rule_is_not_found(api, user):
    from tests.factories import TeamFactory

    other = TeamFactory(slug="other")
    owner = member(other, "owner")
    rule, _ = services.notification_rule_create(
        team=other, actor=owner, name="theirs", channel="email"
    )
    assert api.get(f"{BASE}/{rule.pk}").status_code == 404
    assert api.get(f"{BASE}/{rule.pk}/deliveries").status_code == 404
