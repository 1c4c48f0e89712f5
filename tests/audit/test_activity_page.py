"""The activity page: a paginated, filterable table of the team's audit events."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from pipetower.audit.models import AuditEvent
from pipetower.audit.services import audit_record
from pipetower.teams.models import Role
from tests.factories import TeamFactory, UserFactory, member


def page(response) -> str:
    return response.content.decode()


def activity_url(team) -> str:
    return reverse("audit:activity", args=[team.slug])


def record_many(team, actor, count: int, verb: str = "team.renamed") -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(team=team, actor=actor, actor_label=actor.email, verb=verb) for _ in range(count)
    )


@pytest.mark.parametrize("role", list(Role))
def test_every_member_can_read_the_activity(client, team, make_member, role):
    audit_record(
        actor=UserFactory(email="grace@example.com"),
        team=team,
        verb="invitation.accepted",
        target=team,
        ip="203.0.113.7",
    )
    client.force_login(make_member(role))

    response = client.get(activity_url(team))

    assert response.status_code == 200
    html = page(response)
    assert "grace@example.com" in html
    assert 'data-verb="invitation.accepted"' in html
    # In words, with a link to the target.
    link = '<a href="/teams/engines/"><bdi>Analytical Engines</bdi></a>'
    assert f"joined through the invitation of {link}" in html
    assert "203.0.113.7" in html
    assert "<time datetime=" in html


def test_a_team_without_events_shows_an_empty_state(owner_client, team):
    html = page(owner_client.get(activity_url(team)))

    assert "No activity yet" in html
    assert "<table>" not in html


def test_events_are_paginated_fifty_a_page(owner_client, team, user):
    record_many(team, user, 120)

    first = page(owner_client.get(activity_url(team)))
    last = page(owner_client.get(activity_url(team), {"page": 3}))

    assert first.count('data-verb="team.renamed"') == 50
    assert "Page 1 of 3" in first
    assert "?page=2" in first
    assert last.count('data-verb="team.renamed"') == 20


def test_a_nonsense_page_number_shows_a_page_not_an_error(owner_client, team, user):
    record_many(team, user, 3)

    for value in ("abc", "-1", "99999"):
        response = owner_client.get(activity_url(team), {"page": value})
        assert response.status_code == 200
        assert page(response).count('data-verb="team.renamed"') == 3


def test_filtering_by_verb_keeps_the_filter_in_the_page_links(owner_client, team, user):
    record_many(team, user, 60, verb="member.removed")
    record_many(team, user, 5, verb="team.renamed")

    response = owner_client.get(activity_url(team), {"verb": "member.removed"})

    html = page(response)
    assert html.count('data-verb="member.removed"') == 50
    assert 'data-verb="team.renamed"' not in html
    assert "verb=member.removed&amp;page=2" in html
    assert "60 events match the filters" in html


def test_filtering_by_actor(owner_client, team, user):
    grace = member(team, Role.ADMIN, email="grace@example.com")
    audit_record(actor=grace, team=team, verb="invitation.created")
    audit_record(actor=user, team=team, verb="team.renamed")

    html = page(owner_client.get(activity_url(team), {"actor": grace.pk}))

    assert 'data-verb="invitation.created"' in html
    assert 'data-verb="team.renamed"' not in html


def test_filtering_by_date_range(owner_client, team, user):
    old = audit_record(actor=user, team=team, verb="team.created")
    AuditEvent.objects.filter(pk=old.pk).update(
        created_at=timezone.make_aware(datetime(2025, 1, 10, 9, 0))
    )
    audit_record(actor=user, team=team, verb="team.renamed")

    html = page(
        owner_client.get(activity_url(team), {"since": "2025-01-10", "until": "2025-01-10"})
    )

    assert 'data-verb="team.created"' in html
    assert 'data-verb="team.renamed"' not in html


def test_filters_that_match_nothing_say_so(owner_client, team, user):
    audit_record(actor=user, team=team, verb="team.renamed")

    html = page(
        owner_client.get(activity_url(team), {"since": "2001-01-01", "until": "2001-01-02"})
    )

    assert "No events match these filters" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "yesterday"}, "Enter a valid date."),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "The end date is before the start date."),
        ({"verb": "server.deleted"}, "Select a valid choice."),
        ({"actor": "not-a-number"}, "Select a valid choice."),
    ],
)
def test_bad_filters_show_a_message_next_to_the_field(owner_client, team, user, query, message):
    audit_record(actor=user, team=team, verb="team.renamed")

    response = owner_client.get(activity_url(team), query)

    assert response.status_code == 400
    html = page(response)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert 'data-verb="team.renamed"' in html  # the valid rest still applies


def test_another_teams_activity_is_not_found(client, team, user):
    audit_record(actor=user, team=team, verb="team.created")
    client.force_login(member(TeamFactory(), Role.OWNER))

    response = client.get(activity_url(team))

    assert response.status_code == 404
    assert "team.created" not in page(response)


def test_another_teams_events_do_not_appear(owner_client, team, user):
    audit_record(actor=user, team=TeamFactory(), verb="member.removed")

    assert "member.removed" not in page(owner_client.get(activity_url(team)))


@pytest.mark.parametrize("size", [5, 200])
def test_the_activity_page_needs_the_same_few_queries_at_any_size(
    owner_client, team, user, size, django_assert_max_num_queries
):
    record_many(team, user, size)
    owner_client.get(activity_url(team))  # the first request also records the session

    # session, user, user-session activity (5), then the page's own: my membership,
    # verbs, actors, the count, one page of events, the team switcher.
    with django_assert_max_num_queries(13):
        response = owner_client.get(activity_url(team))

    assert response.status_code == 200


def test_events_read_as_sentences_with_links_to_their_targets(owner_client, team, user):
    from pipetower.servers import services as server_services

    server = server_services.server_create(
        team=team,
        actor=user,
        name="web-1",
        host="web-1.example.com",
        port=22,
        username="deploy",
        tags=(),
    )
    audit_record(actor=user, team=team, verb="server.host_key_pinned", target=server)

    html = page(owner_client.get(activity_url(team)))

    link = f'<a href="/teams/engines/servers/{server.pk}/"><bdi>web-1</bdi></a>'
    assert f"pinned the host key of {link}" in html
    assert f"added the server {link}" in html
    assert "server.host_key_pinned</code>" not in html
    # The filter menu speaks the same words.
    assert '<option value="server.host_key_pinned">Pinned the host key of</option>' in html


def test_the_activity_downloads_as_csv_with_the_same_filters(owner_client, team, user):
    import csv
    import io

    audit_record(actor=user, team=team, verb="team.renamed", target=team)
    audit_record(
        actor=UserFactory(name="=cmd()", email="=cmd@example.com"),
        team=team,
        verb="member.left",
        target=team,
    )

    everything = owner_client.get(activity_url(team) + "activity.csv")
    only_renames = owner_client.get(activity_url(team) + "activity.csv", {"verb": "team.renamed"})

    assert everything["Content-Type"].startswith("text/csv")
    assert 'filename="activity-engines.csv"' in everything["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(everything.content.decode())))
    assert rows[0] == ["time_utc", "who", "what", "target", "event", "ip_address"]
    assert {row[4] for row in rows[1:]} >= {"team.renamed", "member.left"}
    assert any(row[1].startswith("'=") for row in rows[1:])  # no formula for a spreadsheet
    filtered = list(csv.reader(io.StringIO(only_renames.content.decode())))
    assert {row[4] for row in filtered[1:]} == {"team.renamed"}
