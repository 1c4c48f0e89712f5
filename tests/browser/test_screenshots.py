"""`make screenshots`: the main pages of a seeded demo team, at 1280 px and at a 390 px
phone width, saved into docs/screenshots/ (the README shows a few).

Skipped unless PIPETOWER_SCREENSHOTS names the folder to write to.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Browser

from pipetower.actions import services as action_services
from pipetower.actions.models import Action, ApprovalRequest, OutputChunk, Run, RunTarget
from pipetower.servers import services as server_services
from pipetower.teams import services as team_services
from pipetower.teams.models import Membership, Role
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)


def _demo() -> tuple[object, dict[str, str]]:
    ada = UserFactory(email="ada@example.com", name="Ada Lovelace")
    team = team_services.team_create(user=ada, name="Acme Operations")
    helpers = {}
    for name, role in (("Grace Hopper", Role.ADMIN), ("Alan Turing", Role.OPERATOR)):
        helpers[name] = UserFactory(name=name)
        Membership.objects.create(team=team, user=helpers[name], role=role)
    team_services.invitation_create(team=team, actor=ada, email="linus@example.com", role="viewer")
    servers = [
        server_services.server_create(
            team=team,
            actor=ada,
            name=name,
            host=f"{name}.acme.example",
            port=22,
            username="deploy",
            tags=tags,
        )
        for name, tags in (
            ("web-1", ("web", "eu")),
            ("web-2", ("web", "eu")),
            ("db-1", ("db", "eu")),
        )
    ]
    action = action_services.action_create(
        team=team,
        actor=ada,
        name="Restart nginx",
        description="Reload the configuration, then restart nginx if the reload fails.",
        script="sudo nginx -t && sudo systemctl reload nginx || sudo systemctl restart nginx",
        parameters=[
            {
                "name": "graceful",
                "label": "Graceful",
                "kind": "boolean",
                "required": False,
                "default": True,
                "help": "Reload before restarting.",
            },
        ],
    )
    action_services.action_create(
        team=team,
        actor=ada,
        name="Disk usage",
        script="df -h /",
    )
    now = timezone.now()

    def restart_run(**fields: object) -> Run:
        return Run.objects.create(
            team=team,
            action=action,
            action_name=action.name,
            script=action.script,
            params={"graceful": True},
            timeout_seconds=300,
            concurrency=10,
            **fields,
        )

    run = restart_run(
        status="failed", started_by=ada, created_at=now - timedelta(minutes=3), finished_at=now
    )
    for server, status, code in zip(servers, ("succeeded", "succeeded", "failed"), (0, 0, 1)):
        target = RunTarget.objects.create(
            run=run,
            server=server,
            server_name=server.name,
            status=status,
            exit_code=code,
            started_at=now - timedelta(minutes=3),
            finished_at=now,
        )
        text = (
            "nginx: configuration file /etc/nginx/nginx.conf test is successful\n"
            if code == 0
            else 'nginx: [emerg] unknown directive "gzip_typo" in /etc/nginx/nginx.conf:42\n'
        )
        OutputChunk.objects.create(
            run_target=target, seq=1, stream="stdout" if code == 0 else "stderr", data=text
        )
    # "Restart nginx" now needs a second person: Grace asked to run it on web-1,
    # and the run waits for Ada's approval.
    Action.objects.filter(pk=action.pk).update(requires_approval=True)
    waiting = restart_run(
        status="pending_approval",
        started_by=helpers["Grace Hopper"],
        created_at=now - timedelta(minutes=1),
    )
    RunTarget.objects.create(run=waiting, server=servers[0], server_name=servers[0].name)
    ApprovalRequest.objects.create(
        team=team,
        run=waiting,
        requested_by=helpers["Grace Hopper"],
        created_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(hours=24),
    )
    slug = team.slug
    pages = {
        "team": f"/teams/{slug}/",
        "servers": f"/teams/{slug}/servers/",
        "server": f"/teams/{slug}/servers/{servers[0].pk}/",
        "actions": f"/teams/{slug}/actions/",
        "action": f"/teams/{slug}/actions/{action.pk}/",
        "run-form": f"/teams/{slug}/actions/{action.pk}/run/",
        "run": f"/teams/{slug}/runs/{run.pk}/",
        "runs": f"/teams/{slug}/runs/",
        "approval": f"/teams/{slug}/runs/{waiting.pk}/",
        "approvals": f"/teams/{slug}/approvals/",
        "members": f"/teams/{slug}/members/",
        "activity": f"/teams/{slug}/activity/",
        "security": "/account/security/",
        "status": "/status",
    }
    return ada, pages


def test_screenshots_of_the_main_pages(browser: Browser, live_server) -> None:
    target = os.environ.get("PIPETOWER_SCREENSHOTS")
    if not target:
        pytest.skip("set PIPETOWER_SCREENSHOTS to a folder (make screenshots)")
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    ada, pages = _demo()
    client = Client()
    client.force_login(ada)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    # Cookie choices made, so the banner is not in every picture.
    context.add_cookies([{"name": "pt_consent", "value": "v1.a0.b0", "url": live_server.url}])
    anonymous = browser.new_context(base_url=live_server.url)
    try:
        page = context.new_page()
        landing = anonymous.new_page()
        for width in WIDTHS:
            for viewer in (page, landing):
                viewer.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
            landing.goto("/")
            landing.screenshot(path=folder / f"landing-{width}.png")
            for name, path in pages.items():
                page.goto(path)
                page.screenshot(path=folder / f"{name}-{width}.png", full_page=width > 400)
    finally:
        context.close()
        anonymous.close()
    assert len(list(folder.glob("*.png"))) >= 2 * (len(pages) + 1)
