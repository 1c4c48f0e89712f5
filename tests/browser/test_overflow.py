"""Any input, any screen: every page holds long names without spaces, Unicode, emoji
and right-to-left text without sideways scrolling, at 1280 px and at a 390 px phone.

The pages come from the URL configuration, so a new page is visited without
editing this test; a URL whose parameter this test cannot fill fails, naming it.
One browser and one context for the whole walk keep it bounded in time.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import asyncssh
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from playwright.sync_api import Browser

from pipetower.actions import services as action_services
from pipetower.actions.models import OutputChunk, Run, RunTarget
from pipetower.api.services import api_token_create
from pipetower.privacy import legal_requests, subprocessors
from pipetower.privacy.models import DataSubjectRequest, PolicyVersion, SupportGrant
from pipetower.servers import services as server_services
from pipetower.servers.keys import public_line_of
from pipetower.servers.models import Server
from pipetower.teams import services as team_services
from pipetower.teams.models import Membership, Role
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
# 100 characters without a space (the inputs' maxlength), then Unicode, emoji and RTL.
LONG = "Production-database-replica-" + "x" * 72
UNICODE = "Ünïcødé 🚀 团队 ✨ مرحبا بالعالم שלום"
# Prefixes not visited: the JSON API, the staff back office (Django's own admin),
# static files and the health check (JSON).
# Google sign-in only redirects to Google (and is off unless configured).
SKIP_PREFIXES = ("api/", "admin/", "static/", "healthz", "accounts/google/")
# Endpoints that answer with something other than a page (files, live output).
NOT_PAGES = re.compile(r"(live|stream|chunks|output\.txt|download|avatar/<)")


# The innermost element that sticks out on the right, to say where to look.
WIDEST = """() => {
  const limit = document.documentElement.clientWidth;
  let found = "";
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    let clipped = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") { clipped = true; break; }
    }
    if (!clipped && box.right > limit + 1 && box.width > 0) {
      const classes = el.className ? "." + String(el.className).split(" ").join(".") : "";
      found = el.tagName.toLowerCase() + classes + " right=" + Math.round(box.right)
        + " text=" + (el.textContent || "").trim().slice(0, 40);
    }
  }
  return found;
}"""


def _patterns(resolver: URLResolver, prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found += _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            found.append((prefix + str(entry.pattern), entry))
    return found


def _seed() -> tuple[Any, dict[str, str]]:
    """A team full of hostile names; returns the owner and values for URL parameters."""
    owner = UserFactory(email=f"{'a' * 60}@example.com", name=LONG)
    team = team_services.team_create(user=owner, name=LONG)
    second = team_services.team_create(user=owner, name=UNICODE)
    mate = UserFactory(email="grace@example.com", name=UNICODE)
    membership = Membership.objects.create(team=team, user=mate, role=Role.OPERATOR)
    invitation = team_services.invitation_create(
        team=team, actor=owner, email=f"{'i' * 64}@{'d' * 30}.example.com", role="viewer"
    )
    server = server_services.server_create(
        team=team,
        actor=owner,
        name=LONG,
        host="h" * 60 + ".example.com",
        port=22,
        username="u" * 32,
        tags=("t" * 40, "eu-west-1"),
    )
    server_services.server_create(
        team=team, actor=owner, name=UNICODE, host="127.0.0.1", port=1, username="deploy"
    )
    # The host keys a connection test found, one per type, listed on the server page.
    offered = [
        public_line_of(asyncssh.generate_private_key(alg))
        for alg in ("ssh-ed25519", "ecdsa-sha2-nistp521", "ssh-rsa")
    ]
    Server.objects.filter(pk=server.pk).update(offered_host_key="\n".join(offered))
    action = action_services.action_create(
        team=team,
        actor=owner,
        name=LONG,
        description=UNICODE + " " + LONG,
        script="echo " + "y" * 300,
        parameters=[
            {"name": "w" * 40, "label": LONG, "kind": "string", "required": False, "help": UNICODE},
            {
                "name": "mode",
                "label": UNICODE,
                "kind": "choice",
                "required": True,
                "choices": [LONG, "b"],
            },
        ],
    )
    run = Run.objects.create(
        team=team,
        action=action,
        action_name=action.name,
        script=action.script,
        params={"mode": LONG},
        timeout_seconds=60,
        concurrency=1,
        status="failed",
        started_by=owner,
    )
    target = RunTarget.objects.create(
        run=run,
        server=server,
        server_name=server.name,
        status="failed",
        exit_code=1,
        error="z" * 200,
    )
    OutputChunk.objects.create(run_target=target, seq=1, stream="stdout", data="q" * 500 + "\n")
    from pipetower.actions.models import Schedule

    schedule = Schedule.objects.create(
        team=team,
        action=action,
        name=LONG[:100],
        cron="*/5 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 1-31 1-12 1-5",
        timezone="America/Argentina/ComodRivadavia",
        next_run_at=timezone.now() + datetime.timedelta(hours=1),
        last_run=run,
        last_fired_at=timezone.now(),
        last_outcome="refused",
        last_message="m" * 300,
    )
    Run.objects.filter(pk=run.pk).update(
        trigger="schedule", schedule=schedule, schedule_name=LONG[:100]
    )
    from pipetower.actions.models import Webhook, WebhookDelivery

    webhook = Webhook.objects.create(
        team=team,
        action=action,
        name=LONG[:100],
        token="t" * 43,
        secret="s" * 43,
        params={"mode": LONG},
        mapping={"w" * 40: "head_commit." + "p" * 150},
    )
    webhook.servers.add(server)
    WebhookDelivery.objects.create(
        webhook=webhook, delivery_id="d" * 100, status=422, message="m" * 300
    )
    WebhookDelivery.objects.create(webhook=webhook, delivery_id=UNICODE, status=202, run=run)
    from pipetower.notifications.models import NotificationDelivery, NotificationRule

    rule = NotificationRule.objects.create(
        team=team,
        action=action,
        name=LONG[:100],
        channel="webhook",
        url="https://" + "h" * 60 + ".example.com/" + "p" * 300,
        format="slack",
        secret="n" * 43,
    )
    NotificationDelivery.objects.create(
        rule=rule, run=run, event="failed", outcome="retrying", message="m" * 300,
        next_retry_at=run.created_at,
    )  # fmt: skip
    token, _ = api_token_create(user=owner, name=LONG, scope="read")
    grant = SupportGrant.objects.create(
        team=team,
        scope="read",
        reason=LONG,
        granted_by=owner,
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    # The public registers: a long name and Unicode in the list, its history and the report.
    staff = UserFactory(is_staff=True)
    subprocessors.subprocessor_add(
        actor=staff,
        name=LONG,
        purpose=UNICODE + " " + LONG,
        location=LONG,
        since=datetime.date(2024, 1, 1),
    )
    legal_requests.legal_request_record(
        actor=staff,
        authority=LONG,
        received_on=datetime.date(2025, 1, 1),
        scope=LONG,
        disclosed=False,
        reason=UNICODE,
        customer_notified=False,
    )
    # A privacy request, extended with a long reason, on the owner's requests page.
    DataSubjectRequest.objects.create(
        user=owner,
        kind="objection",
        details=LONG,
        answer=f"{UNICODE} {LONG}",
        extended_at=timezone.now(),
        extension_reason=f"{LONG} {UNICODE}",
    )
    # A significant version the owner has not acknowledged: its banner is on every page.
    for number in (1, 2):
        PolicyVersion.objects.create(
            number=number,
            text=f"# {LONG}\n\n{UNICODE} {LONG}\n\n- {LONG}\n\n[{LONG}](https://{'l' * 80}.x)",
            summary=f"{LONG} {UNICODE}",
            significant=True,
            published_at=timezone.now() + datetime.timedelta(seconds=number),
        )
    values = {
        "team_slug": team.slug,
        "server_id": str(server.pk),
        "action_id": str(action.pk),
        "run_id": str(run.pk),
        "target_id": str(target.pk),
        "schedule_id": str(schedule.pk),
        "webhook_id": str(webhook.pk),
        "rule_id": str(rule.pk),
        "membership_id": str(membership.pk),
        "invitation_id": str(invitation.pk),
        "token_id": str(token.pk),
        "user_id": str(owner.pk),
        # Tokens and keys in links: the pages that say the link does not work.
        "token": "not-a-valid-token",
        "key": "not-a-valid-key",
        "uidb36": "1",
        "survey_id": "1",
        "grant_id": str(grant.pk),
        "number": "1",
        "n": "1",
        "session_id": "1",
        "pk": "1",
    }
    assert second.slug
    # Scheduled for deletion: every team page shows the banner with the long name.
    team_services.team_deletion_schedule(team=team, actor=owner, confirm_name=LONG)
    return owner, values


def _path(pattern: str, values: dict[str, str]) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], pattern)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], path)
    return "/" + path.replace("^", "").replace("$", "")


def test_no_page_scrolls_sideways_with_hostile_names(browser: Browser, live_server) -> None:
    owner, values = _seed()
    paths: list[str] = []
    for pattern, _entry in _patterns(get_resolver()):
        if pattern.startswith(SKIP_PREFIXES) or NOT_PAGES.search(pattern):
            continue
        names = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", pattern)
        missing = {a or b for a, b in names} - set(values)
        assert not missing, f"{pattern}: give this test a value for {missing}"
        paths.append(_path(pattern, values))

    client = Client()
    client.force_login(owner)
    # POST-only endpoints (405) and files are not pages to look at.
    paths = [
        path
        for path in paths
        if (answer := client.get(path)).status_code != 405
        and "text/html" in answer.get("Content-Type", "")
    ]
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    overflowing: list[str] = []
    visited = 0
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for path in paths:
                response = page.goto(path)
                if response is None or "text/html" not in response.headers.get("content-type", ""):
                    continue
                visited += 1
                sizes = page.evaluate(
                    "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
                )
                if sizes[0] > sizes[1]:
                    culprit = page.evaluate(WIDEST)
                    overflowing.append(
                        f"{width}px {path} ({page.url}): {sizes[0]} > {sizes[1]}; {culprit}"
                    )
    finally:
        context.close()
    assert visited > 40, visited
    assert not overflowing, "pages wider than the screen:\n" + "\n".join(overflowing)
