"""The team overview as a dashboard: what ran, how it went, what needs attention.

Reads only (selectors): every figure is computed by the database (aggregate,
annotate), and the page costs the same few queries however many runs, servers
or actions the team has. The charts are drawn here as plain numbers for an
inline SVG template (no script, nothing fetched), each with its figures in a
table for screen readers and anyone who wants them exact.

Days are calendar days in UTC; a run counts on the day it was created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from pipetower.teams.models import Team

if TYPE_CHECKING:
    from pipetower.actions.models import Run
    from pipetower.servers.models import Server

DAYS = 30
RECENT_RUNS = 8
TOP_FAILING = 5
ATTENTION_SERVERS = 8

# The chart's drawing area, in SVG user units (the SVG scales to its box).
CHART_WIDTH = 600
CHART_HEIGHT = 140
CHART_TOP = 12
CHART_LEFT = 70
CHART_BOTTOM = 28


@dataclass
class Day:
    day: date
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    finished: int = 0  # runs of the day that have finished, whatever the outcome
    average: timedelta | None = None  # their average duration

    @property
    def ended(self) -> int:
        """Runs of the day that ended in success or failure (cancelled ones do not count)."""
        return self.succeeded + self.failed

    @property
    def average_words(self) -> str:
        return _duration_words(self.average)

    @property
    def rate(self) -> float | None:
        """Share of the day's ended runs that succeeded, 0 to 100; None with none ended."""
        return 100.0 * self.succeeded / self.ended if self.ended else None


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the figure in words, for the bar's <title>


@dataclass
class Chart:
    slug: str
    title: str
    summary: str  # one sentence: what the chart shows overall, for its <desc>
    unit: str
    top_label: str
    bars: list[Bar]
    first_day: date
    last_day: date
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT + CHART_TOP + CHART_BOTTOM
    left: int = CHART_LEFT
    top: int = CHART_TOP
    baseline: int = CHART_TOP + CHART_HEIGHT
    right: int = CHART_WIDTH
    label_y: int = CHART_TOP + CHART_HEIGHT + 22


@dataclass
class Step:
    key: str
    label: str
    done: bool
    url: str


@dataclass
class Dashboard:
    days: list[Day]
    recent_runs: list[Run]
    failing_servers: list[dict[str, Any]]
    attention_servers: list[Server]
    attention_more: bool
    checklist: list[Step] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    runs_total: int = 0
    succeeded_total: int = 0
    failed_total: int = 0
    rate_total: float | None = None
    average_total: timedelta | None = None

    @property
    def average_words(self) -> str:
        return _duration_words(self.average_total)

    @property
    def checklist_open(self) -> bool:
        return any(not step.done for step in self.checklist)


def _duration_words(value: timedelta | None) -> str:
    if value is None:
        return "no finished runs"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _first_day(now: datetime) -> date:
    return now.astimezone(UTC).date() - timedelta(days=DAYS - 1)


