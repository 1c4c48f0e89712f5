"""The run engine: one worker task drives many SSH sessions on one asyncio loop.

`shard_execute(run_id=..., target_ids=[...])` is what the Celery task calls.
It runs the shard's targets within the run-wide `concurrency` limit. The SSH
work runs on the process's engine loop (`servers.warm.engine_loop`, a thread
that outlives one task so connections can stay warm between runs); every
database access is handed back to the calling thread (the task's, with its
Django connection) and serialised there, so the loop never blocks on the
database.

How a script runs on a server (see `remote_program`): the SSH command is only
`sh -s` (or `sudo -n -u USER -- sh -s`); everything else arrives on stdin:
parameter exports (each value `shlex.quote`d, never pasted into the script),
then the script, as one quoted argument of `bash -c` (or, with a shebang, in a
private temp file), started in its own session (`setsid`). stdin then stays
open: a line on it, or its end (the connection dropped, the worker died),
makes a watcher send TERM to the script's process group, and KILL after a
grace period. That is how cancel and timeout stop remote processes without
relying on sshd's optional signal support.

State goes to the database in batches: claims for as many targets as the
run-wide limit allows in one transaction, and one flush transaction per
interval for the shard's output, "running" marks, endings and heartbeats
(services.run_shard_flush), always under the Run row lock.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import logging
import queue
import secrets
import shlex
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh
from django.db import DatabaseError, connection

from pipetower.actions import conf, params, services
from pipetower.actions.models import OutputChunk, ParamKind, Run, RunTarget, TargetStatus
from pipetower.servers.ssh import SshError, connection_spec_for, ssh_connect
from pipetower.servers.warm import engine_loop, warm_connections
from pipetower.teams.retention import team_output_limit_bytes

logger = logging.getLogger("pipetower.actions.engine")

CHUNK_MAX_CHARS = 64 * 1024
READ_SIZE = 64 * 1024
CANCEL_POLL_SECONDS = 0.5
MASK = "••••••"
NUL_SHOWN = "\u2400"  # ␀: NUL cannot be stored in a PostgreSQL text column

STDOUT = OutputChunk.Stream.STDOUT.value
STDERR = OutputChunk.Stream.STDERR.value
SYSTEM = OutputChunk.Stream.SYSTEM.value

SSH_ERROR_STATUS = {
    "dns": TargetStatus.UNREACHABLE,
    "refused": TargetStatus.UNREACHABLE,
    "timeout": TargetStatus.UNREACHABLE,
    "unreachable": TargetStatus.UNREACHABLE,
    "lost": TargetStatus.UNREACHABLE,
    "host_key_changed": TargetStatus.HOST_KEY_MISMATCH,
    "host_key_unknown": TargetStatus.HOST_KEY_MISMATCH,
    "auth_failed": TargetStatus.FAILED,
    "key_format": TargetStatus.FAILED,
    "passphrase": TargetStatus.FAILED,
    "forbidden": TargetStatus.FAILED,  # the address guard (PIPETOWER_FORBIDDEN_NETWORKS)
}


# --- the program sent on stdin ---------------------------------------------------


def remote_command(run_as: str) -> str:
    if run_as:
        return f"sudo -n -u {shlex.quote(run_as)} -- sh -s"
    return "sh -s"


SCRIPT_ARG_MAX = 100 * 1024  # Linux refuses a single argument over 128 KiB


def remote_program(
    *, script: str, env: dict[str, str], grace_seconds: float = 5.0, delimiter: str = ""
) -> str:
    """The POSIX sh program that receives the script and runs it (see the module doc).

    Processes on the server besides the script: the `sh` reading this program and
    the watcher subshell (plus a `sleep` only while stopping). A script without a
    shebang goes to `bash -c` as one argument, so nothing else is started; a
    script with a shebang, or one too large for an argument, is written to a
    private temporary file first.
    """
    grace = f"{max(0.0, grace_seconds):g}"
    lines = ["{", "exec 3<&0"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    cleanup: list[str] = []
    prefix = ""
    if not script.startswith("#!") and len(script.encode()) <= SCRIPT_ARG_MAX:
        # Through the environment (readable by the user only), not the command
        # line (which every user of the server sees in ps).
        lines.append(f"__pt_s={shlex.quote(script)}")
        prefix = '__PT_SCRIPT="$__pt_s" '
        start = "bash -c '__pt_s=$__PT_SCRIPT; unset __PT_SCRIPT; eval \"$__pt_s\"' pipetower"
    else:
        if not script.endswith("\n"):
            script += "\n"
        delimiter = delimiter or f"__PIPETOWER_SCRIPT_{secrets.token_hex(12)}__"
        while f"\n{delimiter}\n" in f"\n{script}":
            delimiter = f"__PIPETOWER_SCRIPT_{secrets.token_hex(12)}__"
        start = '"$__pt_d/script"' if script.startswith("#!") else 'bash "$__pt_d/script"'
        lines += [
            '__pt_d=$(mktemp -d "${TMPDIR:-/tmp}/pipetower.XXXXXXXXXX") || '
            '{ echo "pipetower: cannot create a temporary directory" >&2; exit 125; }',
            f"cat > \"$__pt_d/script\" <<'{delimiter}'",
            script + delimiter,
            'chmod 700 "$__pt_d/script"',
        ]
        cleanup.append('rm -rf "$__pt_d"')
    lines += [
        "if command -v setsid >/dev/null 2>&1; then "
        f"{prefix}setsid {start} </dev/null 3<&- & else {prefix}{start} </dev/null 3<&- & fi",
        "__pt_pid=$!",
        "{ read -r __pt_line; "
        'kill -s TERM -- "-$__pt_pid" || kill -s TERM "$__pt_pid"; '
        f"sleep {grace}; "
        'kill -s KILL -- "-$__pt_pid" || kill -s KILL "$__pt_pid"; } <&3 >/dev/null 2>&1 &',
        "__pt_watch=$!",
        'wait "$__pt_pid"',
        "__pt_rc=$?",
        'kill "$__pt_watch" 2>/dev/null',
        *cleanup,
        'exit "$__pt_rc"',
        "}",
    ]
    return "\n".join(lines) + "\n"


def script_env(run: Run, target: RunTarget) -> dict[str, str]:
    env = {
        "PT_RUN_ID": str(run.pk),
        "PT_TARGET_ID": str(target.pk),
        "PT_SERVER_NAME": target.server_name,
        "PT_ACTION_NAME": run.action_name,
    }
    secret_values = run.secret_param_values()
    for spec in run.parameters:
        name = spec["name"]
        if spec["kind"] == ParamKind.SECRET:
            value = secret_values.get(name, "")
        else:
            value = run.params.get(name, "")
        env[params.env_name(name)] = params.env_value(value)
    return env


# --- output buffering ---------------------------------------------------------------


class Masker:
    """Replaces secret values in a stream, even when one is split across reads."""

    def __init__(self, secret_values: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secret_values if s}, key=len, reverse=True)
        self.held = ""

    def feed(self, text: str, *, final: bool = False) -> str:
        if not self.secrets:
            return text
        text = self.held + text
        for value in self.secrets:
            text = text.replace(value, MASK)
        self.held = ""
        if not final:
            # Hold back a tail that could be the start of a secret.
            longest = max(len(s) for s in self.secrets) - 1
            for size in range(min(longest, len(text)), 0, -1):
                tail = text[-size:]
                if any(s.startswith(tail) for s in self.secrets):
                    self.held, text = tail, text[:-size]
                    break
        return text


@dataclass
class OutputBuffer:
    """One target's output between flushes: decoded, masked, capped."""

    limit: int
    secret_values: Sequence[str] = ()
    pending: list[list[str]] = field(default_factory=list)
    lines: int = 0
    total_bytes: int = 0
    stored_bytes: int = 0
    truncated: bool = False
    dirty: bool = False
    stderr_head: str = ""  # the first stderr text, to explain a sudo refusal

    def __post_init__(self) -> None:
        self.decoders = {
            s: codecs.getincrementaldecoder("utf-8")(errors="replace") for s in (STDOUT, STDERR)
        }
        self.maskers = {s: Masker(self.secret_values) for s in (STDOUT, STDERR, SYSTEM)}

    def _append(self, stream: str, text: str) -> None:
        if not text:
            return
        text = text.replace("\x00", NUL_SHOWN)
        if self.pending and self.pending[-1][0] == stream:
            self.pending[-1][1] += text
        else:
            self.pending.append([stream, text])
        self.lines += text.count("\n")

    def feed(self, stream: str, data: bytes) -> None:
        self.total_bytes += len(data)
        self.dirty = True
        if self.truncated:
            return  # keep reading (so the script is not blocked), store nothing more
        room = self.limit - self.stored_bytes
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.stored_bytes += len(data)
        text = self.decoders[stream].decode(data, final=self.truncated)
        if stream == STDERR and len(self.stderr_head) < 2048:
            self.stderr_head += text[:2048]
        self._append(stream, self.maskers[stream].feed(text, final=self.truncated))
        if self.truncated:
            self._append(
                SYSTEM,
                f"\n[Pipetower: output truncated at {_size(self.limit)} for this server. "
                "The script kept running; the rest of its output was not stored.]\n",
            )

    def note(self, text: str) -> None:
        """A line from Pipetower itself (errors, timeouts), shown apart from the script's."""
        self.dirty = True
        self._append(SYSTEM, self.maskers[SYSTEM].feed(text, final=True))

    def close(self) -> None:
        for stream in (STDOUT, STDERR):
            if not self.truncated:
                text = self.decoders[stream].decode(b"", final=True)
                self._append(stream, self.maskers[stream].feed(text, final=True))
        if self.truncated and self.total_bytes > self.limit:
            self.note(
                f"[Pipetower: {_size(self.total_bytes - self.limit)} more output was discarded.]\n"
            )

    def take(self) -> list[tuple[str, str]]:
        chunks: list[tuple[str, str]] = []
        for stream, text in self.pending:
            for start in range(0, len(text), CHUNK_MAX_CHARS):
                chunks.append((stream, text[start : start + CHUNK_MAX_CHARS]))
        self.pending = []
        self.lines = 0
        self.dirty = False
        return chunks


