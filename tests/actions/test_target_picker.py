"""The run form's target picker for fleets: every server with its tags, pin and
last check; a search box, a tag filter and select all/none (picker.js) in a real
headless Chromium, and the same form working without JavaScript."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pipetower.actions.models import Run
from pipetower.servers import services as server_services
from pipetower.servers.models import Server
from tests.actions.conftest import pinned_server
from tests.actions.test_run_page_browser import signed_in_page


def fleet(team, user):
    web1 = pinned_server(team, "web-1", port=9)
    web2 = pinned_server(team, "web-2", port=9)
    db1 = pinned_server(team, "db-1", port=9)
    server_services.servers_tags_bulk(
        team=team, actor=user, server_ids=[web1.pk, web2.pk], add="web"
    )
    server_services.servers_tags_bulk(team=team, actor=user, server_ids=[db1.pk], add="db")
    Server.objects.filter(pk=web2.pk).update(
        last_check_at=timezone.now(), last_check_ok=False, last_check_error="refused"
    )
    Server.objects.filter(pk=db1.pk).update(host_keys="")
    return web1, web2, db1


def test_without_javascript_every_server_shows_its_pin_and_last_check(
    owner_client, team, user, make_action
):
    web1, _web2, _db1 = fleet(team, user)
    action = make_action(name="deploy", default_server_ids=[web1.pk])

    page = owner_client.get(f"/teams/{team.slug}/actions/{action.pk}/run/").content.decode()

    rows = page.split('id="target-picker"', 1)[1].split("</tbody>", 1)[0].split("<tr")[2:]
    by_name = {
        name: next(r for r in rows if f">{name}</label>" in r)
        for name in ("web-1", "web-2", "db-1")
    }
    assert "checked" in by_name["web-1"] and "checked" not in by_name["web-2"]
    assert "Pinned" in by_name["web-1"] and "Never" in by_name["web-1"]
    assert "Connection refused" in by_name["web-2"]
    assert "Not pinned" in by_name["db-1"]
    assert 'data-tags="web "' in by_name["web-1"]
    # the search and select controls wait for the script
    assert "data-picker-controls hidden" in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_search_tag_filter_and_select_all_or_none(
    new_context, live_server, team, user, make_action, tasks_queued
):
    fleet(team, user)
    action = make_action(name="deploy")
    page = signed_in_page(new_context, live_server, user)
    page.goto(f"{live_server.url}/teams/{team.slug}/actions/{action.pk}/run/")

    search = page.get_by_label("Search servers")
    search.fill("db")
    expect(page.get_by_label("db-1", exact=True)).to_be_visible()
    expect(page.get_by_label("web-1", exact=True)).to_be_hidden()
    search.fill("")
    page.get_by_label("Show tag").select_option("web")
    expect(page.get_by_label("db-1", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Select all shown").click()
    expect(page.get_by_label("web-1", exact=True)).to_be_checked()
    expect(page.get_by_label("web-2", exact=True)).to_be_checked()
    expect(page.get_by_text("2 of 3 selected · 2 shown")).to_be_visible()
    page.get_by_role("button", name="Select none").click()
    expect(page.get_by_label("web-1", exact=True)).not_to_be_checked()
    page.get_by_role("button", name="Select all shown").click()
    page.get_by_role("button", name="Start run").click()

    expect(page.get_by_role("heading", name=re.compile(r"^Run #\d+ · deploy"))).to_be_visible(
        timeout=10_000
    )
    run = Run.objects.get()
    assert sorted(run.targets.values_list("server_name", flat=True)) == ["web-1", "web-2"]
