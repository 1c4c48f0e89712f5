"""Saved mail has a retention period and a person's mail goes with their account."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail import EmailMessage

from pipetower.core.mail import ConsoleAndFileBackend
from pipetower.privacy import deletion
from pipetower.privacy.retention import mail_expired_purge
from tests.factories import UserFactory
from tests.privacy.residue import scan_mail

pytestmark = pytest.mark.django_db(transaction=True)

ADA = "ada.mailmarker@example.com"
CITY = "Marker-Ville 198.51.100.9"
_batches: list[list[EmailMessage]] = []


def _save(*messages: EmailMessage) -> Path:
    """Write through the embedded mail backend itself; answers the file it wrote."""
    folder = Path(settings.MAIL_DIR)
    before = set(folder.iterdir()) if folder.exists() else set()
    batch = list(messages)
    _batches.append(batch)  # the backend names files after the batch's id: keep each alive
    ConsoleAndFileBackend(file_path=str(folder)).send_messages(batch)
    (new,) = set(folder.iterdir()) - before
    return new


def _mail(to: str, body: str) -> EmailMessage:
    return EmailMessage("[Pipetower] New sign-in", body, "pipetower@localhost", [to])


@pytest.fixture(autouse=True)
def _empty_mail_folder() -> None:
    folder = Path(settings.MAIL_DIR)
    if folder.exists():
        for path in folder.iterdir():
            path.unlink()


def test_mail_older_than_the_retention_is_deleted(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAIL_RETENTION_DAYS = 30
    old = _save(_mail("old@example.com", "old message"))
    time.sleep(0.01)
    recent = _save(_mail("recent@example.com", "recent message"))
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))

    assert mail_expired_purge() == 1

    assert not old.exists()
    assert recent.exists()


def test_erasure_removes_every_message_to_the_person_and_keeps_the_others() -> None:
    ada = UserFactory(email=ADA, name="Ada Mail")
    alone = _save(_mail(ADA, f"Someone signed in from {CITY}."))
    shared = _save(_mail(ADA, f"Again from {CITY}."), _mail("bob@example.com", "Hello Bob."))
    bobs = _save(_mail("bob@example.com", "Your run finished."))
    assert scan_mail([ADA, CITY])

    scheduled = deletion.account_deletion_request(user=ada)
    assert deletion.account_deletions_purge(now=scheduled.scheduled_for) == 1

    assert scan_mail([ADA, CITY]) == []
    assert not alone.exists()
    assert "Hello Bob." in shared.read_text()
    assert "Your run finished." in bobs.read_text()
