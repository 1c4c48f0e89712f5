"""Cookie consent in a real browser: nothing optional before a choice or after
"Reject all"; "Accept all" assigns an A/B variant and counts the visit; the
banner works with the keyboard, with its script and without it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from pipetower.analytics.experiments import EXPERIMENTS
from pipetower.analytics.models import PageView

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRICTLY_NECESSARY = {"csrftoken", "sessionid", "messages", "pt_consent"}


def cookie_names(context: BrowserContext) -> set[str]:
    return {cookie["name"] for cookie in context.cookies()}


def cookie_value(context: BrowserContext, name: str) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == name), None)


def csp_violations(page: Page) -> list[str]:
    violations: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", listen)
    return violations


@pytest.fixture
def no_script_context(browser: Browser, live_server: Any) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context
    context.close()


def test_a_fresh_visit_sets_only_the_csrf_cookie_and_reject_all_adds_no_optional_one(
    page: Page,
) -> None:
    violations = csp_violations(page)
    page.goto("/")

    banner = page.get_by_role("region", name="Cookies on Pipetower")
    expect(banner).to_be_visible()
    assert cookie_names(page.context) <= {"csrftoken"}

    # Keyboard only: focus reaches the banner's buttons and Enter presses one.
    reject = banner.get_by_role("button", name="Reject all")
    for _ in range(10):
        page.keyboard.press("Tab")
        if reject.evaluate("button => document.activeElement === button"):
            break
    else:
        raise AssertionError("Tab never reached the Reject all button")
    page.keyboard.press("Enter")

    expect(banner.get_by_role("status")).to_have_text("Your cookie choices are saved.")
    expect(banner).to_be_hidden()
    assert cookie_value(page.context, "pt_consent") == "v1.a0.b0"
    page.reload()
    page.goto("/accounts/login/")
    expect(page.get_by_role("region", name="Cookies on Pipetower")).to_have_count(0)
    names = cookie_names(page.context)
    assert names <= STRICTLY_NECESSARY
    assert "pt_ab" not in names
    assert PageView.objects.count() == 0
    assert violations == []


def test_accept_all_assigns_a_variant_and_counts_the_visit(page: Page) -> None:
    violations = csp_violations(page)
    page.goto("/")
    buttons = page.get_by_role("region", name="Cookies on Pipetower").get_by_role("button")
    expect(buttons).to_have_text(["Accept all", "Reject all", "Choose"])
    sizes = {
        (round(b["width"]), round(b["height"]))
        for b in (x.bounding_box() for x in buttons.all())
        if b
    }
    assert len(sizes) == 1, f"the three buttons differ in size: {sizes}"

    buttons.filter(has_text="Accept all").click()

    expect(page.get_by_role("region", name="Cookies on Pipetower")).to_be_hidden()
    assert cookie_value(page.context, "pt_consent") == "v1.a1.b1"
    page.reload()
    assignment = cookie_value(page.context, "pt_ab")
    assert assignment is not None and assignment.startswith("onboarding:")
    variant = assignment.split(":", 1)[1]
    expect(page.locator(".hero .lead")).to_have_text(EXPERIMENTS["onboarding"].variants[variant])
    assert PageView.objects.get(path="/").count == 1
    assert violations == []


def test_without_script_the_banner_posts_and_comes_back(
    no_script_context: BrowserContext,
) -> None:
    page = no_script_context.new_page()
    page.goto("/accounts/login/")

    page.get_by_role("button", name="Reject all").click()

    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_text("Your cookie choices are saved.")).to_be_visible()
    expect(page.get_by_role("region", name="Cookies on Pipetower")).to_have_count(0)
    assert cookie_value(no_script_context, "pt_consent") == "v1.a0.b0"
    assert "pt_ab" not in cookie_names(no_script_context)


def test_choose_leads_to_the_cookie_page_where_choices_can_change_later(
    no_script_context: BrowserContext,
) -> None:
    page = no_script_context.new_page()
    page.goto("/accounts/login/")

    page.get_by_role("button", name="Choose").click()
    expect(page).to_have_url(re.compile(r"/cookies/\?next=/accounts/login/#choices$"))
    expect(page.get_by_role("cell", name="pt_ab", exact=True)).to_be_visible()
    page.get_by_label("Analytics cookies").check()
    page.get_by_role("button", name="Save my choices").click()

    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    assert cookie_value(no_script_context, "pt_consent") == "v1.a1.b0"
    assert "pt_ab" not in cookie_names(no_script_context)
    assert PageView.objects.get(path="/accounts/login/").count == 1

    # Later, from the footer link on any page, they turn everything off again.
    page.get_by_role("link", name="Cookie settings").click()
    expect(page.get_by_label("Analytics cookies")).to_be_checked()
    page.get_by_role("button", name="Reject all").click()
    assert cookie_value(no_script_context, "pt_consent") == "v1.a0.b0"


def test_a_browser_without_cookies_gets_an_explanation_when_a_form_is_refused(
    page: Page,
) -> None:
    page.goto("/accounts/login/")
    page.context.clear_cookies()  # as if the browser refused to keep them

    page.get_by_role("button", name="Reject all").click()

    expect(page.get_by_role("heading", name="This form could not be sent")).to_be_visible()
    page.get_by_role("link", name=re.compile("What fails when cookies are blocked")).click()
    expect(page.get_by_role("heading", name="When cookies are blocked")).to_be_visible()