def _size(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


# --- the shard ------------------------------------------------------------------------


@dataclass
class _Target:
    id: int
    server_id: int | None
    name: str
    env: dict[str, str]
    buffer: OutputBuffer
    process: asyncssh.SSHClientProcess[bytes] | None = None
    stop_reason: str = ""  # "cancelled" or "timed_out" once we asked the script to stop
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Plan:
    """What a shard needs, read from the database before the event loop starts."""

    run_id: int
    script: str
    run_as: str
    timeout_seconds: int
    concurrency: int
    shard_count: int
    secret_values: list[str]
    targets: list[tuple[int, int | None, str, dict[str, str]]]  # id, server id, name, env
    output_limit: int = 0  # bytes kept per target; 0: the installation's default


class Shard:
    def __init__(self, plan: Plan, worker: str, caller: CallerThread) -> None:
        self.caller = caller
        self.run = plan
        self.run_id = plan.run_id
        self.worker = worker
        self.secret_values = plan.secret_values
        limit = plan.output_limit or conf.output_limit_bytes()
        self.targets = [
            _Target(
                id=target_id,
                server_id=server_id,
                name=name,
                env=env,
                buffer=OutputBuffer(limit=limit, secret_values=self.secret_values),
            )
            for target_id, server_id, name, env in plan.targets
        ]
        self.by_id = {t.id: t for t in self.targets}
        # Queued targets this shard holds but has not claimed yet: its heartbeat
        # covers them so the reaper can tell them from targets of a dead worker.
        self.pending: list[int] = [t.id for t in self.targets]
        self.active: dict[int, _Target] = {}
        self.lock = asyncio.Lock()
        self.flush_now = asyncio.Event()
        self.new_running: list[int] = []
        self.spec_cache: dict[Any, Any] = {}
        self.endings: list[services.TargetEnding] = []
        self.ended_unflushed = False
        self.cancelled = False
        self.done = False

    # --- database calls (serialised on the calling thread, retried on errors) ---

    async def _db(self, function: Any, what: str, **kwargs: Any) -> Any:
        """Call a service on the database thread; a database error (a restarted
        PostgreSQL, a locked SQLite file) is retried with backoff for up to
        `conf.db_retry_seconds()`, so a blip loses no output and skips no state."""
        delay = 0.1
        deadline = time.monotonic() + conf.db_retry_seconds()
        while True:
            try:
                return await asyncio.wrap_future(self.caller.submit(_db_call, function, kwargs))
            except DatabaseError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning(
                    "Run %s: database error while %s (retrying in %.1f s): %s",
                    self.run_id,
                    what,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _flush(self, *, heartbeat: bool = False, poll: bool = True) -> None:
        """Write what the shard has to say since the last flush (output of all its
        targets, targets now running, targets ended, heartbeats) in one transaction,
        and learn whether the run was cancelled. On failure (after the retries)
        everything is kept for the next flush."""
        async with self.lock:
            outputs = {
                t.id: (t.buffer.take(), t.buffer.total_bytes, t.buffer.truncated)
                for t in self.active.values()
                if t.buffer.dirty
            }
            running, self.new_running = self.new_running, []
            endings, self.endings = self.endings, []
            beats = [*self.active, *self.pending] if heartbeat else []
            if not (outputs or running or endings or beats or (poll and not self.cancelled)):
                return
            try:
                cancelled = await self._db(
                    services.run_shard_flush,
                    "storing the shard's state",
                    run_id=self.run_id,
                    outputs=outputs,
                    running_ids=running,
                    endings=endings,
                    heartbeat_ids=beats,
                )
            except Exception:
                self.new_running[:0] = running
                self.endings[:0] = endings
                for target_id, (chunks, _, _) in outputs.items():
                    buffer = self.by_id[target_id].buffer
                    buffer.pending[:0] = [[stream, text] for stream, text in chunks]
                    buffer.dirty = True
                raise
        self.ended_unflushed = False
        if cancelled and not self.cancelled:
            self.cancelled = True
            for target in list(self.active.values()):
                self._stop(target, "cancelled")

    async def _finish(
        self, target: _Target, status: str, *, exit_code: int | None = None, error: str = ""
    ) -> None:
        """End a target: its ending (with its last output) goes out with the next flush."""
        for value in self.secret_values:
            if value:
                error = error.replace(value, MASK)
        async with self.lock:
            target.buffer.close()
            if error:
                target.buffer.note(f"[Pipetower: {error}]\n")
            self.endings.append(
                services.TargetEnding(
                    target_id=target.id,
                    status=status,
                    exit_code=exit_code,
                    error=error,
                    chunks=target.buffer.take(),
                    output_bytes=target.buffer.total_bytes,
                    truncated=target.buffer.truncated,
                )
            )
            self.active.pop(target.id, None)
            self.ended_unflushed = True
        self.flush_now.set()

    # --- background loops ---

    async def _flusher(self) -> None:
        """Flushes every interval (or sooner when asked); a failed flush is logged
        and everything waits for the next round, so output, endings, heartbeats and
        the cancel poll are never dropped."""
        interval = conf.flush_interval()
        heartbeat_every = conf.heartbeat_seconds()
        last_beat = last_poll = time.monotonic()
        while not self.done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_now.wait(), timeout=interval)
            self.flush_now.clear()
            now = time.monotonic()
            beat = now - last_beat >= heartbeat_every
            poll = now - last_poll >= CANCEL_POLL_SECONDS
            try:
                await self._flush(heartbeat=beat, poll=poll)
                if beat:
                    last_beat = now
                if poll:
                    last_poll = now
            except Exception:
                logger.exception("Run %s: flush failed; kept for the next try", self.run_id)

    def _stop(self, target: _Target, reason: str) -> None:
        if target.stop_reason:
            return
        target.stop_reason = reason
        target.stopping.set()
        if target.process is not None and not target.process.stdin.is_closing():
            with contextlib.suppress(asyncssh.Error, OSError):  # the channel may be gone
                target.process.stdin.write(b"stop\n")

    # --- one target ---

    async def _read(self, target: _Target, stream: str, reader: Any) -> None:
        flush_lines = conf.flush_lines()
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            target.buffer.feed(stream, data)
            if target.buffer.lines >= flush_lines:
                self.flush_now.set()

    async def _target(self, target: _Target, spec: Any, spec_error: SshError | None) -> None:
        self.active[target.id] = target
        try:
            await self._drive(target, spec, spec_error)
        except Exception as exc:  # the target must end, whatever went wrong
            logger.exception("Run %s target %s failed in the engine", self.run_id, target.id)
            await self._finish(
                target, TargetStatus.FAILED, error=f"Pipetower failed to run this: {exc}"
            )

    async def _dispatch(self) -> None:
        """Claim targets as the run-wide concurrency limit allows and drive them.

        A claim is one statement under the Run lock that counts the run's active
        targets across all shards and workers, so `concurrency` holds for the run.
        When the limit is reached elsewhere, the shard asks again every
        `claim_poll_seconds` or as soon as one of its own targets ends.
        """
        tasks: set[asyncio.Task[None]] = set()
        poll = conf.claim_poll_seconds()
        while self.pending and not self.cancelled:
            room = max(0, self.run.concurrency - len(tasks))
            claimed: list[tuple[int, Any, SshError | None]] = []
            if room and self.ended_unflushed:
                await self._flush()  # so the run-wide count sees the slots freed here
            if room:
                claimed, self.pending = await self._db(
                    _claim,
                    "claiming targets",
                    run_id=self.run_id,
                    target_ids=self.pending,
                    worker=self.worker,
                    want=room,
                    cache=self.spec_cache,
                )
                for target_id, spec, spec_error in claimed:
                    task = asyncio.create_task(
                        self._target(self.by_id[target_id], spec, spec_error)
                    )
                    tasks.add(task)
            if not self.pending:
                break
            if tasks:
                done, _ = await asyncio.wait(
                    tasks, timeout=None if not room else poll, return_when=asyncio.FIRST_COMPLETED
                )
                tasks -= done
            else:
                await asyncio.sleep(poll)
        if tasks:
            await asyncio.gather(*tasks)

    async def _connect(self, spec: Any, first_use: list[str]) -> asyncssh.SSHClientConnection:
        return await ssh_connect(
            spec,
            connect_timeout=conf.connect_timeout(),
            on_first_use=first_use.append,
            keepalive_interval=conf.keepalive_seconds(),
        )

    async def _drive(self, target: _Target, spec: Any, spec_error: SshError | None) -> None:
        if spec_error is not None:
            await self._finish(target, SSH_ERROR_STATUS[spec_error.kind], error=spec_error.message)
            return
        first_use: list[str] = []
        warm = warm_connections() if conf.warm_idle_seconds() > 0 else None
        conn = warm.take(spec) if warm is not None else None
        fresh = conn is None
        if conn is None:
            try:
                conn = await self._connect(spec, first_use)
            except SshError as exc:
                await self._finish(target, SSH_ERROR_STATUS[exc.kind], error=exc.message)
                return
        kept = False
        try:
            if first_use:
                # Another connection may have pinned a key meanwhile: compare with
                # that pin before running anything.
                refusal = await self._db(
                    _pin_first_use,
                    "pinning a host key",
                    server_id=target.server_id,
                    key_line=first_use[0],
                )
                if refusal is not None:
                    await self._finish(target, TargetStatus.HOST_KEY_MISMATCH, error=refusal)
                    return
            if self.cancelled or target.stop_reason:
                await self._finish(target, TargetStatus.CANCELLED, error="Cancelled.")
                return
            command = remote_command(self.run.run_as)
            try:
                process = await conn.create_process(command, encoding=None, term_type=None)
            except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, ConnectionError):
                if fresh:
                    raise
                # The warm connection ended while idle (sshd restarted, a NAT forgot
                # it): nothing ran on it, so connect afresh.
                conn.abort()
                try:
                    conn = await self._connect(spec, first_use)
                except SshError as exc:
                    await self._finish(target, SSH_ERROR_STATUS[exc.kind], error=exc.message)
                    return
                process = await conn.create_process(command, encoding=None, term_type=None)
            target.process = process
            if self.cancelled or target.stop_reason:
                # Cancelled while the session opened: the script never arrives.
                process.close()
                await self._finish(
                    target, TargetStatus.CANCELLED, error="Cancelled before the script started."
                )
                return
            self.new_running.append(target.id)
            # The remote command may end before reading its program (sudo refusing,
            # for one); its output and exit status below then say why.
            with contextlib.suppress(BrokenPipeError, ConnectionError):
                process.stdin.write(
                    remote_program(
                        script=self.run.script,
                        env=target.env,
                        grace_seconds=conf.cancel_grace_seconds(),
                    ).encode()
                )
                if self.cancelled or target.stop_reason:
                    process.stdin.write(b"stop\n")
            readers: asyncio.Future[Any] = asyncio.ensure_future(
                asyncio.gather(
                    self._read(target, STDOUT, process.stdout),
                    self._read(target, STDERR, process.stderr),
                    return_exceptions=True,
                )
            )
            stopping: asyncio.Future[Any] = asyncio.ensure_future(target.stopping.wait())
            await asyncio.wait(
                {readers, stopping},
                timeout=self.run.timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            stopping.cancel()
            if not readers.done():
                if not target.stop_reason:
                    self._stop(target, "timed_out")
                # Give the remote watcher time for TERM, the grace period and KILL.
                await asyncio.wait({readers}, timeout=conf.cancel_grace_seconds() + 5)
                if not readers.done():
                    process.close()
                    readers.cancel()
            try:
                await asyncio.wait_for(process.wait_closed(), timeout=5)
            except TimeoutError:
                process.close()
            exit_code = process.exit_status
            signal = process.exit_signal[0] if process.exit_signal else None
            lost = _lost_reason(conn, readers)
            if warm is not None and exit_code is not None and not lost and not target.stop_reason:
                kept = warm.give_back(
                    spec,
                    conn,
                    idle_seconds=conf.warm_idle_seconds(),
                    per_host=conf.warm_per_host(),
                    per_worker=conf.warm_per_worker(),
                )
        finally:
            if not kept:
                conn.close()
                await conn.wait_closed()
        if target.stop_reason == "timed_out":
            await self._finish(
                target,
                TargetStatus.TIMED_OUT,
                exit_code=exit_code,
                error=f"Timed out after {self.run.timeout_seconds} s; the script was stopped.",
            )
        elif target.stop_reason == "cancelled":
            await self._finish(
                target,
                TargetStatus.CANCELLED,
                exit_code=exit_code,
                error="Cancelled while running; the script was stopped.",
            )
        elif exit_code == 0:
            await self._finish(target, TargetStatus.SUCCEEDED, exit_code=0)
        elif exit_code is None and lost:
            await self._finish(
                target,
                TargetStatus.UNREACHABLE,
                error=f"The connection to {target.name} was lost while the script ran ({lost}). "
                "Output received until then is kept; whether the script finished is unknown.",
            )
        elif exit_code is None:
            reason = f"killed by signal {signal}" if signal else "ended without an exit status"
            await self._finish(target, TargetStatus.FAILED, error=f"The script {reason}.")
        else:
            error = f"Exited with status {exit_code}."
            if self.run.run_as and exit_code == 1 and "sudo:" in target.buffer.stderr_head:
                error = (
                    f"sudo refused to run the script as {self.run.run_as!r}. Allow the login "
                    "user to run commands as that user without a password (sudo -n)."
                )
            await self._finish(target, TargetStatus.FAILED, exit_code=exit_code, error=error)

    async def execute(self) -> None:
        flusher = asyncio.create_task(self._flusher())
        try:
            await self._dispatch()
        finally:
            self.done = True
            self.flush_now.set()
            await flusher
            await self._flush()


def _lost_reason(conn: asyncssh.SSHClientConnection, readers: asyncio.Future[Any]) -> str:
    """Why the connection dropped under a running script, or "" if it did not."""
    if readers.done() and not readers.cancelled():
        for result in readers.result():
            if isinstance(result, (asyncssh.Error, OSError)):
                return str(result) or type(result).__name__
    transport = getattr(conn, "_transport", None)
    if transport is None or transport.is_closing():
        return "no answer to SSH keepalives or the link closed"
    return ""


# --- sync helpers run on the database thread --------------------------------------------


def _db_call(function: Any, kwargs: dict[str, Any]) -> Any:
    """Call a service; after a database error drop the broken connection (outside any
    transaction) so the next try opens a fresh one."""
    try:
        return function(**kwargs)
    except DatabaseError:
        if not connection.in_atomic_block:
            connection.close()
        raise


def _claim(
    *, run_id: int, target_ids: Sequence[int], worker: str, want: int, cache: dict[Any, Any]
) -> tuple[list[tuple[int, Any, SshError | None]], list[int]]:
    """Claim up to `want` targets (run-wide limit) and read their connection specs
    (the team key decrypted and parsed once per shard, through `cache`)."""
    claimed, rest = services.run_targets_claim(
        run_id=run_id, target_ids=target_ids, worker=worker, want=want
    )
    result: list[tuple[int, Any, SshError | None]] = []
    targets = RunTarget.objects.filter(pk__in=claimed).select_related("server", "server__team")
    for target in sorted(targets, key=lambda t: t.pk):
        if target.server is None:
            error = SshError("unreachable", "The server was deleted after the run started.")
            result.append((target.pk, None, error))
            continue
        try:
            result.append((target.pk, connection_spec_for(target.server, cache), None))
        except SshError as exc:
            result.append((target.pk, None, exc))
    return result, rest


def _pin_first_use(*, server_id: int | None, key_line: str) -> str | None:
    """Pin a key accepted on first use. If another connection pinned a key meanwhile,
    compare with that pin: None when it matches, else the refusal to show."""
    if server_id is None:
        return None
    from pipetower.servers.keys import fingerprint_of_line
    from pipetower.servers.models import Server
    from pipetower.servers.services import server_host_key_trust_first_use

    server_host_key_trust_first_use(server_id=server_id, key_line=key_line)
    server = Server.objects.filter(pk=server_id).first()
    if server is None:
        return None
    pins = server.pinned_host_keys
    presented = key_line.split()[:2]
    if any(line.split()[:2] == presented for line in pins):
        return None
    return (
        f"The host key of {server.name} changed while connecting: it presented "
        f"{fingerprint_of_line(key_line)}, but another connection pinned "
        + ", ".join(fingerprint_of_line(line) for line in pins)
        + " meanwhile. Nothing was run. Check the server and pin the right key."
    )


def _load(run_id: int, target_ids: Sequence[int], worker: str) -> Plan | None:
    run = Run.objects.select_related("team").filter(pk=run_id).first()
    if run is None:
        return None
    held = services.run_targets_hold(run_id=run_id, target_ids=target_ids, worker=worker)
    targets = RunTarget.objects.filter(run=run, pk__in=held)
    return Plan(
        run_id=run.pk,
        script=run.script,
        run_as=run.run_as,
        timeout_seconds=run.timeout_seconds,
        concurrency=run.concurrency,
        shard_count=run.shard_count,
        secret_values=[v for v in run.secret_param_values().values() if v],
        output_limit=team_output_limit_bytes(run.team),
        targets=[
            (t.pk, t.server_id, t.server_name, script_env(run, t)) for t in targets.order_by("id")
        ],
    )


async def _shard_main(
    run_id: int, target_ids: Sequence[int], worker: str, caller: CallerThread
) -> int:
    plan = await asyncio.wrap_future(caller.submit(_load, run_id, target_ids, worker))
    if plan is None or not plan.targets:
        return 0
    await Shard(plan, worker, caller).execute()
    return len(plan.targets)


class CallerThread:
    """Runs functions on the thread that called `shard_execute` (the task's thread, with
    its Django connection and, in tests, its transaction) for the shard on the engine
    loop, one at a time, until the shard is done."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False

    def submit(self, function: Any, *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._closed:
            future.set_exception(RuntimeError("The task running this shard has stopped."))
        else:
            self._queue.put((future, function, args))
        return future

    def serve_until(self, done: concurrent.futures.Future[Any]) -> None:
        done.add_done_callback(lambda _: self._queue.put(None))
        while (item := self._queue.get()) is not None:
            future, function, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except Exception as exc:
                future.set_exception(exc)

    def close(self) -> None:
        """Refuse new calls and fail waiting ones (the task was interrupted)."""
        self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[0].set_exception(RuntimeError("The task running this shard has stopped."))


def shard_execute(*, run_id: int, target_ids: Sequence[int], worker: str = "") -> int:
    """Run these targets of the run (those still queued); returns how many were taken."""
    worker = worker or socket.gethostname()
    caller = CallerThread()
    done = asyncio.run_coroutine_threadsafe(
        _shard_main(run_id, list(target_ids), worker, caller), engine_loop()
    )
    try:
        caller.serve_until(done)
    except BaseException:
        # Interrupted here (a time limit, a shutdown): stop the shard on the loop too.
        caller.close()
        done.cancel()
        raise
    return int(done.result())
