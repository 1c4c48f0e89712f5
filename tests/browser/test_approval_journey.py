"""Approvals by two real accounts in two browsers: the owner makes an action require
approval, an admin starts a run and waits, cannot approve it themselves and is told
why; the owner, signed in elsewhere, approves it on the Approvals page, and a real
worker runs it on a real sshd until it has succeeded."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from pipetower.actions import services
from pipetower.actions.models import Run, RunStatus
from pipetower.teams.models import Role
from tests.actions.conftest import add_server
from tests.browser.test_run_journey import (  # noqa: F401  (the worker fixture)
    RUN_TIMEOUT_MS,
    WorkerProcess,
    sign_in,
    worker,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def test_an_admin_asks_the_owner_approves_and_the_run_runs_on_real_sshd(
    new_context,
    user,
    team,
    make_member,
    sshd,
    worker: WorkerProcess,  # noqa: F811
) -> None:
    add_server(team, user, sshd, name="web-1")
    action = services.action_create(
        team=team, actor=user, name="Deploy", script="echo deployed by approval"
    )
    bea = make_member(Role.ADMIN, email="bea@example.com", name="Bea Admin")

    # The owner turns approval on for the action.
    owner = new_context().new_page()
    sign_in(owner, user.email)
    owner.goto(f"/teams/{team.slug}/actions/{action.pk}/edit/")
    owner.get_by_label("Requires approval").check()
    owner.get_by_role("button", name="Save action").click()
    expect(owner.locator("#action-requires-approval")).to_contain_text("yes")

    # An admin starts a run: it waits, and they cannot approve their own request.
    admin = new_context().new_page()
    sign_in(admin, bea.email)
    admin.goto(f"/teams/{team.slug}/actions/{action.pk}/")
    admin.get_by_role("link", name="Run…").click()
    admin.get_by_label("web-1", exact=True).check()
    admin.get_by_role("button", name="Start run").click()
    expect(admin.get_by_role("heading", name=re.compile(r"^Run #\d+ · Deploy"))).to_be_visible()
    expect(admin.locator("#run-status .badge-run")).to_have_text("Waiting for approval")
    expect(admin.locator("#approval-refusal")).to_have_text(
        "You asked for this run; another admin or owner must approve it."
    )
    expect(admin.get_by_role("button", name="Approve")).to_have_count(0)
    run = Run.objects.get(team=team)
    assert run.status == RunStatus.PENDING_APPROVAL

    # The owner, in another browser, finds it on the Approvals page and approves it.
    worker.wait_ready()
    owner.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile("^Approvals")
    ).click()
    expect(owner.get_by_role("heading", name="Approvals")).to_be_visible()
    owner.get_by_role("link", name=f"#{run.pk} Deploy").click()
    expect(owner.locator("#approval-script")).to_contain_text("echo deployed by approval")
    expect(owner.locator("#approval-requested-by")).to_contain_text("Bea Admin")
    owner.get_by_role("button", name="Approve").click()
    expect(owner.get_by_text("Approved: the run is queued")).to_be_visible()
    expect(owner.locator("#run-status .badge-run")).to_have_text(
        "Succeeded", timeout=RUN_TIMEOUT_MS
    )
    expect(owner.get_by_role("region", name="Output of web-1")).to_contain_text(
        "deployed by approval"
    )

    # The admin's page, left open, follows the run to its end too.
    expect(admin.locator("#run-status .badge-run")).to_have_text(
        "Succeeded", timeout=RUN_TIMEOUT_MS
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.approval.decided_by == user
