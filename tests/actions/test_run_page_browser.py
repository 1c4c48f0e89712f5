"""The run page in a real headless Chromium: colours, safety, live badges, load earlier."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from pipetower.actions import services
from pipetower.actions.models import RunTarget, TargetStatus
from tests import webproc
from tests.actions.conftest import pinned_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in_page(new_context, live_server, user):
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    context = new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server.url,
            }
        ]
    )
    return context.new_page()


@pytest.fixture
def running(team, user, make_action, tasks_queued):
    server = pinned_server(team, "web-1", port=9)
    run = services.run_start(action=make_action(), actor=user, server_ids=[server.pk])
    target = run.targets.get()
    services.run_target_claim(target_id=target.pk, worker="w")
    services.run_target_running(target_id=target.pk)
    return run, target


def test_output_is_coloured_escaped_and_followed_live(
    new_context,
    live_server,
    team,
    user,
    running,
):
    run, target = running
    services.output_chunks_store(
        target_id=target.pk,
        chunks=[
            ("stdout", "plain \x1b[1;31mred bold\x1b[0m back\n"),
            ("stderr", "<img src=x onerror=\"document.title='owned'\">\n"),
        ],
    )
    page = signed_in_page(new_context, live_server, user)
    page.goto(f"/teams/{team.slug}/runs/{run.pk}/")
    terminal = page.locator(f"#output-{target.pk} pre")
    red = terminal.locator("span.ansi-fg-31.ansi-bold")
    red.wait_for()
    assert red.inner_text() == "red bold"
    assert "<img src=x" in terminal.inner_text()
    assert terminal.locator("img").count() == 0 and page.title() != "owned"
    assert terminal.locator(".stream-stderr").count() == 1

    services.output_chunks_store(target_id=target.pk, chunks=[("stdout", "arrived live\n")])
    page.locator(f"#output-{target.pk} pre >> text=arrived live").wait_for()
    # The run ends: the page shows it, then reloads once to show the final buttons.
    with page.expect_navigation():
        services.run_target_finish(target_id=target.pk, status=TargetStatus.SUCCEEDED, exit_code=0)
    badge = page.locator(f"#target-row-{target.pk} .badge-run-succeeded")
    badge.wait_for()
    assert badge.inner_text() == "Succeeded"
    page.locator("#run-status .badge-run-succeeded").wait_for()
    # After the reload that shows the final state, the output is still complete, once.
    page.locator(f"#output-{target.pk} pre >> text=arrived live").wait_for()
    assert terminal.inner_text().count("arrived live") == 1


def test_a_huge_output_shows_the_tail_and_loads_earlier_parts(
    new_context,
    live_server,
    team,
    user,
    running,
):
    run, target = running
    services.output_chunks_store(
        target_id=target.pk, chunks=[("stdout", f"line {n}\n") for n in range(1, 501)]
    )
    page = signed_in_page(new_context, live_server, user)
    page.goto(f"/teams/{team.slug}/runs/{run.pk}/")
    terminal = page.locator(f"#output-{target.pk} pre")
    page.locator(f"#output-{target.pk} pre >> text=line 500").wait_for()
    assert "line 1\n" not in terminal.inner_text()
    page.locator(f"[data-load-earlier='{target.pk}']").click()
    page.locator(f"#output-{target.pk} pre >> text=line 101").wait_for()
    page.locator(f"[data-load-earlier='{target.pk}']").click()
    page.locator(f"#output-{target.pk} pre").get_by_text("line 1", exact=True).wait_for()
    assert page.locator(f"[data-load-earlier='{target.pk}']").is_hidden()


web = webproc.web  # a real `pipetower web` process (fixture)


def test_through_the_served_app_the_page_streams_output_and_keeps_the_summary_current(
    browser, web, team, user, running
):
    """The page against a real `pipetower web`: the live stream (not the polling
    fallback) brings new lines, statuses and the servers-per-status line."""
    run, target = running
    RunTarget.objects.create(run=run, server_name="web-2", status="queued")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    context = browser.new_context(base_url=web)
    try:
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": web}]
        )
        page = context.new_page()
        streams: list[str] = []
        page.on(
            "response",
            lambda r: (
                streams.append(r.url)
                if "stream=1" in r.url
                and r.headers.get("content-type", "").startswith("text/event-stream")
                else None
            ),
        )
        page.goto(f"/teams/{team.slug}/runs/{run.pk}/")
        page.locator("#run-counts >> text=1 running").wait_for()
        page.locator("#run-elapsed >> text=running for").wait_for()
        services.output_chunks_store(target_id=target.pk, chunks=[("stdout", "streamed line\n")])
        page.locator(f"#output-{target.pk} pre >> text=streamed line").wait_for()
        # The response event may reach this side after the line reached the page (once
        # on a loaded machine): give it a moment. A page that polls never sends one.
        for _ in range(50):
            if streams:
                break
            page.wait_for_timeout(100)
        assert streams, "the page used the event stream"
        services.run_target_finish(target_id=target.pk, status=TargetStatus.SUCCEEDED, exit_code=0)
        # The run goes on (web-2 is still queued): no reload, the line is updated live.
        page.locator(f"#target-row-{target.pk} .badge-run-succeeded").wait_for()
        assert page.locator("#run-counts").inner_text() == "2 · 1 succeeded · 1 queued" or (
            page.locator("#run-counts").inner_text() == "2 · 1 queued · 1 succeeded"
        )
    finally:
        context.close()
