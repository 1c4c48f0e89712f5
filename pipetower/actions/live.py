"""Live output for many viewers: one watcher per web process, no thread per viewer.

The ASGI entry point (`pipetower/config/asgi.py`) lets Django authorise a live
request and compute its first answer (a short request on a WSGI thread). When
the viewer must wait for more, Django's answer carries a `park` header; the
router then holds the connection on the event loop and asks this hub.

The hub keeps, per web process, the set of runs someone is waiting on, and
wakes their viewers when a run changes:

- embedded default (SQLite, the worker is another process): ONE task polls the
  database every `ACTIONS_LIVE_POLL_SECONDS` (0.1 s) with one query for all
  watched runs (revision, status and the sum of the targets' last sequence
  numbers), whatever the number of viewers;
- PostgreSQL: the same task LISTENs on the `pipetower_live` channel, fed by a
  trigger on the run and target tables (migration `0900_live_notify_trigger`),
  and polls only every 2 s as a safety net.

Viewers that follow the same run with the same cursor share one computation
of "what changed" (`selectors.live_changes`, run on a small thread pool) and
one encoded answer, so a burst of output costs one set of queries per process
per wake-up, not one per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from pipetower.actions.models import Run

log = logging.getLogger(__name__)

CHANNEL = "pipetower_live"
SAFETY_POLL_SECONDS = 2.0
# Response header by which Django hands a live request to the router (never sent out).
PARK_HEADER = "X-Pipetower-Live-Park"
# Request header the router sets on live requests (a client's own copy is dropped).
ROUTED_HEADER = "X-Pipetower-Live-Router"
ROUTED_META = "HTTP_X_PIPETOWER_LIVE_ROUTER"

# Without the router (a plain WSGI server, the test client) the page asks again after this.
POLL_RETRY_MS = 1000

Key = tuple[int, int, int, tuple[tuple[int, int], ...]]


def poll_seconds() -> float:
    return float(getattr(settings, "ACTIONS_LIVE_POLL_SECONDS", 0.1))


def park_value(
    *, run_id: int, mode: str, body: Mapping[str, Any], cursor: Mapping[int, int], wait: float
) -> str:
    """What a Django live view puts in PARK_HEADER: where the viewer is, and for how long."""
    seen = dict(cursor)
    for chunk in body.get("chunks", []):
        seen[chunk["target"]] = max(seen.get(chunk["target"], 0), chunk["seq"])
    return json.dumps(
        {
            "run": run_id,
            "mode": mode,
            "rev": body["revision"],
            "cursor": {str(k): v for k, v in seen.items()},
            "wait": wait,
            "finished": bool(body["run"]["finished"]) and not body.get("more"),
        },
        separators=(",", ":"),
    )


def live_answer(
    request: HttpRequest,
    *,
    run: Run,
    revision: int,
    cursor: Mapping[int, int],
    wait: float,
    stream: bool = False,
) -> JsonResponse:
    """The one live path of the run page, the API and `pipetower run --follow`.

    Answers at once with what changed (or the unchanged state). Served through
    the ASGI router, a request that should wait (`wait` > 0 and nothing new) or
    stream (`stream`) is handed back to the router, which holds it on the event
    loop; under a plain WSGI server nothing ever waits on a thread and the
    client asks again (`retry_ms`).
    """
    from pipetower.actions import selectors

    body = selectors.live_now(run=run, revision=revision, cursor=cursor)
    routed = request.META.get(ROUTED_META) == "1"
    nothing = not body["chunks"] and not body["targets"] and not body["more"]
    mode = "stream" if stream else ("wait" if wait > 0 and nothing else "")
    if not routed:
        body["retry_ms"] = POLL_RETRY_MS
    response = JsonResponse(body)
    if routed and mode:
        response[PARK_HEADER] = park_value(
            run_id=run.pk, mode=mode, body=body, cursor=cursor, wait=wait
        )
    return response


@dataclass
class Watch:
    viewers: int = 0
    version: int = 0
    fingerprint: tuple[Any, ...] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def bump(self) -> None:
        self.version += 1
        event, self.changed = self.changed, asyncio.Event()
        event.set()


class LiveHub:
    """Per-process: which runs are watched, when they change, and what changed."""

    def __init__(self) -> None:
        self.watches: dict[int, Watch] = {}
        self._memo: dict[Key, asyncio.Future[tuple[dict[str, Any] | None, bytes]]] = {}
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-watch")
        self._compute = ThreadPoolExecutor(max_workers=2, thread_name_prefix="live-changes")
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = False

    # --- life cycle -------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
        self._tasks.append(asyncio.create_task(self._poll_loop(postgres)))
        if postgres:
            self._tasks.append(asyncio.create_task(self._listen_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._db.shutdown(wait=False, cancel_futures=True)
        self._compute.shutdown(wait=False, cancel_futures=True)

    # --- viewers -------------------------------------------------------------------
    def watch(self, run_id: int) -> Watch:
        if not self._tasks:
            # Started lazily if the server gave no lifespan event.
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.start()))
        watch = self.watches.setdefault(run_id, Watch())
        watch.viewers += 1
        return watch

    def unwatch(self, run_id: int) -> None:
        watch = self.watches.get(run_id)
        if watch is not None:
            watch.viewers -= 1
            if watch.viewers <= 0:
                del self.watches[run_id]
                for key in [k for k in self._memo if k[0] == run_id]:
                    del self._memo[key]

    async def changes(
        self, run_id: int, version: int, revision: int, cursor: Mapping[int, int]
    ) -> tuple[dict[str, Any] | None, bytes]:
        """What changed for this cursor (None if nothing), and its JSON, shared by every
        viewer asking with the same run version, revision and cursor."""
        key: Key = (run_id, version, revision, tuple(sorted(cursor.items())))
        future = self._memo.get(key)
        if future is None:
            for old in [k for k in self._memo if k[0] == run_id and k[1] < version]:
                del self._memo[old]
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                self._compute, _compute_changes, run_id, revision, dict(cursor)
            )
            self._memo[key] = future
        try:
            return await asyncio.shield(future)
        except Exception:
            if self._memo.get(key) is future:  # a failed read is not kept for the next viewer
                del self._memo[key]
            raise

    # --- watching the database ---------------------------------------------------
    async def _poll_loop(self, postgres: bool) -> None:
        loop = asyncio.get_running_loop()
        while True:
            interval = SAFETY_POLL_SECONDS if postgres and self.listening else poll_seconds()
            await asyncio.sleep(interval)
            ids = list(self.watches)
            if not ids:
                continue
            try:
                prints = await loop.run_in_executor(self._db, _fingerprints, ids)
            except Exception:  # the next round tries again; viewers keep waiting
                log.warning("Live output: reading run states failed", exc_info=True)
                continue
            for run_id, fingerprint in prints.items():
                watch = self.watches.get(run_id)
                if watch is not None and watch.fingerprint != fingerprint:
                    watch.fingerprint = fingerprint
                    watch.bump()

    async def _listen_loop(self) -> None:
        import psycopg

        params = settings.DATABASES["default"]
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    dbname=params["NAME"],
                    user=params.get("USER") or None,
                    password=params.get("PASSWORD") or None,
                    host=params.get("HOST") or None,
                    port=params.get("PORT") or None,
                    autocommit=True,
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    for watch in self.watches.values():
                        watch.bump()  # anything missed while not listening
                    async for note in conn.notifies():
                        if note.payload.isdigit():
                            noted = self.watches.get(int(note.payload))
                            if noted is not None:
                                noted.bump()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("Live output: LISTEN failed, polling until it is back", exc_info=True)
            self.listening = False
            await asyncio.sleep(1.0)


def _release_connection() -> None:
    if settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        connection.close()  # back to the pool


def _fingerprints(run_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    from django.db.models import Sum

    try:
        rows = (
            Run.objects.filter(pk__in=run_ids)
            .annotate(seq_total=Sum("targets__last_seq"))
            .values_list("pk", "revision", "status", "seq_total")
            .order_by()
        )
        return {row[0]: tuple(row[1:]) for row in rows}
    except Exception:
        connection.close()
        raise
    finally:
        _release_connection()


def _compute_changes(
    run_id: int, revision: int, cursor: dict[int, int]
) -> tuple[dict[str, Any] | None, bytes]:
    from pipetower.actions import selectors

    try:
        body = selectors.live_changes(run=Run(pk=run_id), revision=revision, cursor=cursor)
    except Exception:
        connection.close()
        raise
    finally:
        _release_connection()
    if body is None:
        return None, b""
    return body, json.dumps(body, separators=(",", ":")).encode()


hub = LiveHub()
