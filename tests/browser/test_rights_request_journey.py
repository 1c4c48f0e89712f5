"""A privacy request, end to end, in a real browser: a visitor without an account
files it, confirms the emailed code, staff see it in their queue with the days
left, extend it with a reason, and the visitor is emailed the notice."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from pipetower.privacy.models import DataSubjectRequest
from tests.browser_fixtures import wait_for_email
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VISITOR = "visitor@example.org"
REASON = "We are gathering records from three systems."


def test_a_visitor_files_a_request_confirms_it_and_is_told_of_the_extension(
    page: Page, new_context: Callable[[], BrowserContext]
) -> None:
    staff = UserFactory(email="privacy@pipetower.example", is_staff=True, is_superuser=True)

    # The visitor finds the form from the public privacy page.
    page.goto("/privacy/")
    page.get_by_role("link", name="Make a request with your email address").click()
    page.get_by_label("Your email address").fill(VISITOR)
    page.get_by_label("What is your request about?").select_option("access")
    page.get_by_role("textbox", name="Your request").fill(
        "Please send me everything you hold about me."
    )
    page.get_by_role("button", name="Send and email me a code").click()
    expect(page.get_by_text(f"We sent a code to {VISITOR}")).to_be_visible()

    # A wrong code is refused; the emailed one confirms the request.
    page.get_by_label("Code from the email").fill("12")
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    found = re.search(r"^\s+(\d{6})$", str(wait_for_email(VISITOR).body), re.M)
    assert found
    page.get_by_label("Code from the email").fill(found.group(1))
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.get_by_role("heading", name="We received your request")).to_be_visible()
    dsr = DataSubjectRequest.objects.get(email=VISITOR)
    assert dsr.status == "open"

    # Staff see it in the queue with 29 whole days left, and extend it.
    staff_page = new_context().new_page()
    staff_page.goto("/accounts/login/")
    staff_page.get_by_label("Email").fill(staff.email)
    staff_page.get_by_label("Password").fill(PASSWORD)
    staff_page.get_by_role("button", name="Sign in", exact=True).click()
    expect(staff_page.get_by_role("button", name="Sign out")).to_be_visible()
    staff_page.goto("/admin/privacy/datasubjectrequest/")
    row = staff_page.locator("#result_list tbody tr").filter(has_text=VISITOR)
    expect(row.locator("td.field-days_left")).to_have_text("29")
    row.locator("th a").click()
    staff_page.get_by_label("Step").select_option("extend")
    staff_page.get_by_label("Text for the person").fill(REASON)
    staff_page.get_by_role("button", name="Save", exact=True).click()
    expect(staff_page.locator("td.field-days_left").filter(has_text="89")).to_be_visible()

    # The visitor is told why, and the new date.
    notice = wait_for_email(VISITOR, count=3)
    assert "We need more time" in notice.subject
    assert REASON in str(notice.body)
    dsr.refresh_from_db()
    assert dsr.extended_at is not None
    assert f"{dsr.due_at:%d %B %Y}" in str(notice.body)
