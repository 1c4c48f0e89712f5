"""Entry points for the separate processes started by tests/actions/test_concurrency.py.

Each runs in a freshly spawned interpreter (no state shared with the test process
but the database): Django is set up with the worker settings, which point at the
test database, and the function plays a worker, a second worker, or a person
cancelling.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from typing import Any


def _setup() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.actions.worker_settings"
    import django

    django.setup()


def execute_shards(shards: list[tuple[int, list[int]]], barrier: Any, worker: str) -> None:
    """For each run in turn: wait for the other process, then run this shard of it."""
    _setup()
    from pipetower.actions import engine

    for run_id, target_ids in shards:
        barrier.wait(timeout=60)
        engine.shard_execute(run_id=run_id, target_ids=target_ids, worker=worker)


def claim_and_finish(run_ids: list[int], barrier: Any, worker: str) -> None:
    """For each run: claim its targets a few at a time and end them, as a shard does."""
    _setup()
    from pipetower.actions import services
    from pipetower.actions.models import RunTarget, TargetStatus

    for run_id in run_ids:
        barrier.wait(timeout=60)
        pending = list(RunTarget.objects.filter(run_id=run_id).values_list("id", flat=True))
        while pending:
            claimed, pending = services.run_targets_claim(
                run_id=run_id, target_ids=pending, worker=worker, want=3
            )
            services.run_targets_heartbeat(run_id=run_id, target_ids=claimed + pending)
            services.run_targets_finish(
                run_id=run_id,
                endings=[
                    services.TargetEnding(target_id=i, status=TargetStatus.SUCCEEDED, exit_code=0)
                    for i in claimed
                ],
            )


def cancel_each(run_ids: list[int], barrier: Any) -> None:
    """For each run: cancel it at a random moment while the other process claims."""
    _setup()
    from pipetower.actions import services
    from pipetower.actions.models import Run
    from pipetower.core.errors import Conflict

    for run_id in run_ids:
        barrier.wait(timeout=60)
        time.sleep(random.uniform(0, 0.01))
        run = Run.objects.select_related("team").get(pk=run_id)
        with contextlib.suppress(Conflict):  # it finished first
            services.run_cancel(run=run, actor=None)


def approve_each(run_ids: list[int], barrier: Any, user_id: int, out: str) -> None:
    """For each run: approve it at the same moment as the other process; write down
    which runs this process approved (the other is told it was already decided)."""
    _setup()
    from pipetower.accounts.models import User
    from pipetower.actions import approvals
    from pipetower.actions.models import Run
    from pipetower.core.errors import Conflict

    actor = User.objects.get(pk=user_id)
    won = []
    for run_id in run_ids:
        barrier.wait(timeout=60)
        run = Run.objects.select_related("team").get(pk=run_id)
        with contextlib.suppress(Conflict):  # the other admin was first
            approvals.approval_approve(run=run, actor=actor)
            won.append(run_id)
    with open(out, "w") as file:
        file.write(",".join(map(str, won)))
