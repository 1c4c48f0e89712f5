"""Export archives are readable by Pipetower's own user only (issue 9, finding 12)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from pipetower.accounts.models import User
from pipetower.privacy import export

pytestmark = pytest.mark.django_db


def test_the_archive_is_0600_in_a_0700_folder(
    user: User, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_PERMISSIONS = 0o644  # what Django would otherwise give it

    with django_capture_on_commit_callbacks(execute=True):
        job = export.export_request(user=user)
    job.refresh_from_db()

    archive = Path(job.file.path)
    assert archive.read_bytes()[:2] == b"PK"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive.parent.stat().st_mode) == 0o700
