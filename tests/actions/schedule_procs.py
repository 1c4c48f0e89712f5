"""Entry points for the scheduler processes started by tests/actions/test_schedules.py.

Each runs in a freshly spawned interpreter that shares nothing with the test
process but the database, and plays one scheduler ticking at a given moment.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any


def tick(barrier: Any, now_iso: str, rounds: int) -> None:
    """Wait for the other schedulers, then tick at `now_iso`, `rounds` times."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.actions.worker_settings"
    import django

    django.setup()
    from pipetower.actions import schedules

    now = datetime.fromisoformat(now_iso)
    for _ in range(rounds):
        barrier.wait(timeout=60)
        schedules.schedules_tick(now=now)
