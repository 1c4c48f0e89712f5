"""The run form in a real headless Chromium: what a person sees when they untick
everything, and "Run again" from a finished run."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from pipetower.actions import services
from pipetower.actions.models import Run, TargetStatus
from tests.actions.conftest import pinned_server
from tests.actions.test_run_page_browser import signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_run_again_is_prefilled_editable_and_refuses_when_everything_is_unticked(
    new_context, live_server, team, user, make_action, tasks_queued
):
    web1 = pinned_server(team, "web-1", port=9)
    web2 = pinned_server(team, "web-2", port=9)
    action = make_action(
        name="deploy",
        parameters=[
            {"name": "version", "kind": "string", "required": True, "default": "1.0"},
            {"name": "token", "kind": "secret"},
        ],
        default_server_ids=[web1.pk],
    )
    run = services.run_start(
        action=action,
        actor=user,
        server_ids=[web1.pk, web2.pk],
        values={"version": "2.5", "token": "planted-s3cret"},
    )
    run.targets.update(status=TargetStatus.UNREACHABLE)
    services.run_status_refresh(run_id=run.pk)

    page = signed_in_page(new_context, live_server, user)
    page.goto(f"{live_server.url}/teams/{team.slug}/runs/{run.pk}/")
    expect(page.get_by_role("button", name="Re-run failed servers")).to_be_visible()
    page.get_by_role("link", name="Run again…").click()

    expect(page.get_by_role("heading", name="Run “deploy” again")).to_be_visible()
    expect(page.get_by_label("web-1", exact=True)).to_be_checked()
    expect(page.get_by_label("web-2", exact=True)).to_be_checked()
    expect(page.get_by_label("version")).to_have_value("2.5")
    expect(page.get_by_label("token:", exact=True)).to_have_value("")
    expect(page.get_by_label(re.compile("Keep the value used in run"))).to_be_checked()
    assert "planted-s3cret" not in page.content()

    # Everything unticked: the form comes back with the reason, nothing runs.
    page.get_by_label("web-1", exact=True).uncheck()
    page.get_by_label("web-2", exact=True).uncheck()
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Choose at least one server or tag to run on."
    )
    assert Run.objects.count() == 1

    # Edited and started: exactly what the form showed.
    page.get_by_label("web-2", exact=True).check()
    page.get_by_label("version").fill("2.6")
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run #\d+ · deploy"))).to_be_visible()
    new = Run.objects.exclude(pk=run.pk).get()
    assert list(new.targets.values_list("server_name", flat=True)) == ["web-2"]
    assert new.params == {"version": "2.6"}
    assert new.secret_param_values() == {"token": "planted-s3cret"}
