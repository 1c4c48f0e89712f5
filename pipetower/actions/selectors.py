"""Reads of actions, runs and output. Each fetch is scoped to a team the caller
already belongs to (resolved by `@team_view` or the API); a missing object and
another team's object are both 404."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.db.models import Case, Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.http import Http404
from django.utils import timezone

from pipetower.actions.models import (
    UNFINISHED_RUN_STATUSES,
    Action,
    ApprovalRequest,
    OutputChunk,
    Run,
    RunStatus,
    RunTarget,
)
from pipetower.core import query
from pipetower.teams.models import Team

LIVE_MAX_CHUNKS = 500
LIVE_MAX_CHARS = 512 * 1024
TAIL_CHUNKS = 200
TAIL_CHARS = 256 * 1024


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404(f"No such {what}.") from None


def actions_for_team(*, team: Team) -> QuerySet[Action]:
    return Action.objects.filter(team=team).order_by("name")


def actions_for_team_with_last_run(*, team: Team) -> QuerySet[Action]:
    """The team's actions, each with its latest run's id, start time and status
    (`last_run_id`, `last_run_at`, `last_run_status`; None when never run), in the
    same one query whatever the number of actions or runs."""
    latest = Run.objects.filter(action=OuterRef("pk")).order_by("-created_at", "-pk")
    return actions_for_team(team=team).annotate(
        last_run_id=Subquery(latest.values("pk")[:1]),
        last_run_at=Subquery(latest.values("created_at")[:1]),
        last_run_status=Subquery(latest.values("status")[:1]),
    )


def action_get(*, team: Team, action_id: Any) -> Action:
    try:
        return Action.objects.select_related("team").get(team=team, pk=_int(action_id, "action"))
    except Action.DoesNotExist:
        raise Http404("No such action.") from None


def action_get_by_name(*, team: Team, name: str) -> Action:
    action = Action.objects.select_related("team").filter(team=team, name=name).first()
    if action is None and name.isdigit():
        action = Action.objects.select_related("team").filter(team=team, pk=int(name)).first()
    if action is None:
        raise Http404(f"No action named {name!r} in this team.")
    return action


@dataclass
class RunFilters:
    action: int | None = None
    status: str = ""
    server: int | None = None
    who: int | None = None
    since: date | None = None
    until: date | None = None
    sort: str = "newest"


# Orders of the run history: value → (label, ordering).
RUN_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "newest": ("Newest first", ("-created_at", "-id")),
    "oldest": ("Oldest first", ("created_at", "id")),
    "action": ("Action, A to Z", ("action_name", "-created_at", "-id")),
}


def runs_for_team(*, team: Team, filters: RunFilters | None = None) -> QuerySet[Run]:
    # A list shows neither the script nor the secrets, nor anything of the action
    # but its id and the name the run keeps.
    runs = (
        Run.objects.filter(team=team).select_related("started_by").defer("script", "secret_params")
    )
    f = filters or RunFilters()
    if f.action:
        runs = runs.filter(action_id=f.action)
    if f.status:
        runs = runs.filter(status=f.status)
    if f.server:
        runs = runs.filter(targets__server_id=f.server).distinct()
    if f.who:
        runs = runs.filter(started_by_id=f.who)
    tz = timezone.get_current_timezone()
    if f.since:
        runs = runs.filter(created_at__gte=datetime.combine(f.since, dtime.min, tzinfo=tz))
    if f.until:
        end = datetime.combine(f.until, dtime.min, tzinfo=tz) + timedelta(days=1)
        runs = runs.filter(created_at__lt=end)
    return runs.order_by(*RUN_SORTS.get(f.sort, RUN_SORTS["newest"])[1])


def run_get(*, team: Team, run_id: Any) -> Run:
    try:
        return Run.objects.select_related("team", "action", "started_by").get(
            team=team, pk=_int(run_id, "run")
        )
    except Run.DoesNotExist:
        raise Http404("No such run.") from None


def run_targets(*, run: Run) -> QuerySet[RunTarget]:
    return run.targets.order_by("server_name", "id")


def run_target_get(*, run: Run, target_id: Any) -> RunTarget:
    try:
        return RunTarget.objects.select_related("run").get(run=run, pk=_int(target_id, "target"))
    except RunTarget.DoesNotExist:
        raise Http404("No such target in this run.") from None


def target_status_counts_for(*, runs: list[Run]) -> dict[int, dict[str, int]]:
    """Each run's target counts by status, for a page of runs in one query."""
    counts: dict[int, dict[str, int]] = {run.pk: {} for run in runs}
    rows = (
        RunTarget.objects.filter(run_id__in=list(counts))
        .values_list("run_id", "status")
        .annotate(n=Count("id"))
        .order_by("run_id", "status")
    )
    for run_id, status, n in rows:
        counts[run_id][status] = n
    return counts


