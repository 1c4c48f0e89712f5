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
from collections import Counter, OrderedDict
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
    identity: Identity
    conn: asyncssh.SSHClientConnection
    timer: asyncio.TimerHandle


class WarmConnections:
    """Idle connections of one worker process, oldest first, indexed by what they were
    opened with and by host, so a target's lookup does not scan the pool."""

    def __init__(self) -> None:
        self._idle: OrderedDict[int, _Idle] = OrderedDict()  # by id(conn)
        self._by_identity: dict[Identity, list[int]] = {}
        self._per_host: Counter[tuple[str, int]] = Counter()
        self._server_identity: dict[int, Identity] = {}

    def __len__(self) -> int:
        return len(self._idle)

    def take(self, spec: ConnectionSpec) -> asyncssh.SSHClientConnection | None:
        """An open connection made with exactly this spec, or None."""
        identity = identity_of(spec)
        stale = self._server_identity.get(spec.server_id, identity)
        if stale != identity:  # re-pinned or new credentials: never used again
            for ident in list(self._by_identity.get(stale, ())):
                self._remove(ident).conn.close()
        self._server_identity[spec.server_id] = identity
        while ids := self._by_identity.get(identity):
            entry = self._remove(ids[-1])
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
            and per_worker > 0
            and bool(spec.pinned_host_keys)
            and self._server_identity.get(spec.server_id, identity) == identity
            and self._per_host[spec.host, spec.port] < per_host
            and usable(conn)
        )
        if not keep:
            conn.close()
            return False
        while len(self._idle) >= per_worker:
            self._remove(next(iter(self._idle))).conn.close()
        ident = id(conn)
        timer = asyncio.get_running_loop().call_later(idle_seconds, self._expire, ident)
        self._idle[ident] = _Idle(identity=identity, conn=conn, timer=timer)
        self._by_identity.setdefault(identity, []).append(ident)
        self._per_host[spec.host, spec.port] += 1
        self._server_identity[spec.server_id] = identity
        return True

    def close_all(self) -> list[asyncssh.SSHClientConnection]:
        """Close every idle connection; returns them (to wait until they are closed)."""
        conns = [self._remove(ident).conn for ident in list(self._idle)]
        for conn in conns:
            conn.close()
        return conns

    def _expire(self, ident: int) -> None:
        if ident in self._idle:
            self._remove(ident).conn.close()

    def _remove(self, ident: int) -> _Idle:
        entry = self._idle.pop(ident)
        entry.timer.cancel()
        ids = self._by_identity[entry.identity]
        ids.remove(ident)
        if not ids:
            del self._by_identity[entry.identity]
        self._per_host[entry.identity[1], entry.identity[2]] -= 1
        return entry


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
        for conn in warm_connections().close_all():
            await conn.wait_closed()

    asyncio.run_coroutine_threadsafe(close(), _loop[1]).result(timeout)
