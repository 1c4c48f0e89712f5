"""audit_events_for_team: one team's events, newest first, filtered."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from pipetower.audit.models import AuditEvent
from pipetower.audit.selectors import (
    audit_actors_for_team,
    audit_events_for_team,
    audit_verbs_for_team,
)
from pipetower.audit.services import audit_record
from tests.factories import TeamFactory, UserFactory


def at(event: AuditEvent, when: datetime) -> AuditEvent:
    AuditEvent.objects.filter(pk=event.pk).update(created_at=when)
    event.refresh_from_db()
    return event


def moment(day: int, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime(2026, 3, day, hour, 0))


@pytest.fixture
def log(team, user):
    """Four events in `team` on three days, and one in another team."""
    grace = UserFactory(email="grace@example.com")
    events = {
        "created": at(audit_record(actor=user, team=team, verb="team.created"), moment(1)),
        "invited": at(audit_record(actor=user, team=team, verb="invitation.created"), moment(2)),
        "accepted": at(
            audit_record(actor=grace, team=team, verb="invitation.accepted"), moment(2, 23)
        ),
        "renamed": at(audit_record(actor=user, team=team, verb="team.renamed"), moment(3)),
    }
    audit_record(actor=user, team=TeamFactory(), verb="team.created")
    return events


def verbs(events) -> list[str]:
    return [e.verb for e in events]


def test_only_the_teams_own_events_newest_first(team, log):
    assert verbs(audit_events_for_team(team=team)) == [
        "team.renamed",
        "invitation.accepted",
        "invitation.created",
        "team.created",
    ]


def test_filter_by_verb(team, log):
    assert verbs(audit_events_for_team(team=team, verb="team.created")) == ["team.created"]


def test_filter_by_actor(team, log):
    grace = log["accepted"].actor

    assert verbs(audit_events_for_team(team=team, actor_id=grace.pk)) == ["invitation.accepted"]


def test_dates_cover_whole_days_inclusively(team, log):
    assert verbs(
        audit_events_for_team(team=team, since=date(2026, 3, 2), until=date(2026, 3, 2))
    ) == [
        "invitation.accepted",
        "invitation.created",
    ]


def test_datetimes_are_exact_instants(team, log):
    events = audit_events_for_team(team=team, since=moment(2), until=moment(2) + timedelta(hours=1))

    assert verbs(events) == ["invitation.created"]


def test_filters_combine(team, log, user):
    events = audit_events_for_team(team=team, actor_id=user.pk, since=date(2026, 3, 2))

    assert verbs(events) == ["team.renamed", "invitation.created"]


def test_the_filter_menus_list_what_occurs_in_the_team(team, log, user):
    grace = log["accepted"].actor

    assert audit_verbs_for_team(team=team) == [
        "invitation.accepted",
        "invitation.created",
        "team.created",
        "team.renamed",
    ]
    assert audit_actors_for_team(team=team) == [
        (user.pk, "ada@example.com"),
        (grace.pk, "grace@example.com"),
    ]
