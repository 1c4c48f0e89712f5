"""Lists cost the same number of queries however long they are (no N+1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pipetower.audit.services import audit_record
from pipetower.teams.models import Invitation, Membership, Role
from tests.factories import TeamFactory, UserFactory


def queries(call: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200  # type: ignore[attr-defined]
    return len(captured)


def grow_tokens(user, make_token, n):
    for i in range(n):
        make_token(user, name=f"t{i}")


def grow_teams(user, make_token, n):
    for _ in range(n):
        Membership.objects.create(team=TeamFactory(), user=user, role=Role.VIEWER)


def grow_members(user, make_token, n):
    team = Membership.objects.get(user=user, team__slug="engines").team
    for _ in range(n):
        Membership.objects.create(team=team, user=UserFactory(), role=Role.OPERATOR)


def grow_invitations(user, make_token, n):
    team = Membership.objects.get(user=user, team__slug="engines").team
    start = Invitation.objects.count()
    for i in range(start, start + n):
        Invitation.objects.create(
            team=team,
            email=f"i{i}@example.com",
            token_hash=f"{i:064d}",
            invited_by=UserFactory(),
            expires_at="2999-01-01T00:00Z",
        )


def grow_events(user, make_token, n):
    team = Membership.objects.get(user=user, team__slug="engines").team
    for i in range(n):
        audit_record(actor=UserFactory(), team=team, verb=f"thing.{i}", target=team)


def grow_notification_rules(user, make_token, n):
    from pipetower.actions.services import action_create
    from pipetower.notifications.services import notification_rule_create

    team = Membership.objects.get(user=user, team__slug="engines").team
    start = team.notification_rules.count()
    for i in range(start, start + n):
        action = action_create(team=team, actor=user, name=f"a{i}", script="true")
        notification_rule_create(
            team=team, actor=user, name=f"r{i}", channel="email", action=action
        )


def grow_notification_deliveries(user, make_token, n):
    from pipetower.notifications.models import NotificationDelivery, NotificationRule

    team = Membership.objects.get(user=user, team__slug="engines").team
    rule, _ = NotificationRule.objects.get_or_create(team=team, name="log", channel="email")
    NotificationDelivery.objects.bulk_create(
        NotificationDelivery(rule=rule, event="test", outcome="delivered") for _ in range(n)
    )


@pytest.mark.parametrize(
    ("path", "grow"),
    [
        ("/tokens", grow_tokens),
        ("/teams", grow_teams),
        ("/teams/engines/members", grow_members),
        ("/teams/engines/invitations", grow_invitations),
        ("/teams/engines/audit-events", grow_events),
        ("/teams/engines/notifications", grow_notification_rules),
    ],
)
def test_api_lists_do_not_query_per_item(api, user, make_token, path, grow):
    grow(user, make_token, 2)
    api.get(path)  # the token's first use is recorded once; measure after it
    small = queries(lambda: api.get(path))
    grow(user, make_token, 10)
    large = queries(lambda: api.get(path))

    assert large == small, path


def test_notification_delivery_log_does_not_query_per_attempt(api, user, make_token):
    from pipetower.notifications.models import NotificationRule

    grow_notification_deliveries(user, make_token, 2)
    path = f"/teams/engines/notifications/{NotificationRule.objects.get(name='log').pk}/deliveries"
    api.get(path)
    small = queries(lambda: api.get(path))
    grow_notification_deliveries(user, make_token, 10)
    large = queries(lambda: api.get(path))

    assert large == small


def test_token_page_does_not_query_per_token(client, user, make_token):
    client.force_login(user)
    grow_tokens(user, make_token, 2)
    client.get(reverse("tokens:list"))  # first visit: session bookkeeping
    small = queries(lambda: client.get(reverse("tokens:list")))
    grow_tokens(user, make_token, 10)
    large = queries(lambda: client.get(reverse("tokens:list")))

    assert large == small
