"""The action form in a real browser: adding parameter rows without saving first."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from pipetower.actions.models import Action
from pipetower.teams.models import Team
from tests.browser.test_run_journey import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_a_parameter_adds_a_row_that_is_saved_with_the_action(
    page: Page, user, team: Team
) -> None:
    sign_in(page, user.email)
    page.goto(f"/teams/{team.slug}/actions/new/")
    expect(page.get_by_text("No servers in this team yet")).to_be_visible()
    rows = page.locator("#param-rows > fieldset")
    expect(rows).to_have_count(2)

    page.get_by_role("button", name="Add a parameter").click()
    expect(rows).to_have_count(3)
    third = rows.nth(2)
    expect(third.get_by_label("Name")).to_be_focused()

    page.locator("#field-name").get_by_label("Name").fill("Three params")
    page.get_by_label(re.compile(r"^Script")).fill('echo "$PT_PARAM_REGION"')
    third.get_by_label("Name").fill("region")
    third.get_by_label("Default").fill("eu")
    page.get_by_role("button", name="Create action").click()

    expect(page.get_by_role("heading", name="Three params", exact=True)).to_be_visible()
    action = Action.objects.get(team=team, name="Three params")
    assert [p["name"] for p in action.parameters] == ["region"]
