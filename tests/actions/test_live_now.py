"""selectors.live_now: the answer of the live path never shows a state without its output."""

from __future__ import annotations

from typing import Any

import pytest

from pipetower.actions import selectors, services
from pipetower.actions.models import TargetStatus
from tests.actions.conftest import running_run

pytestmark = pytest.mark.django_db


def test_a_run_that_ends_between_the_reads_is_answered_with_its_last_output(
    team, user, monkeypatch
) -> None:
    run, target = running_run(team, user, script="echo hello")
    seen = selectors.live_now(run=run, revision=0, cursor={target.pk: 0})
    revision = seen["revision"]
    real = selectors.live_changes
    calls = []

    def then_the_run_ends(**kwargs: Any) -> Any:
        answer = real(**kwargs)
        if not calls:  # the worker's last flush commits right after this read
            services.run_target_finish(
                target_id=target.pk,
                status=TargetStatus.SUCCEEDED,
                exit_code=0,
                chunks=[("stdout", "hello\n")],
            )
        calls.append(answer)
        return answer

    monkeypatch.setattr(selectors, "live_changes", then_the_run_ends)
    body = selectors.live_now(run=run, revision=revision, cursor={target.pk: 0})

    assert calls[0] is None  # nothing new when the first read looked
    assert body["run"]["finished"] is True
    assert [c["data"] for c in body["chunks"]] == ["hello\n"]
    assert body["more"] == []


def test_nothing_new_is_answered_with_the_unchanged_state(team, user) -> None:
    run, target = running_run(team, user, script="echo hello")
    first = selectors.live_now(run=run, revision=0, cursor={target.pk: 0})

    again = selectors.live_now(run=run, revision=first["revision"], cursor={target.pk: 0})

    assert again["revision"] == first["revision"]
    assert (again["chunks"], again["targets"], again["more"]) == ([], [], [])
    assert again["run"]["finished"] is False
