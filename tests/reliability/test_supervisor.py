"""`pipetower serve`'s supervisor restarts a child that dies, with backoff and a limit.

The children here are real processes (small Python one-liners), so what is
checked is what the supervisor does with real exits, process groups and pids.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

from pipetower.core.serve import Child, Supervisor
from tests.core._ops import alive, wait_until


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_dies_is_started_again_and_the_log_says_so(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    # Dies the first two times, then stays up.
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(starts)!r})\n"
        "n = len(p.read_text()) if p.exists() else 0\n"
        "p.write_text('x' * (n + 1))\n"
        "sys.exit(3) if n < 2 else time.sleep(60)\n"
    )
    err = io.StringIO()
    steady = Child("scheduler", python("import time; time.sleep(60)"))
    flaky = Child("worker", python(code))
    supervisor = Supervisor(
        [steady, flaky],
        out=io.StringIO(),
        err=err,
        grace_seconds=2,
        restart_delay_seconds=0.1,
        max_restarts=5,
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    supervisor.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    supervisor.restore_signal_handlers = lambda: None  # type: ignore[method-assign]
    runner.start()
    try:
        wait_until(lambda: starts.exists() and len(starts.read_text()) == 3, timeout=30)
        wait_until(lambda: flaky.running(), timeout=10, what="the third start to stay up")
        steady_pid = steady.pid
        log = err.getvalue()
        assert (
            "Pipetower: the worker stopped unexpectedly (exit code 3); restarting it in 0.1 s "
            "(restart 1 of at most 5 within 10 minutes)." in log
        ), log
        # The delay doubles with each recent restart.
        assert "restarting it in 0.2 s (restart 2 of at most 5 within 10 minutes)." in log, log
        assert steady.running() and steady.pid == steady_pid, "the others are left alone"
    finally:
        supervisor.stop_signal = 15
        runner.join(timeout=30)
    assert result == [0]
    assert not alive(steady_pid)


def test_a_child_that_keeps_dying_stops_everything_after_the_limit() -> None:
    err = io.StringIO()
    steady = Child("web server", python("import time; time.sleep(60)"))
    broken = Child("worker", python("import sys; sys.exit(2)"))
    supervisor = Supervisor(
        [steady, broken],
        out=io.StringIO(),
        err=err,
        grace_seconds=2,
        restart_delay_seconds=0.05,
        max_restarts=3,
        restart_window_seconds=300,
    )
    supervisor.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    supervisor.restore_signal_handlers = lambda: None  # type: ignore[method-assign]

    code = supervisor.run()

    log = err.getvalue()
    assert code == 1
    assert log.count("Pipetower: the worker stopped unexpectedly (exit code 2); restarting") == 3
    assert (
        "Pipetower is stopping: the worker stopped unexpectedly (exit code 2) after 3 restarts "
        "within 5 minutes; stopping the web server." in log
    ), log
    assert not steady.running()
