"""Support access, end to end, in a real browser: a team admin grants it, a staff
member views a run under it, the admin sees that view logged on the team's
support access page and revokes it, and the staff member is refused at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from pipetower.actions import services as action_services
from pipetower.actions.models import Run, RunTarget
from pipetower.privacy.models import StaffAccess, SupportGrant
from pipetower.teams.models import Membership, Role, Team
from tests.actions.conftest import pinned_server
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUTPUT = "nightly-backup-finished-0x5eed"


def sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_an_admin_grants_support_access_sees_the_staff_view_and_revokes_it(
    page: Page, new_context: Callable[[], BrowserContext]
) -> None:
    owner = UserFactory(email="owner@example.com")
    admin = UserFactory(email="admin@example.com")
    staff = UserFactory(email="support@pipetower.example", is_staff=True)
    team = Team.objects.create(name="Acme Ops", slug="acme-ops", created_by=owner)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    server = pinned_server(team, "db-1", port=9)
    action = action_services.action_create(team=team, actor=owner, name="Backup", script="true")
    # The run's rows are written directly: run_start would hand it to the engine,
    # and this test is about who may read it, not about running it.
    run = Run.objects.create(
        team=team,
        action=action,
        action_name=action.name,
        script=action.script,
        timeout_seconds=60,
        concurrency=1,
        started_by=owner,
    )
    target = RunTarget.objects.create(run=run, server=server, server_name=server.name)
    action_services.run_target_claim(target_id=target.pk, worker="w")
    action_services.output_chunks_store(target_id=target.pk, chunks=[("stdout", OUTPUT + "\n")])
    run_path = f"/teams/{team.slug}/runs/{run.pk}/"

    staff_page = new_context().new_page()
    sign_in(staff_page, staff.email)
    assert staff_page.goto(run_path).status == 404  # no grant yet: nothing there

    # The team admin grants read-only access from the team's pages.
    sign_in(page, admin.email)
    page.goto(f"/teams/{team.slug}/")
    page.get_by_role("link", name="Support access for Pipetower staff").click()
    expect(page.get_by_text("Pipetower staff have no access to this team.")).to_be_visible()
    page.get_by_label("For how many days?").fill("9")
    page.get_by_label("Reason or support ticket").fill("Ticket #4711: backup fails")
    page.get_by_role("button", name="Grant access").click()
    expect(page.get_by_text("Support access lasts at most 7 days.")).to_be_visible()
    page.get_by_label("For how many days?").fill("2")
    page.get_by_role("button", name="Grant access").click()
    expect(page.get_by_text("Pipetower staff have read only access until")).to_be_visible()
    assert SupportGrant.objects.get(team=team).granted_by_id == admin.pk

    # Staff view the run, with the banner, and its output.
    assert staff_page.goto(run_path).status == 200
    expect(staff_page.get_by_role("note")).to_contain_text("as Pipetower staff")
    expect(staff_page.get_by_text(OUTPUT)).to_be_visible()

    # The admin sees the logged view on the support access page.
    page.reload()
    log = page.get_by_role("region", name="What staff did")
    viewed = log.get_by_role("row").filter(has=page.get_by_role("cell", name=run_path, exact=True))
    expect(viewed).to_contain_text(staff.email)
    assert StaffAccess.objects.filter(team=team, path=run_path, staff=staff).exists()

    # Revoked: the next request is refused, saying why.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Support access revoked.")).to_be_visible()
    response = staff_page.goto(run_path)
    assert response is not None and response.status == 403
    expect(staff_page.get_by_text("revoked Pipetower's support access")).to_be_visible()
    expect(staff_page.get_by_text(OUTPUT)).to_have_count(0)