def team_run_days(*, team: Team, now: datetime | None = None) -> list[Day]:
    """The last 30 days, oldest first, each with its runs' counts by outcome and the
    average duration of its finished runs (one grouped query; days without runs included)."""
    from pipetower.actions.models import Run, RunStatus

    now = now or timezone.now()
    first = _first_day(now)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    duration = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
    rows = (
        Run.objects.filter(team=team, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(
            total=Count("pk"),
            succeeded=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("pk", filter=Q(status=RunStatus.FAILED)),
            cancelled=Count("pk", filter=Q(status=RunStatus.CANCELLED)),
            finished=Count("pk", filter=Q(finished_at__isnull=False)),
            average=Avg(duration, filter=Q(finished_at__isnull=False)),
        )
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    days = []
    for n in range(DAYS):
        day = first + timedelta(days=n)
        row = found.get(day)
        if row is None:
            days.append(Day(day))
            continue
        average = row["average"]
        if average is not None and not isinstance(average, timedelta):  # some backends: µs
            average = timedelta(microseconds=float(average))
        days.append(
            Day(
                day,
                total=row["total"],
                succeeded=row["succeeded"],
                failed=row["failed"],
                cancelled=row["cancelled"],
                finished=row["finished"],
                average=average,
            )
        )
    return days


def _day_words(day: date) -> str:
    return f"{day.day} {day:%b}"


def _rate_summary(rates: list[float]) -> str:
    if not rates:
        return f"No runs ended in the last {DAYS} days."
    days = f"On {len(rates)} of the last {DAYS} days runs ended"
    low, high = min(rates), max(rates)
    if round(low) == round(high):
        return f"{days}; the success rate was {low:.0f}% each time."
    return f"{days}; the success rate ranged from {low:.0f}% to {high:.0f}%."


def _bars(values: list[float | None], top: float, words: list[str]) -> list[Bar]:
    slot = (CHART_WIDTH - CHART_LEFT) / len(values)
    bars = []
    for n, value in enumerate(values):
        if value is None:
            continue
        height = 0.0 if top <= 0 else CHART_HEIGHT * value / top
        height = max(height, 1.0)  # a zero still shows as a hairline
        bars.append(
            Bar(
                x=round(CHART_LEFT + n * slot + slot * 0.15, 1),
                y=round(CHART_TOP + CHART_HEIGHT - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                label=words[n],
            )
        )
    return bars


def _charts(days: list[Day]) -> list[Chart]:
    rates = [d.rate for d in days]
    rate_words = [
        f"{_day_words(d.day)}: {d.rate:.0f}% of {d.ended} run{'s' if d.ended != 1 else ''} "
        "succeeded"
        if d.rate is not None
        else f"{_day_words(d.day)}: no runs ended"
        for d in days
    ]
    seconds = [d.average.total_seconds() if d.average is not None else None for d in days]
    longest = max((s for s in seconds if s is not None), default=0.0)
    duration_words = [f"{_day_words(d.day)}: {_duration_words(d.average)}" for d in days]
    with_rate = [r for r in rates if r is not None]
    with_time = [s for s in seconds if s is not None]
    return [
        Chart(
            slug="success-rate",
            title="Success rate per day",
            summary=_rate_summary(with_rate),
            unit="%",
            top_label="100%",
            bars=_bars(rates, 100.0, rate_words),
            first_day=days[0].day,
            last_day=days[-1].day,
        ),
        Chart(
            slug="duration",
            title="Average run duration per day",
            summary=(
                f"The longest daily average was {_duration_words(timedelta(seconds=longest))}."
                if with_time
                else f"No runs finished in the last {DAYS} days."
            ),
            unit="s",
            top_label=_duration_words(timedelta(seconds=longest)) if with_time else "",
            bars=_bars(seconds, longest, duration_words),
            first_day=days[0].day,
            last_day=days[-1].day,
        ),
    ]


def team_recent_runs(*, team: Team) -> list[Run]:
    from pipetower.actions.models import Run

    return list(
        Run.objects.filter(team=team)
        .only("pk", "team_id", "action_id", "action_name", "status", "created_at", "finished_at")
        .order_by("-created_at", "-pk")[:RECENT_RUNS]
    )


def team_failing_servers(*, team: Team, now: datetime | None = None) -> list[dict[str, Any]]:
    """The servers whose part in runs failed most often in the last 30 days (one query)."""
    from pipetower.actions.models import FAILED_STATUSES, RunTarget

    since = (now or timezone.now()) - timedelta(days=DAYS)
    rows = (
        RunTarget.objects.filter(run__team=team, run__created_at__gte=since, server__isnull=False)
        .values("server_id", "server__name")
        .annotate(
            failures=Count("pk", filter=Q(status__in=FAILED_STATUSES)),
            total=Count("pk"),
        )
        .filter(failures__gt=0)
        .order_by("-failures", "server__name")[:TOP_FAILING]
    )
    return [dict(row) for row in rows]


def team_attention_servers(*, team: Team) -> tuple[list[Server], bool]:
    """Servers with no pinned host key or whose last connection test failed (one query),
    and whether there are more than shown."""
    from pipetower.servers.models import Server

    rows = list(
        Server.objects.filter(team=team)
        .filter(Q(host_keys="") | Q(last_check_ok=False))
        .only("pk", "team_id", "name", "host_keys", "last_check_ok", "last_check_at")
        .order_by("name", "pk")[: ATTENTION_SERVERS + 1]
    )
    return rows[:ATTENTION_SERVERS], len(rows) > ATTENTION_SERVERS


def team_checklist(*, team: Team, member_count: int) -> list[Step]:
    """Getting started, each step ticked from what the team really has (one query)."""
    from django.db.models import Exists, OuterRef

    from pipetower.actions.models import Action, Run
    from pipetower.servers.models import Server
    from pipetower.teams.models import Invitation

    servers = Server.objects.filter(team=OuterRef("pk"))
    facts = (
        Team.objects.filter(pk=team.pk)
        .annotate(
            has_server=Exists(servers),
            has_pinned=Exists(servers.exclude(host_keys="")),
            has_action=Exists(Action.objects.filter(team=OuterRef("pk"))),
            has_run=Exists(Run.objects.filter(team=OuterRef("pk"))),
            has_invitation=Exists(Invitation.objects.filter(team=OuterRef("pk"))),
        )
        .values("has_server", "has_pinned", "has_action", "has_run", "has_invitation")
        .get()
    )
    slug = {"team_slug": team.slug}
    return [
        Step("server", "Add a server", facts["has_server"], reverse("servers:add", kwargs=slug)),
        Step(
            "pin",
            "Pin its host key",
            facts["has_pinned"],
            reverse("servers:list", kwargs=slug),
        ),
        Step(
            "action",
            "Create an action",
            facts["has_action"],
            reverse("actions:create", kwargs=slug),
        ),
        Step("run", "Run it", facts["has_run"], reverse("actions:list", kwargs=slug)),
        Step(
            "invite",
            "Invite someone",
            facts["has_invitation"] or member_count > 1,
            reverse("teams:members", kwargs=slug),
        ),
    ]


def team_dashboard(*, team: Team, member_count: int, now: datetime | None = None) -> Dashboard:
    """Everything the overview shows, in a constant number of queries."""
    days = team_run_days(team=team, now=now)
    attention, more = team_attention_servers(team=team)
    board = Dashboard(
        days=days,
        recent_runs=team_recent_runs(team=team),
        failing_servers=team_failing_servers(team=team, now=now),
        attention_servers=attention,
        attention_more=more,
        checklist=team_checklist(team=team, member_count=member_count),
        charts=_charts(days),
    )
    board.runs_total = sum(d.total for d in days)
    board.succeeded_total = sum(d.succeeded for d in days)
    board.failed_total = sum(d.failed for d in days)
    ended = board.succeeded_total + board.failed_total
    board.rate_total = 100.0 * board.succeeded_total / ended if ended else None
    # The 30-day average, weighted by each day's number of finished runs.
    weighted = [(d.average, d.finished) for d in days if d.average is not None and d.finished]
    if weighted:
        total_seconds = sum(avg.total_seconds() * n for avg, n in weighted)
        board.average_total = timedelta(seconds=total_seconds / sum(n for _, n in weighted))
    return board
