"""`pipetower privacy purge` and `pipetower privacy scan`, through the `pipetower` command."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.cli import main
from pipetower.privacy import deletion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_scan_names_the_places_that_hold_a_marker_and_fails(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    UserFactory(email="scan.marker@example.com", name="Scanned Person")
    mail = Path(settings.MAIL_DIR)
    mail.mkdir(exist_ok=True)
    (mail / "planted.log").write_text("To: someone\n\nPlanted-Mail-Marker-41\n")
    log = tmp_path / "server.log"
    log.write_text("GET / from Planted-Log-Marker-42\n")
    try:
        code = main(
            [
                "privacy",
                "scan",
                "--email",
                "scan.marker@example.com",
                "--marker",
                "planted-mail-marker-41",
                "--marker",
                "Planted-Log-Marker-42",
                "--log",
                str(log),
            ]
        )
    finally:
        (mail / "planted.log").unlink()
    out = capsys.readouterr()
    assert code == 1
    assert "accounts_user.email contains 'scan.marker@example.com'" in out.out
    assert "planted.log contains 'planted-mail-marker-41'" in out.out
    assert f"{log} contains 'Planted-Log-Marker-42'" in out.out
    assert "Found" in out.err


def test_scan_of_something_absent_says_nothing_was_found(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["privacy", "scan", "--name", "Nobody-Ever-Stored-7"]) == 0
    assert "Nothing found" in capsys.readouterr().out


def test_scan_without_anything_to_look_for_explains(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["privacy", "scan"]) != 0
    assert "Say what to look for" in capsys.readouterr().err
    assert main(["privacy", "scan", "--log", "/nonexistent/x.log", "--name", "Ada L"]) != 0
    assert "There is no log file" in capsys.readouterr().err


def test_purge_erases_due_accounts_and_expired_mail(capsys, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAIL_RETENTION_DAYS = 30
    ada = UserFactory(email="purge.me@example.com")
    deletion.account_deletion_request(user=ada)
    ada.account_deletions.update(
        scheduled_for=timezone.now() - timedelta(minutes=1)
    )  # the grace period is over
    mail = Path(settings.MAIL_DIR)
    mail.mkdir(exist_ok=True)
    old = mail / "old.log"
    old.write_text("To: someone@example.com\n\nold\n")
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))

    assert main(["privacy", "purge"]) == 0

    out = capsys.readouterr().out
    assert "accounts erased: 1" in out
    assert "saved mail files deleted: 1" in out
    assert not User.objects.filter(email="purge.me@example.com").exists()
    assert not old.exists()
