"""Cron expressions in a time zone: checking them, and the times they name.

Parsing and stepping are croniter's; this module adds what Pipetower promises:
exactly five fields (or a macro such as ``@daily``), an IANA time zone, a clear
message for every refusal, and times that follow the zone's daylight-saving
changes. A time that does not exist (clocks go forward) moves to the first
time that does; a wall-clock time that happens twice (clocks go back) runs
once.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import datetime
from functools import cache

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from pipetower.core.errors import ServiceError

MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
EXAMPLE = "for example '30 2 * * *' (every day at 02:30) or '*/15 * * * 1-5'"


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone name this system knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def zone_clean(name: object) -> zoneinfo.ZoneInfo:
    text = str(name or "").strip()
    if not text:
        raise ServiceError("Choose a time zone.", field="timezone")
    if text not in time_zone_names():
        raise ServiceError(
            f"{text[:64]!r} is not a time zone Pipetower knows. Use an IANA name such as "
            "'Europe/Berlin', 'America/New_York' or 'UTC'.",
            field="timezone",
        )
    return zoneinfo.ZoneInfo(text)


def zone_for_display(name: str) -> zoneinfo.ZoneInfo:
    """The stored zone, or UTC if this system no longer knows it (tzdata changes)."""
    try:
        return zone_clean(name)
    except ServiceError:
        return zoneinfo.ZoneInfo("UTC")


def expression_clean(expression: object) -> str:
    """The expression with single spaces, or a ServiceError that says what is wrong."""
    text = " ".join(str(expression or "").split())
    if not text:
        raise ServiceError(f"Enter a cron expression, {EXAMPLE}.", field="cron")
    if len(text) > 100:
        raise ServiceError(
            "The cron expression is too long (at most 100 characters).", field="cron"
        )
    fields = text.split(" ")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ServiceError(
                f"{text[:40]!r} is not a cron shorthand Pipetower knows. Use one of "
                + ", ".join(sorted(MACROS))
                + ", or five fields.",
                field="cron",
            )
        return text.lower()
    if len(fields) != 5:
        raise ServiceError(
            f"A cron expression has exactly five fields (minute, hour, day of month, month, "
            f"day of week); {text[:100]!r} has {len(fields)}. Write it {EXAMPLE}.",
            field="cron",
        )
    for index, value in enumerate(fields):
        # croniter names the expression, not the field: find the field that is wrong.
        probe = ["*"] * 5
        probe[index] = value
        try:
            croniter(" ".join(probe))
        except (CroniterError, ValueError, KeyError, IndexError):
            raise ServiceError(
                f"The {FIELD_NAMES[index]} field {value[:40]!r} is not valid in "
                f"{text[:100]!r}. Write it {EXAMPLE}.",
                field="cron",
            ) from None
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError, IndexError):
        raise ServiceError(
            f"{text[:100]!r} is not a valid cron expression.", field="cron"
        ) from None
    return text


def times_after(expression: str, zone: zoneinfo.ZoneInfo, start: datetime) -> Iterator[datetime]:
    """The expression's times strictly after `start`, as aware datetimes in `zone`.

    Raises ServiceError if the expression never names a time (30 February).
    """
    iterator = croniter(expression, start.astimezone(zone))
    # Wall-clock time (to the minute) only moves forward: when clocks go back,
    # the repeated hour's times have been seen already and run once.
    previous = start.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    while True:
        try:
            moment = iterator.get_next(datetime)
        except (CroniterBadDateError, CroniterBadCronError):
            raise ServiceError(
                f"{expression!r} never happens (no date matches it).", field="cron"
            ) from None
        wall = moment.replace(tzinfo=None)
        if wall <= previous:
            continue
        previous = wall
        yield moment


def next_times(
    expression: str, zone: zoneinfo.ZoneInfo, start: datetime, count: int = 5
) -> list[datetime]:
    found: list[datetime] = []
    for moment in times_after(expression, zone, start):
        found.append(moment)
        if len(found) == count:
            break
    return found


def next_time(expression: str, zone: zoneinfo.ZoneInfo, start: datetime) -> datetime:
    return next(times_after(expression, zone, start))


def slots_between(
    expression: str, zone: zoneinfo.ZoneInfo, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """Up to `limit` of the times in (after, until]."""
    found: list[datetime] = []
    for moment in times_after(expression, zone, after):
        if moment > until or len(found) >= limit:
            break
        found.append(moment)
    return found
