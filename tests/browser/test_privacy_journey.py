"""A new person's privacy journey, end to end, in a real browser.

They refuse optional cookies, sign in, export their data and check the ZIP
against its own schema, then delete their account. Once the grace period is
over (the purge is called with a later `now`), they can no longer sign in and
nothing of them is left in the database, the files or the cache.

The export job is a Celery task; the test settings run tasks eagerly, so the
archive is built while the "Request an export" request is answered. The page
that follows is the status page, and it shows the ready export.
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from playwright.sync_api import Page, expect

from pipetower.accounts.models import User
from pipetower.analytics.models import PageView
from pipetower.privacy.deletion import account_deletions_purge
from pipetower.privacy.export import SCHEMA_VERSION
from pipetower.privacy.models import AccountDeletion, ExportJob
from tests.factories import PASSWORD, UserFactory
from tests.privacy.residue import scan_cache, scan_database, scan_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "ines.journey@example.com"
NAME = "Ines Journey-Tester"
STRICTLY_NECESSARY = {"csrftoken", "sessionid", "messages", "pt_consent"}


def cookie_names(page: Page) -> set[str]:
    return {cookie["name"] for cookie in page.context.cookies()}


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def validate_against_own_schema(archive: zipfile.ZipFile) -> dict[str, dict]:
    """Every JSON file in the ZIP, validated with the definition its manifest entry names."""
    schema = json.loads(archive.read("schema.json"))
    manifest = json.loads(archive.read("manifest.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(manifest, {**schema, "$ref": "#/$defs/manifest"})
    listed = {entry["path"]: entry for entry in manifest["files"]}
    in_zip = {name for name in archive.namelist() if name.endswith(".json")}
    # Every JSON file is either the schema, the manifest, or listed in the manifest.
    assert in_zip - {"schema.json", "manifest.json"} == set(listed)
    documents = {}
    for path, entry in listed.items():
        document = json.loads(archive.read(path))
        jsonschema.validate(document, {**schema, "$ref": entry["schema"]})
        assert len(document["records"]) == entry["records"]
        documents[entry["category"]] = document
    return {"manifest": manifest, **documents}


def test_a_new_person_rejects_cookies_exports_their_data_and_deletes_their_account(
    page: Page, screenshot_dir: Path
) -> None:
    UserFactory(email=EMAIL, name=NAME)

    # A fresh visit: the banner asks; "Reject all" leaves only what is strictly necessary.
    page.goto("/")
    banner = page.get_by_role("region", name="Cookies on Pipetower")
    expect(banner).to_be_visible()
    banner.get_by_role("button", name="Reject all").click()
    expect(banner).to_be_hidden()
    page.reload()
    expect(page.get_by_role("region", name="Cookies on Pipetower")).to_have_count(0)
    names = cookie_names(page)
    assert names <= STRICTLY_NECESSARY, names
    assert "pt_ab" not in names

    # They sign in through the form; still no optional cookie, no page counted.
    sign_in(page, EMAIL, PASSWORD)
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(NAME)
    names = cookie_names(page)
    assert names <= STRICTLY_NECESSARY, names
    assert PageView.objects.count() == 0

    # They ask for an export and land on the status page, which shows it ready.
    page.goto("/privacy/export/")
    expect(page.get_by_role("heading", name="Export your data")).to_be_visible()
    status = page.locator("#export-status")
    expect(status.get_by_text("No exports yet.")).to_be_visible()
    page.get_by_role("button", name="Request an export").click()
    expect(page).to_have_url(re.compile(r"/privacy/export/$"))
    expect(
        page.get_by_text("Your export is being built. This page shows its progress.")
    ).to_be_visible()
    expect(status.get_by_role("heading", name="Your exports")).to_be_visible()
    row = status.get_by_role("row").nth(1)
    expect(row).to_contain_text("Ready", timeout=30_000)
    job = ExportJob.objects.get(user__email=EMAIL)
    assert job.status == ExportJob.Status.READY and job.progress == 100
    page.screenshot(path=str(screenshot_dir / "export-ready.png"), full_page=True)

    # They download the ZIP through the page's link.
    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download ZIP").click()
    download = download_info.value
    assert re.fullmatch(r"pipetower-export-\d{8}\.zip", download.suggested_filename)
    with zipfile.ZipFile(download.path()) as archive:
        documents = validate_against_own_schema(archive)
    assert documents["manifest"]["schema_version"] == SCHEMA_VERSION == "1.1"
    assert documents["profile"]["records"][0]["email"] == EMAIL
    assert documents["profile"]["records"][0]["name"] == NAME
    assert documents["signins"]["records"], "the sign-in just made is in the export"

    # They delete the account: the password again, then their email typed to confirm.
    page.goto("/privacy/delete/")
    expect(page).to_have_url(re.compile(r"/reauthenticate/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    expect(page.get_by_role("heading", name="Delete your account")).to_be_visible()
    confirm = page.get_by_label("Type your email address to confirm")
    confirm.fill("someone.else@example.com")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("alert")).to_contain_text("Type your email address exactly")
    expect(confirm).to_have_attribute("aria-invalid", "true")
    confirm.fill(EMAIL)
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(re.compile(r"/privacy/delete/scheduled/$"))
    deletion = AccountDeletion.objects.get(user__email=EMAIL)
    assert deletion.status == AccountDeletion.Status.SCHEDULED

    # Before the grace period ends the purge leaves them be; after it, they are erased.
    assert account_deletions_purge(now=deletion.scheduled_for - timedelta(seconds=1)) == 0
    assert User.objects.filter(email=EMAIL).exists()
    assert account_deletions_purge(now=deletion.scheduled_for + timedelta(seconds=1)) == 1
    assert not User.objects.filter(email=EMAIL).exists()

    # Signing in with the old email and password fails on the sign-in page.
    sign_in(page, EMAIL, PASSWORD)
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_text(re.compile("not correct", re.I))).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).not_to_contain_text(NAME)

    # Nothing of them is left: database, files (the export ZIP included) and cache.
    needles = [EMAIL, NAME]
    assert scan_database(needles) == []
    assert scan_files(needles) == []
    assert scan_cache(needles) == []
    assert not ExportJob.objects.exclude(file="").exists()