def target_status_counts(*, run: Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in run.targets.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


# --- output ------------------------------------------------------------------------


def chunks_after(
    *, target: RunTarget, after: int, limit: int = LIVE_MAX_CHUNKS
) -> list[OutputChunk]:
    """Chunks with seq > after, oldest first, at most `limit` (and about LIVE_MAX_CHARS)."""
    rows = list(
        OutputChunk.objects.filter(run_target=target, seq__gt=after).order_by("seq")[:limit]
    )
    return _cap(rows)


def chunks_tail(
    *, target: RunTarget, before: int | None = None, max_chunks: int = TAIL_CHUNKS
) -> tuple[list[OutputChunk], bool]:
    """The last chunks before seq `before` (or the end), oldest first, and whether more
    exist before them. Keeps to about TAIL_CHARS so a huge output stays usable."""
    rows = OutputChunk.objects.filter(run_target=target)
    if before is not None:
        rows = rows.filter(seq__lt=before)
    newest_first = list(rows.order_by("-seq")[:max_chunks])
    kept: list[OutputChunk] = []
    size = 0
    for chunk in newest_first:
        if kept and size + len(chunk.data) > TAIL_CHARS:
            break
        kept.append(chunk)
        size += len(chunk.data)
    kept.reverse()
    more = bool(kept) and kept[0].seq > 1
    return kept, more


def _cap(rows: list[OutputChunk]) -> list[OutputChunk]:
    size = 0
    for index, chunk in enumerate(rows):
        size += len(chunk.data)
        if size > LIVE_MAX_CHARS and index > 0:
            return rows[:index]
    return rows


def chunk_dict(chunk: OutputChunk) -> dict[str, Any]:
    return {
        "target": chunk.run_target_id,
        "seq": chunk.seq,
        "stream": chunk.stream,
        "data": chunk.data,
    }


def target_dict(target: RunTarget) -> dict[str, Any]:
    duration = target.duration
    return {
        "id": target.pk,
        "server": target.server_name,
        "server_id": target.server_id,
        "status": target.status,
        "status_label": target.get_status_display(),
        "exit_code": target.exit_code,
        "started_at": target.started_at.isoformat() if target.started_at else None,
        "finished_at": target.finished_at.isoformat() if target.finished_at else None,
        "duration": round(duration.total_seconds(), 3) if duration is not None else None,
        "error": target.error,
        "last_seq": target.last_seq,
        "output_bytes": target.output_bytes,
        "truncated": target.truncated,
    }


def parse_cursor(text: str) -> dict[int, int]:
    """`"12:40,13:0"` → {12: 40, 13: 0} (target id → last seq seen); a part that is
    not a whole number raises `BadQuery` (400) naming `after`."""
    return query.cursor(text, name="after")


def _run_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The run's part of a live answer: its status, as code and as people read it."""
    return {
        "status": state["status"],
        "status_label": RunStatus(state["status"]).label,
        "finished": state["status"] not in UNFINISHED_RUN_STATUSES,
    }


def live_changes(*, run: Run, revision: int, cursor: Mapping[int, int]) -> dict[str, Any] | None:
    """What changed since the client's revision and cursor, or None if nothing did.

    `cursor` names the targets whose output the client follows (target id → last
    seq seen). Each followed target gets its chunks after that seq (bounded);
    `more` lists targets that have more waiting, so the client asks again at once.
    """
    state = Run.objects.values("revision", "status").get(pk=run.pk)
    followed = dict(
        RunTarget.objects.filter(run=run, pk__in=list(cursor)).values_list("pk", "last_seq")
    )
    behind = [tid for tid, last in followed.items() if last > cursor.get(tid, 0)]
    if state["revision"] <= revision and not behind:
        return None
    changed = RunTarget.objects.filter(run=run, revision__gt=revision).order_by("server_name", "id")
    chunks: list[dict[str, Any]] = []
    more: list[int] = []
    budget = LIVE_MAX_CHARS
    for tid in behind:
        if budget <= 0:
            more.append(tid)
            continue
        target = RunTarget(pk=tid, run=run)
        rows = chunks_after(target=target, after=cursor.get(tid, 0))
        budget -= sum(len(c.data) for c in rows)
        chunks += [chunk_dict(c) for c in rows]
        if rows and rows[-1].seq < followed[tid]:
            more.append(tid)
    body: dict[str, Any] = {
        "revision": state["revision"],
        "run": _run_state(state),
        "targets": [target_dict(t) for t in changed] if state["revision"] > revision else [],
        "chunks": chunks,
        "more": more,
    }
    if state["revision"] > revision:
        # The run page's summary line ("12 servers · 3 running · 9 succeeded").
        body["counts"] = target_status_counts(run=run)
    return body


def live_now(*, run: Run, revision: int, cursor: Mapping[int, int]) -> dict[str, Any]:
    """What changed since the client's revision and cursor, or the unchanged state.

    Never waits: waiting for new output happens on the event loop
    (`pipetower/config/asgi.py`), not on a request thread.
    """
    changes = live_changes(run=run, revision=revision, cursor=cursor)
    if changes is not None:
        return changes
    state = Run.objects.values("revision", "status").get(pk=run.pk)
    if state["revision"] > revision:
        # Something was written between the two reads (the run may even have
        # ended): answer with it, never with a newer state and none of its output.
        changes = live_changes(run=run, revision=revision, cursor=cursor)
        if changes is not None:
            return changes
    return {
        "revision": revision,
        "run": _run_state(state),
        "targets": [],
        "chunks": [],
        "more": [],
    }


def output_text(*, targets: QuerySet[RunTarget] | list[RunTarget], headers: bool) -> Iterator[str]:
    """The full output as text, streamed chunk by chunk (for downloads)."""
    for target in targets:
        if headers:
            yield f"===== {target.server_name} ({target.get_status_display()}"
            yield f", exit {target.exit_code})" if target.exit_code is not None else ")"
            yield " =====\n"
        rows = OutputChunk.objects.filter(run_target=target).order_by("seq")
        yield from rows.values_list("data", flat=True).iterator(chunk_size=200)
        if headers:
            yield "\n"


def approvals_for_team(*, team: Team, state: str = "") -> QuerySet[ApprovalRequest]:
    """The team's approval requests: waiting ones first (soonest to expire first),
    then decided ones, newest first. `state`: "waiting", "decided" or "" (all)."""
    rows = ApprovalRequest.objects.filter(team=team).select_related(
        "run", "requested_by", "decided_by"
    )
    if state == "waiting":
        rows = rows.filter(decision="")
    elif state == "decided":
        rows = rows.exclude(decision="")
    return rows.annotate(
        waiting=Case(
            When(decision="", then=Value(0)), default=Value(1), output_field=IntegerField()
        )
    ).order_by(
        "waiting",
        Case(When(decision="", then=F("expires_at"))).asc(nulls_last=True),
        "-decided_at",
        "-id",
    )
