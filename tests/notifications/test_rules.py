"""Notification rules: who may change them, what is refused, what is audited."""

from __future__ import annotations

import pytest

from pipetower.actions import services as action_services
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.notifications import services
from pipetower.notifications.models import NotificationRule
from tests.factories import TeamFactory, member

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/pipetower"


def create(team, actor, **fields):
    fields.setdefault("name", "ops")
    fields.setdefault("channel", "webhook")
    if fields["channel"] == "webhook":
        fields.setdefault("url", URL)
    return services.notification_rule_create(team=team, actor=actor, **fields)


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_members_below_admin_cannot_make_rules(team, role):
    with pytest.raises(NotAllowed, match="Only admins and above can manage notifications"):
        create(team, member(team, role))
    assert not NotificationRule.objects.exists()


def test_an_admin_makes_a_webhook_rule_and_gets_its_secret_once(team):
    admin = member(team, "admin")
    rule, secret = create(team, admin, when="back_to_normal", format="slack")
    assert len(secret) >= 40
    rule.refresh_from_db()
    assert rule.secret == secret  # kept encrypted, readable by the sender only
    assert (rule.when, rule.format, rule.recipients) == ("back_to_normal", "slack", "")
    event = AuditEvent.objects.get(verb="notification.created")
    assert event.actor == admin and event.target_label == "ops"
    assert event.data["host"] == "hooks.example.com"
    assert secret not in str(event.data) and URL not in str(event.data)


def test_an_email_rule_has_no_url_and_no_secret(team, user):
    rule, secret = create(team, user, channel="email", recipients="owner", url=URL)
    assert secret == "" and rule.url == "" and rule.secret == ""
    assert rule.recipients == "owner"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "Enter the URL to send notifications to."),
        ("ftp://hooks.example.com/", "The URL must start with https:// (or http://)."),
        ("https://user:pw@hooks.example.com/", "Put no user name or password in the URL"),
        ("https://hooks.example.com:99999/", "This is not a valid URL"),
        ("https://hooks.example.com/a b", "The URL may not contain spaces"),
    ],
)
def test_a_bad_url_is_refused_with_a_reason(team, user, url, reason):
    with pytest.raises(ServiceError) as refused:
        create(team, user, url=url)
    assert refused.value.field == "url"
    assert refused.value.message.startswith(reason)


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "pigeon"), ("when", "sometimes"), ("format", "xml"), ("name", "  ")],
)
def test_unknown_choices_and_empty_names_are_refused(team, user, field, value):
    with pytest.raises(ServiceError) as refused:
        create(team, user, **{field: value})
    assert refused.value.field == field


def test_email_recipients_must_be_a_known_choice(team, user):
    with pytest.raises(ServiceError) as refused:
        create(team, user, channel="email", recipients="stranger@example.org")
    assert refused.value.field == "recipients"


def test_another_teams_action_is_refused(team, user):
    other = TeamFactory()
    their_action = action_services.action_create(
        team=other, actor=member(other, "owner"), name="theirs", script="true"
    )
    with pytest.raises(ServiceError, match="this team's actions"):
        create(team, user, action=their_action.pk)


def test_names_are_unique_in_a_team(team, user):
    create(team, user)
    with pytest.raises(Conflict, match="already has a notification rule named 'ops'"):
        create(team, user)


def test_update_changes_only_what_is_given_and_is_audited(team, user):
    rule, secret = create(team, user)
    updated, new_secret = services.notification_rule_update(
        rule=rule, actor=user, when="always", enabled=False
    )
    assert new_secret == ""  # the secret stays
    assert (updated.when, updated.enabled, updated.url, updated.secret) == (
        "always",
        False,
        URL,
        secret,
    )
    event = AuditEvent.objects.get(verb="notification.updated")
    assert event.data["from"]["when"] == "failure" and event.data["to"]["when"] == "always"


def test_turning_an_email_rule_into_a_webhook_rule_makes_a_secret(team, user):
    rule, _ = create(team, user, channel="email")
    updated, secret = services.notification_rule_update(
        rule=rule, actor=user, channel="webhook", url=URL
    )
    assert secret and updated.secret == secret and updated.recipients == ""


def test_a_viewer_cannot_change_delete_or_test_a_rule(team, user):
    rule, _ = create(team, user)
    viewer = member(team, "viewer")
    with pytest.raises(NotAllowed):
        services.notification_rule_update(rule=rule, actor=viewer, enabled=False)
    with pytest.raises(NotAllowed):
        services.notification_rule_delete(rule=rule, actor=viewer)
    with pytest.raises(NotAllowed):
        services.notification_test_send(rule=rule, actor=viewer)
    with pytest.raises(NotAllowed):
        services.notification_rule_secret_regenerate(rule=rule, actor=viewer)
    rule.refresh_from_db()
    assert rule.enabled


def test_a_new_secret_replaces_the_old_one(team, user):
    rule, old = create(team, user)
    rule, new = services.notification_rule_secret_regenerate(rule=rule, actor=user)
    rule.refresh_from_db()
    assert new != old and rule.secret == new
    assert AuditEvent.objects.filter(verb="notification.secret_regenerated").count() == 1


def test_delete_is_audited(team, user):
    rule, _ = create(team, user)
    services.notification_rule_delete(rule=rule, actor=user)
    assert not NotificationRule.objects.exists()
    assert AuditEvent.objects.filter(verb="notification.deleted", target_label="ops").exists()


def test_viewers_see_only_the_host_of_a_webhook_url():
    assert services.url_shown(URL, can_manage=True) == URL
    assert services.url_shown(URL, can_manage=False) == "https://hooks.example.com/…"
