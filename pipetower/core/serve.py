"""The process supervisor behind `pipetower serve`.

`pipetower serve` runs the web server, one worker and the scheduler as child
processes of one command. Each child gets a session (and so a process group)
of its own, so that:

- Ctrl-C in the terminal reaches only the supervisor, which then stops the
  children in order: SIGTERM to each child (which stops its own processes:
  granian's workers, Celery's pool), a grace period, then SIGKILL to each
  child's whole process group, so that nothing is left behind either way;
- when one child dies, the supervisor says which and why, clears away what is
  left of its process group and starts it again after a delay that doubles
  with each restart (1 s, 2 s, 4 s … at most 30 s); a child that needed more
  than `max_restarts` restarts within `restart_window_seconds` is not
  restarted again: the supervisor then stops the others and exits non-zero.

A second Ctrl-C (or SIGTERM) while stopping skips the grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

POLL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Child:
    """One supervised process: `name` is how messages speak of it."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: list[float] = field(default_factory=list, repr=False)  # monotonic times
    restart_at: float | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ChildDied(Exception):
    def __init__(self, child: Child, code: int, *, restarts: int = 0, window: float = 0) -> None:
        self.child = child
        self.code = code
        again = (
            f" after {restarts} restart{'s' if restarts != 1 else ''} within {_duration(window)}"
            if restarts
            else ""
        )
        super().__init__(f"the {child.name} stopped unexpectedly ({exit_description(code)}){again}")


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} s"


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        *,
        env: Mapping[str, str] | None = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        grace_seconds: float = 20.0,
        max_restarts: int = 5,
        restart_window_seconds: float = 600.0,
        restart_delay_seconds: float = 1.0,
        restart_max_delay_seconds: float = 30.0,
    ) -> None:
        self.children = children
        self.env = dict(os.environ if env is None else env)
        self.out = out
        self.err = err
        self.grace_seconds = grace_seconds
        self.max_restarts = max_restarts
        self.restart_window_seconds = restart_window_seconds
        self.restart_delay_seconds = restart_delay_seconds
        self.restart_max_delay_seconds = restart_max_delay_seconds
        self.stop_signal: int | None = None
        self.hurry = False
        self._previous_handlers: dict[int, object] = {}

    # --- signals -------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        else:
            self.hurry = True

    def install_signal_handlers(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous_handlers.clear()

    # --- life cycle ----------------------------------------------------------

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        child.restart_at = None
        child.process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            child.argv,
            env=self.env,
            start_new_session=True,
            preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
        )

    def check_children(self) -> None:
        """Restart children that died, when due; raise ChildDied for one that may not be.

        A dead child's process group is killed at once (a Celery pool or web
        workers may outlive their parent), then the child is started again after
        a delay that doubles with each recent restart.
        """
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at and self.stop_signal is None:
                    self._spawn(child)
                continue
            if child.process is None:
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.restarts = [t for t in child.restarts if now - t < self.restart_window_seconds]
            count = len(child.restarts)
            if count >= self.max_restarts:
                raise ChildDied(child, code, restarts=count, window=self.restart_window_seconds)
            _kill_group(child.process.pid)
            child.process = None
            delay = min(self.restart_delay_seconds * 2**count, self.restart_max_delay_seconds)
            child.restarts.append(now + delay)
            child.restart_at = now + delay
            self.err.write(
                f"Pipetower: the {child.name} stopped unexpectedly ({exit_description(code)}); "
                f"restarting it in {delay:g} s (restart {count + 1} of at most "
                f"{self.max_restarts} within {_duration(self.restart_window_seconds)}).\n"
            )
            self.err.flush()

    def wait_for(self, condition: Callable[[], bool], *, timeout: float) -> bool:
        """Wait until `condition()` holds; False on timeout or a stop request.

        Raises ChildDied if a child stops meanwhile.
        """
        deadline = time.monotonic() + timeout
        while self.stop_signal is None:
            self.check_children()
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return False

    def supervise(self) -> None:
        """Return when asked to stop; raise ChildDied when a child stops by itself."""
        while self.stop_signal is None:
            self.check_children()
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """Stop every child and everything it started; returns when all are gone."""
        for child in self.children:
            if child.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + self.grace_seconds
        while any(c.running() for c in self.children):
            if self.hurry or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        for child in self.children:
            if child.pid is None:
                continue
            # The child's process group also holds what it started (web
            # workers, task processes): nothing of it may outlive `serve`.
            _kill_group(child.pid)
            assert child.process is not None
            child.process.wait()

    def run(self, *, on_started: Callable[[Supervisor], None] | None = None) -> int:
        """Start, supervise and stop the children; the exit code for the command."""
        self.install_signal_handlers()
        try:
            self.start()
            try:
                if on_started is not None:
                    on_started(self)
                self.supervise()
            except ChildDied as died:
                others = [c.name for c in self.children if c is not died.child and c.running()]
                also = f"; stopping the {' and the '.join(others)}" if others else ""
                self.err.write(f"Pipetower is stopping: {died}{also}.\n")
                self.err.flush()
                self.stop()
                return 1
            self.out.write("Pipetower is stopping…\n")
            self.out.flush()
            self.stop()
            self.out.write("Pipetower stopped.\n")
            self.out.flush()
            return 0
        finally:
            for child in self.children:
                if child.running():  # only when something above failed unexpectedly
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            self.restore_signal_handlers()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _stop_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor itself is killed."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_answers(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def local_url(host: str, port: int) -> str:
    shown = "localhost" if host in {"127.0.0.1", "localhost", "0.0.0.0", "::", "::1", ""} else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"
