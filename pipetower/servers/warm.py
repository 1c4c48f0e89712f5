"""Warm SSH connections: a worker process keeps its connections to recently used
servers open for a while, so the next run on them skips the TCP and SSH handshakes.

- A connection is reused only for exactly what it was opened with: the same
  server, address, login, credentials (the public halves of its keys and a hash
  of its password) and pinned host keys. Re-pinning a host key, rotating a key
  or changing a password gives the server a new identity here, so the old
  connection is never used again and is closed the next time that server is
  used (or when its idle time ends, whichever comes first).
- Only pinned servers qualify (trust on first use always connects afresh), and
  only connections whose last script ended cleanly with an exit status.
- Limits: `idle_seconds` (0 turns warm connections off), at most `per_host`
  idle connections to one host and port, at most `per_worker` in the process
  (the oldest is closed to make room).
- Connections live on the engine's own event loop (`engine_loop()`), which
  outlives a single task; the pool is only ever touched from that loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import asyncssh

from pipetower.servers.ssh import ConnectionSpec

logger = logging.getLogger("pipetower.servers.warm")

Identity = tuple[int, str, int, str, tuple[str, ...], str]


def identity_of(spec: ConnectionSpec) -> Identity:
    """What a connection was opened with; any difference means a new connection."""
    digest = hashlib.sha256()
    for key in spec.client_keys:
        digest.update(key.export_public_key("openssh"))
    if spec.password is not None:
        digest.update(b"\0password\0" + spec.password.encode())
    return (
        spec.server_id,
        spec.host,
        spec.port,
        spec.username,
        tuple(spec.pinned_host_keys),
        digest.hexdigest(),
    )


def usable(conn: asyncssh.SSHClientConnection) -> bool:
    transport = getattr(conn, "_transport", None)
    return not conn.is_closed() and transport is not None and not transport.is_closing()


@dataclass
class _Idle:
    conn: asyncssh.SSHClientConnection
    timer: asyncio.TimerHandle


class WarmConnections:
    """Idle connections of one worker process, oldest first."""

    def __init__(self) -> None:
        self._idle: OrderedDict[int, tuple[Identity, _Idle]] = OrderedDict()
        self._server_identity: dict[int, Identity] = {}

    def __len__(self) -> int:
        return len(self._idle)

    def take(self, spec: ConnectionSpec) -> asyncssh.SSHClientConnection | None:
        """An open connection made with exactly this spec, or None."""
        identity = identity_of(spec)
        if self._server_identity.get(spec.server_id, identity) != identity:
            self._drop(lambda other: other[0] == spec.server_id and other != identity)
        self._server_identity[spec.server_id] = identity
        for ident, (other, entry) in reversed(list(self._idle.items())):
            if other != identity:
                continue
            del self._idle[ident]
            entry.timer.cancel()
            if usable(entry.conn):
                return entry.conn
            entry.conn.abort()
        return None

    def give_back(
        self,
        spec: ConnectionSpec,
        conn: asyncssh.SSHClientConnection,
        *,
        idle_seconds: float,
        per_host: int,
        per_worker: int,
    ) -> bool:
        """Keep the connection for the next run, or close it; True when kept."""
        identity = identity_of(spec)
        keep = (
            idle_seconds > 0
            and per_host > 0
            and per_worker > 0
            and bool(spec.pinned_host_keys)
            and self._server_identity.get(spec.server_id, identity) == identity
            and usable(conn)
        )
        if keep:
            same_host = [
                ident
                for ident, (other, _) in self._idle.items()
                if (other[1], other[2]) == (spec.host, spec.port)
            ]
            keep = len(same_host) < per_host
        if not keep:
            conn.close()
            return False
        while len(self._idle) >= per_worker:
            _, (_, oldest) = self._idle.popitem(last=False)
            oldest.timer.cancel()
            oldest.conn.close()
        loop = asyncio.get_running_loop()
        ident = id(conn)
        timer = loop.call_later(idle_seconds, self._expire, ident)
        self._idle[ident] = (identity, _Idle(conn=conn, timer=timer))
        self._server_identity[spec.server_id] = identity
        return True

    def close_all(self) -> None:
        self._drop(lambda identity: True)

    def _expire(self, ident: int) -> None:
        item = self._idle.pop(ident, None)
        if item is not None:
            item[1].conn.close()

    def _drop(self, which: Callable[[Identity], bool]) -> None:
        for ident, (identity, entry) in list(self._idle.items()):
            if which(identity):
                del self._idle[ident]
                entry.timer.cancel()
                entry.conn.close()


# --- the engine's event loop ---------------------------------------------------------

_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop, threading.Thread] | None = None
_pools: dict[int, WarmConnections] = {}


def engine_loop() -> asyncio.AbstractEventLoop:
    """This process's engine loop, on a daemon thread, started on first use (and again
    in a forked child: a thread does not survive fork)."""
    global _loop
    with _lock:
        if _loop is not None and _loop[0] == os.getpid() and _loop[2].is_alive():
            return _loop[1]
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="pipetower-engine", daemon=True)
        thread.start()
        _loop = (os.getpid(), loop, thread)
        _pools.clear()
        return loop


def warm_connections() -> WarmConnections:
    """This process's idle connections (call on the engine loop)."""
    pid = os.getpid()
    pool = _pools.get(pid)
    if pool is None:
        pool = _pools[pid] = WarmConnections()
    return pool


def warm_close_all(timeout: float = 10.0) -> None:
    """Close this process's idle connections now (from any thread but the loop's)."""
    if _loop is None or _loop[0] != os.getpid() or not _loop[2].is_alive():
        return

    async def close() -> None:
        pool = warm_connections()
        conns = [entry.conn for _, entry in pool._idle.values()]
        pool.close_all()
        for conn in conns:
            await conn.wait_closed()

    asyncio.run_coroutine_threadsafe(close(), _loop[1]).result(timeout)
