"""What `pipetower web` serves (granian, ASGI): Django on a thread pool, live output async.

Every request goes to Django's WSGI application on a small thread pool
(a2wsgi), exactly as under a WSGI server, except that a live-output request
(the run page's `…/runs/<id>/live`, the API's `…/runs/<id>/changes`) which has
to wait for new output does not wait on a thread: Django authorises it and
computes its first answer as usual, then hands it back (a `park` header) and
the connection waits on the event loop, woken by the process's one live-output
watcher (`pipetower/actions/live.py`). A thousand waiting viewers hold no thread.

docs/architecture.md ("Serving") has the measurements behind this shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipetower.config.settings")

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

_django = get_wsgi_application()  # sets Django up before the models are imported

from pipetower.actions import live  # noqa: E402

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LIVE_PATH = re.compile(r"^/(?:api/v1/)?teams/[^/]+/runs/\d+/(?:live|changes)$")
STREAM_SECONDS = 300.0  # a stream then ends; the page reconnects with its cursor
KEEPALIVE_SECONDS = 15.0
_PARK = live.PARK_HEADER.lower().encode()
_ROUTED = live.ROUTED_HEADER.lower().encode()
_DROP_FOR_STREAM = {b"content-type", b"content-length", _PARK}


def default_threads() -> int:
    """Threads for Django's requests: beyond 2 per core, plus 1, they only contend."""
    return 2 * (os.cpu_count() or 1) + 1


class Router:
    """Live requests that wait are held on the event loop; everything else is Django."""

    def __init__(self, wsgi_app: Any, *, threads: int) -> None:
        self.django: Any = WSGIMiddleware(wsgi_app, workers=threads)

    async def __call__(self, scope: Scope, server_receive: Receive, send: Send) -> None:
        # granian's `receive` returns an awaitable that is not a coroutine, and the
        # WSGI bridge reads request bodies with `run_coroutine_threadsafe`, which
        # takes coroutines only: without this wrapper every form POST answered 500.
        async def receive() -> Any:
            return await server_receive()

        kind = scope["type"]
        if kind == "http":
            if LIVE_PATH.match(scope["path"]) and scope["method"] == "GET":
                await self._live(scope, receive, send)
            else:
                await self.django(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: none here
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await live.hub.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await live.hub.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _live(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != _ROUTED]
        scope = dict(scope, headers=[*headers, (_ROUTED, b"1")])
        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.django(scope, receive, capture)
        park = next((v for k, v in start.get("headers", []) if k == _PARK), None)
        if park is None:
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})
            return
        info = json.loads(park)
        kept = [(k, v) for k, v in start["headers"] if k not in _DROP_FOR_STREAM]
        disconnected = asyncio.Event()
        listener = asyncio.create_task(_until_disconnect(receive, disconnected))
        try:
            if info["mode"] == "stream":
                await _stream(info, kept, bytes(body), send, disconnected)
            else:
                await _wait(info, start, bytes(body), send, disconnected)
        finally:
            listener.cancel()


async def _until_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
    disconnected.set()


async def _changed_or_gone(watch: live.Watch, disconnected: asyncio.Event, timeout: float) -> bool:
    """Wait until the run changes (True), the viewer leaves or the time is up (False)."""
    changed = asyncio.ensure_future(watch.changed.wait())
    gone = asyncio.ensure_future(disconnected.wait())
    try:
        done, _ = await asyncio.wait(
            {changed, gone}, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        changed.cancel()
        gone.cancel()
    return changed in done


def _advance(body: dict[str, Any], cursor: dict[int, int]) -> int:
    for chunk in body["chunks"]:
        cursor[chunk["target"]] = max(cursor.get(chunk["target"], 0), chunk["seq"])
    return int(body["revision"])


async def _wait(
    info: dict[str, Any], start: Message, first: bytes, send: Send, disconnected: asyncio.Event
) -> None:
    """Long-poll: answer with the first change, or with `first` when the wait is over."""
    run_id, revision = int(info["run"]), int(info["rev"])
    cursor = {int(k): int(v) for k, v in info["cursor"].items()}
    deadline = time.monotonic() + float(info["wait"])
    answer = first
    watch = live.hub.watch(run_id)
    try:
        while not disconnected.is_set():
            version = watch.version
            event = watch.changed
            changes, raw = await live.hub.changes(run_id, version, revision, cursor)
            if changes is not None:
                answer = raw
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if watch.changed is event:  # nothing new since we read: wait for it
                await _changed_or_gone(watch, disconnected, remaining)
    finally:
        live.hub.unwatch(run_id)
    headers = [(k, v) for k, v in start["headers"] if k not in (_PARK, b"content-length")]
    headers.append((b"content-length", str(len(answer)).encode()))
    with contextlib.suppress(Exception):  # the viewer may be gone
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": answer})


async def _stream(
    info: dict[str, Any],
    headers: list[tuple[bytes, bytes]],
    first: bytes,
    send: Send,
    disconnected: asyncio.Event,
) -> None:
    """Server-Sent Events: the first answer, then every change, until the run ends."""
    run_id, revision = int(info["run"]), int(info["rev"])
    cursor = {int(k): int(v) for k, v in info["cursor"].items()}
    headers = [
        *headers,
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"x-accel-buffering", b"no"),
    ]
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await _event(send, b"data: " + first + b"\n\n")
        if info["finished"]:
            await _event(send, b"event: end\ndata: {}\n\n")
            return
    except Exception:
        return
    watch = live.hub.watch(run_id)
    deadline = time.monotonic() + STREAM_SECONDS
    try:
        while not disconnected.is_set() and time.monotonic() < deadline:
            event = watch.changed
            changes, raw = await live.hub.changes(run_id, watch.version, revision, cursor)
            if changes is not None:
                revision = _advance(changes, cursor)
                await _event(send, b"data: " + raw + b"\n\n")
                if changes["more"]:
                    continue
                if changes["run"]["finished"]:
                    await _event(send, b"event: end\ndata: {}\n\n")
                    return
            if watch.changed is not event:
                continue
            if not await _changed_or_gone(watch, disconnected, KEEPALIVE_SECONDS):
                await _event(send, b": keep-alive\n\n")
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b""})
    except Exception:
        return  # the viewer is gone
    finally:
        live.hub.unwatch(run_id)


async def _event(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


application = Router(
    _django,
    threads=int(os.environ.get("PIPETOWER_WEB_THREADS") or default_threads()),
)
