"""The notification pages: empty states, the form's errors, the delivery log."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipetower.notifications import delivery, services
from pipetower.notifications.models import NotificationRule
from tests.factories import member
from tests.notifications.conftest import HANG

pytestmark = pytest.mark.django_db


def list_url(team):
    return reverse("notifications:list", args=[team.slug])


def test_the_empty_list_explains_rules_and_offers_the_first(owner_client, team):
    page = owner_client.get(list_url(team)).content.decode()
    assert "No notification rules yet" in page
    assert reverse("notifications:create", args=[team.slug]) in page


def test_a_viewer_sees_the_empty_list_without_the_new_button(client, team):
    client.force_login(member(team, "viewer"))
    page = client.get(list_url(team)).content.decode()
    assert "Team owners and admins can make rules." in page
    assert reverse("notifications:create", args=[team.slug]) not in page
    assert client.get(reverse("notifications:create", args=[team.slug])).status_code == 403


def test_the_team_navigation_and_the_action_page_link_to_notifications(owner_client, team, action):
    page = owner_client.get(reverse("actions:detail", args=[team.slug, action.pk])).content
    assert f"{list_url(team)}?action={action.pk}".encode() in page
    assert f'href="{list_url(team)}"'.encode() in owner_client.get(list_url(team)).content


def test_creating_a_webhook_rule_shows_its_secret_once(owner_client, team, action):
    response = owner_client.post(
        reverse("notifications:create", args=[team.slug]),
        {
            "name": "chat",
            "action": action.pk,
            "when": "failure",
            "channel": "webhook",
            "url": "https://chat.example.com/hooks/abc",
            "format": "slack",
            "enabled": "on",
        },
    )
    assert response.status_code == 201
    rule = NotificationRule.objects.get(name="chat")
    assert rule.secret in response.content.decode()
    detail = owner_client.get(reverse("notifications:detail", args=[team.slug, rule.pk]))
    assert rule.secret not in detail.content.decode()


def test_a_loopback_url_is_refused_in_the_form_and_nothing_typed_is_lost(
    owner_client, team, settings
):
    settings.NOTIFY_ALLOW_PRIVATE = False
    response = owner_client.post(
        reverse("notifications:create", args=[team.slug]),
        {"name": "local", "when": "always", "channel": "webhook", "url": "http://127.0.0.1:8080/x"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Pipetower does not connect to 127.0.0.1: loopback addresses are forbidden" in page
    assert 'value="http://127.0.0.1:8080/x"' in page and 'value="local"' in page
    assert 'aria-invalid="true"' in page
    assert not NotificationRule.objects.exists()


def test_a_form_without_a_name_says_so(owner_client, team):
    response = owner_client.post(
        reverse("notifications:create", args=[team.slug]),
        {"name": "", "when": "failure", "channel": "email", "recipients": "admin"},
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_an_email_rule_is_made_and_edited_through_the_pages(owner_client, team):
    owner_client.post(
        reverse("notifications:create", args=[team.slug]),
        {"name": "mail", "when": "failure", "channel": "email", "recipients": "owner"},
    )
    rule = NotificationRule.objects.get(name="mail")
    assert rule.recipients == "owner" and rule.enabled is False  # the box was not ticked
    fields = {"name": "mail", "when": "always", "channel": "email", "recipients": "viewer"}
    response = owner_client.post(
        reverse("notifications:edit", args=[team.slug, rule.pk]), {**fields, "enabled": "on"}
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.when, rule.recipients, rule.enabled) == ("always", "viewer", True)


def test_the_rule_page_shows_an_empty_delivery_log(owner_client, team, user):
    rule, _ = services.notification_rule_create(team=team, actor=user, name="m", channel="email")
    page = owner_client.get(reverse("notifications:detail", args=[team.slug, rule.pk]))
    assert "Nothing sent yet." in page.content.decode()


def test_a_hanging_receiver_is_shown_as_failed_with_the_reason(
    notify_settings, receiver, owner_client, team, user, django_capture_on_commit_callbacks
):
    hook = receiver([HANG, HANG, HANG])
    rule, _ = services.notification_rule_create(
        team=team, actor=user, name="slow", channel="webhook", url=hook.url
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(reverse("notifications:test", args=[team.slug, rule.pk]))
    assert response.status_code == 302
    page = owner_client.get(reverse("notifications:detail", args=[team.slug, rule.pk]))
    text = page.content.decode()
    assert "No answer within 0.5 s (timed out). Gave up after 3 attempts." in text
    assert "<strong>Failed</strong>" in text
    assert text.count("will retry") == 2


def test_a_receiver_answering_500_is_shown_retrying_then_delivered(
    notify_settings, receiver, owner_client, team, user
):
    hook = receiver([500])
    rule, _ = services.notification_rule_create(
        team=team, actor=user, name="flaky", channel="webhook", url=hook.url
    )
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=2)
    text = owner_client.get(reverse("notifications:detail", args=[team.slug, rule.pk])).content
    assert b"Answered 500 Internal Server Error. Attempt 1 of 3" in text
    assert b"Answered 200 OK." in text


def test_the_delivery_log_is_paginated(notify_settings, receiver, owner_client, team, user):
    hook = receiver()
    rule, _ = services.notification_rule_create(
        team=team, actor=user, name="busy", channel="webhook", url=hook.url
    )
    for _ in range(services.DELIVERIES_PER_PAGE + 1):
        delivery.notification_send(rule_id=rule.pk, run_id=None, event="test", attempt=1)
    url = reverse("notifications:detail", args=[team.slug, rule.pk])
    first = owner_client.get(url).content.decode()
    assert first.count("Answered 200 OK.") == services.DELIVERIES_PER_PAGE
    assert owner_client.get(url, {"page": 2}).content.decode().count("Answered 200 OK.") == 1


def test_a_viewer_sees_the_rule_but_not_the_whole_url_nor_the_controls(client, team, user):
    rule, _ = services.notification_rule_create(
        team=team, actor=user, name="chat", channel="webhook",
        url="https://chat.example.com/hooks/T000/B000/XXXXSECRET",
    )  # fmt: skip
    client.force_login(member(team, "viewer"))
    for name in ("notifications:list", "notifications:detail"):
        args = [team.slug] if name.endswith("list") else [team.slug, rule.pk]
        page = client.get(reverse(name, args=args)).content.decode()
        assert "chat.example.com" in page and "XXXXSECRET" not in page
        assert "Send a test" not in page


def test_deleting_a_rule_through_its_page(owner_client, team, user):
    rule, _ = services.notification_rule_create(team=team, actor=user, name="m", channel="email")
    url = reverse("notifications:delete", args=[team.slug, rule.pk])
    assert b"Delete the notification rule" in owner_client.get(url).content
    assert owner_client.post(url).status_code == 302
    assert not NotificationRule.objects.exists()


def test_the_team_settings_page_links_to_the_rules(owner_client, team):
    page = owner_client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert f'href="{list_url(team)}"' in page
