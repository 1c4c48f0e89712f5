"""Reads of audit events. The caller has already resolved the team through a
guarded selector or `@team_view`; these only ever look inside that team."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from pipetower.audit.models import AuditEvent
from pipetower.teams.models import Team


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_events_for_team(
    *,
    team: Team,
    actor_id: int | None = None,
    verb: str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
) -> QuerySet[AuditEvent]:
    """The team's events, newest first, optionally filtered.

    `since` and `until` are inclusive. A `date` means the whole day in the
    current time zone; a `datetime` means that instant.
    """
    events = AuditEvent.objects.filter(team=team)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if verb:
        events = events.filter(verb=verb)
    if since is not None:
        start = since if isinstance(since, datetime) else _start_of(since)
        events = events.filter(created_at__gte=start)
    if until is not None:
        if isinstance(until, datetime):
            events = events.filter(created_at__lte=until)
        else:
            events = events.filter(created_at__lt=_start_of(until + timedelta(days=1)))
    return events.order_by("-created_at", "-id")


def audit_verbs_for_team(*, team: Team) -> list[str]:
    """The verbs that occur in the team's log, for the filter menu."""
    return sorted(
        AuditEvent.objects.filter(team=team).values_list("verb", flat=True).distinct().order_by()
    )


def audit_actors_for_team(*, team: Team) -> list[tuple[int, str]]:
    """(actor id, label) of everyone who appears in the team's log, by label."""
    seen: dict[int, str] = {}
    rows = (
        AuditEvent.objects.filter(team=team, actor__isnull=False)
        .values_list("actor_id", "actor_label")
        .distinct()
        .order_by()
    )
    for actor_id, label in rows:
        if actor_id is not None:
            seen.setdefault(actor_id, label)
    return sorted(seen.items(), key=lambda item: item[1].lower())
