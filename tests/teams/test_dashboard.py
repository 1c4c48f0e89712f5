"""The team overview as a dashboard: figures from seeded runs, empty state, getting
started, and a query count that does not grow with the number of runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pipetower.actions.models import Action, Run, RunStatus, RunTarget, TargetStatus
from pipetower.servers.models import Server
from pipetower.teams.dashboard import team_dashboard
from pipetower.teams.models import Role, Team
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKo2Ovs1Tc2Jh9bNqXuO2rqXgA2ReFdWR2mH0TJ2bqPM"


def seed_run(
    team: Team,
    status: str,
    *,
    at: datetime,
    seconds: float | None,
    targets: list[tuple[Server, str]] = (),  # type: ignore[assignment]
    action: Action | None = None,
) -> Run:
    """A run as the engine leaves it: created `at`, finished `seconds` later (None: still going)."""
    run = Run.objects.create(
        team=team,
        action=action,
        action_name=action.name if action else "Deploy",
        script="true",
        timeout_seconds=60,
        concurrency=1,
        status=status,
        created_at=at,
        finished_at=at + timedelta(seconds=seconds) if seconds is not None else None,
    )
    for server, target_status in targets:
        RunTarget.objects.create(
            run=run, server=server, server_name=server.name, status=target_status
        )
    return run


def server(team: Team, name: str, *, pinned: bool = True, check_ok: bool | None = None) -> Server:
    return Server.objects.create(
        team=team,
        name=name,
        host="127.0.0.1",
        username="deploy",
        host_keys=KEY if pinned else "",
        last_check_ok=check_ok,
    )


def html(response: Any) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_rates_and_durations_are_computed_per_day_from_the_runs(team: Team) -> None:
    yesterday = NOW - timedelta(days=1)
    for seconds in (10, 20, 30):
        seed_run(team, RunStatus.SUCCEEDED, at=yesterday, seconds=seconds)
    seed_run(team, RunStatus.FAILED, at=yesterday, seconds=40)
    seed_run(team, RunStatus.CANCELLED, at=yesterday, seconds=60)
    seed_run(team, RunStatus.FAILED, at=NOW - timedelta(days=3), seconds=100)
    seed_run(team, RunStatus.RUNNING, at=NOW - timedelta(minutes=5), seconds=None)
    # Neither counts: older than 30 days, and another team's.
    seed_run(team, RunStatus.FAILED, at=NOW - timedelta(days=31), seconds=5)
    seed_run(TeamFactory(), RunStatus.FAILED, at=yesterday, seconds=5)

    board = team_dashboard(team=team, member_count=1, now=NOW)

    assert len(board.days) == 30 and board.days[-1].day == NOW.date()
    day = {d.day: d for d in board.days}
    y = day[yesterday.date()]
    assert (y.total, y.succeeded, y.failed, y.cancelled) == (5, 3, 1, 1)
    assert y.rate == 75.0  # 3 of the 4 that ended; the cancelled one does not count
    assert y.average == timedelta(seconds=32)  # (10+20+30+40+60) / 5
    assert day[(NOW - timedelta(days=3)).date()].rate == 0.0
    today = day[NOW.date()]
    assert (today.total, today.rate, today.average) == (1, None, None)
    assert (board.runs_total, board.succeeded_total, board.failed_total) == (7, 3, 2)
    assert board.rate_total == 60.0
    assert board.average_total == timedelta(seconds=(160 + 100) / 6)  # over the 6 finished
    rate_chart, duration_chart = board.charts
    assert [b.label for b in rate_chart.bars] == [
        "12 Mar: 0% of 1 run succeeded",
        "14 Mar: 75% of 4 runs succeeded",
    ]
    assert rate_chart.summary == (
        "On 2 of the last 30 days runs ended; the success rate ranged from 0% to 75%."
    )
    tallest = max(duration_chart.bars, key=lambda b: b.height)
    assert tallest.label.endswith("1.7 min")  # the 100 s day is the top of the scale


def test_the_overview_shows_charts_with_their_figures_recent_runs_and_failing_servers(
    owner_client: Client, team: Team
) -> None:
    now = datetime.now(UTC)
    web, db = server(team, "web-1"), server(team, "db-1")
    seed_run(
        team,
        RunStatus.FAILED,
        at=now - timedelta(hours=2),
        seconds=4,
        targets=[(web, TargetStatus.FAILED), (db, TargetStatus.SUCCEEDED)],
    )
    seed_run(
        team,
        RunStatus.FAILED,
        at=now - timedelta(hours=1),
        seconds=6,
        targets=[(web, TargetStatus.UNREACHABLE), (db, TargetStatus.TIMED_OUT)],
    )
    seed_run(team, RunStatus.SUCCEEDED, at=now, seconds=2, targets=[(web, TargetStatus.SUCCEEDED)])

    page = html(owner_client.get(reverse("teams:detail", args=[team.slug])))

    assert "<svg" in page and 'role="img"' in page
    assert '<title id="chart-success-rate-title">Success rate per day' in page
    assert "<strong>33%</strong> succeeded (1 of 3 that ended" in page  # 30 days in words
    assert "<summary>The figures per day</summary>" in page
    assert "<strong>4.0 s</strong> on average" in page
    failing = page.split('id="failing-heading"')[1].split("</section>")[0]
    assert failing.index("web-1") < failing.index("db-1")
    assert "failed 2 of 3 times" in failing and "failed 1 of 2 times" in failing
    recent = page.split('id="recent-runs-heading"')[1].split("</section>")[0]
    assert recent.count('data-status="failed"') == 2 and 'data-status="succeeded"' in recent


def test_servers_not_pinned_or_failing_their_test_are_listed(
    owner_client: Client, team: Team
) -> None:
    server(team, "fine", check_ok=True)
    server(team, "fresh", pinned=False)
    server(team, "down", check_ok=False)

    page = html(owner_client.get(reverse("teams:detail", args=[team.slug])))

    attention = page.split('id="attention-heading"')[1].split("</section>")[0]
    assert "fresh</bdi></a>: host key not pinned" in attention
    assert "down</bdi></a>: last connection test failed" in attention
    assert "fine" not in attention


def test_a_new_team_sees_empty_states_and_every_step_to_do(
    owner_client: Client, team: Team
) -> None:
    page = html(owner_client.get(reverse("teams:detail", args=[team.slug])))

    assert "Getting started" in page
    assert page.count("(to do)") == 5
    assert f'href="{reverse("servers:add", args=[team.slug])}">Add a server' in page
    assert f'href="{reverse("actions:create", args=[team.slug])}">Create an action' in page
    assert f'href="{reverse("teams:members", args=[team.slug])}">Invite someone' in page
    assert "No runs in the last 30 days." in page
    assert "No runs yet." in page
    assert "No server failed in a run in the last 30 days." in page
    assert "<svg" not in page


def test_the_checklist_ticks_each_step_from_real_data_and_goes_once_done(
    owner_client: Client, team: Team, make_member: Any
) -> None:
    url = reverse("teams:detail", args=[team.slug])

    def done() -> list[str]:
        board = team_dashboard(team=team, member_count=team.memberships.count())
        return [step.key for step in board.checklist if step.done]

    fresh = server(team, "web-1", pinned=False)
    assert done() == ["server"]
    Server.objects.filter(pk=fresh.pk).update(host_keys=KEY)
    assert done() == ["server", "pin"]
    action = Action.objects.create(team=team, name="Deploy", script="true")
    assert done() == ["server", "pin", "action"]
    seed_run(team, RunStatus.SUCCEEDED, at=datetime.now(UTC), seconds=1, action=action)
    assert done() == ["server", "pin", "action", "run"]
    assert "Getting started" in html(owner_client.get(url))
    make_member(Role.VIEWER)
    assert done() == ["server", "pin", "action", "run", "invite"]

    assert "Getting started" not in html(owner_client.get(url))


def queries_for(client: Client, url: str) -> int:
    client.get(url)  # once first: the session's own bookkeeping is not the page's cost
    with CaptureQueriesContext(connection) as captured:
        html(client.get(url))
    return len(captured)


def test_the_overview_costs_the_same_queries_for_3_or_40_runs(
    owner_client: Client, team: Team
) -> None:
    url = reverse("teams:detail", args=[team.slug])
    now = datetime.now(UTC)
    servers = [server(team, f"s-{n}", pinned=n % 2 == 0, check_ok=n % 3 != 0) for n in range(4)]

    def seed(count: int) -> None:
        for n in range(count):
            status = RunStatus.SUCCEEDED if n % 3 else RunStatus.FAILED
            target = TargetStatus.SUCCEEDED if n % 3 else TargetStatus.FAILED
            seed_run(
                team,
                status,
                at=now - timedelta(days=n % 29, minutes=n),
                seconds=n + 1,
                targets=[(servers[n % 4], target)],
            )

    seed(3)
    few = queries_for(owner_client, url)
    seed(37)
    for n in range(4, 12):
        server(team, f"t-{n}", pinned=False)

    assert queries_for(owner_client, url) == few
