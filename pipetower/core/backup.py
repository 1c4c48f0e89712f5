"""`pipetower backup` and `pipetower restore` for the embedded default (SQLite).

A backup is one tar.gz archive (mode 0600) holding:

- `pipetower.sqlite3`: a copy made with SQLite's online backup API, so it is
  consistent even while Pipetower runs and writes (WAL included);
- `secrets.json`: the generated secret key and master keys, without which the
  encrypted secrets in the database cannot be read;
- `media/`: uploaded files (avatars, exports);
- `manifest.json`: what is in it and when it was taken.

The task queue, the cache, collected static files and saved console mail are
not backed up: they are rebuilt or disposable. PostgreSQL deployments use
`pg_dump` instead (docs/deployment.md, "Backups").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from pipetower.core.errors import ServiceError

DATABASE_NAME = "pipetower.sqlite3"
SECRETS_NAME = "secrets.json"
MEDIA_NAME = "media"
MANIFEST_NAME = "manifest.json"
FORMAT = 1


def _sqlite_path() -> Path:
    database = settings.DATABASES["default"]
    if not database["ENGINE"].endswith("sqlite3"):
        raise ServiceError(
            "pipetower backup covers the embedded default (SQLite). This deployment uses "
            f"{database['ENGINE'].rsplit('.', 1)[-1]}: back it up with pg_dump, as "
            "docs/deployment.md explains, and keep the master keys apart."
        )
    return Path(database["NAME"])


def backup_create(*, output: Path) -> dict[str, Any]:
    """Write a backup archive of the data directory to `output`; its manifest."""
    source = _sqlite_path()
    if not source.exists():
        raise ServiceError(f"There is no database at {source} to back up.")
    data_dir = Path(settings.DATA_DIR)
    if output.exists():
        raise ServiceError(f"{output} already exists; choose another file name.")
    with tempfile.TemporaryDirectory(prefix="pipetower-backup-") as work:
        copy = Path(work) / DATABASE_NAME
        with (
            contextlib.closing(sqlite3.connect(source, timeout=20)) as live,
            contextlib.closing(sqlite3.connect(copy)) as target,
        ):
            live.backup(target)  # consistent snapshot, even while others write
        secrets_file = data_dir / SECRETS_NAME
        media = Path(settings.MEDIA_ROOT)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "database": DATABASE_NAME,
            "secrets": secrets_file.exists(),
            "media": media.is_dir(),
            "master_keys_from_environment": bool(os.environ.get("PIPETOWER_MASTER_KEYS")),
        }
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            body = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(body)
            info.mode = 0o600
            archive.addfile(info, io.BytesIO(body))
            archive.add(copy, arcname=DATABASE_NAME)
            if secrets_file.exists():
                archive.add(secrets_file, arcname=SECRETS_NAME)
            if media.is_dir():
                archive.add(media, arcname=MEDIA_NAME)
    return manifest


def backup_restore(*, archive_path: Path, force: bool = False) -> Path | None:
    """Restore an archive into the data directory; where the replaced files went, if any.

    Refuses to replace an existing database unless `force`; then the current
    database, secrets and media are moved aside into `before-restore-<time>/`.
    Pipetower must not be running meanwhile.
    """
    target_db = _sqlite_path()
    data_dir = Path(settings.DATA_DIR)
    try:
        archive = tarfile.open(archive_path, mode="r:gz")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as exc:
        raise ServiceError(f"{archive_path} is not a Pipetower backup: {exc}") from None
    with archive:
        names = set(archive.getnames())
        if MANIFEST_NAME not in names or DATABASE_NAME not in names:
            raise ServiceError(f"{archive_path} is not a Pipetower backup (no manifest).")
        if target_db.exists() and not force:
            raise ServiceError(
                f"A database already exists at {target_db}. Stop Pipetower and add --force to "
                "replace it (the current files are kept in a before-restore folder)."
            )
        aside: Path | None = None
        if target_db.exists():
            aside = data_dir / f"before-restore-{datetime.now(UTC):%Y%m%d-%H%M%S}"
            aside.mkdir()
            for name in (target_db.name, f"{target_db.name}-wal", f"{target_db.name}-shm"):
                if (data_dir / name).exists():
                    shutil.move(data_dir / name, aside / name)
            for name in (SECRETS_NAME, MEDIA_NAME):
                if (data_dir / name).exists():
                    shutil.move(data_dir / name, aside / name)
        members = [
            m
            for m in archive.getmembers()
            if m.name in {DATABASE_NAME, SECRETS_NAME}
            or m.name == MEDIA_NAME
            or m.name.startswith(MEDIA_NAME + "/")
        ]
        archive.extractall(data_dir, members=members, filter="data")
    if (data_dir / DATABASE_NAME) != target_db:
        shutil.move(data_dir / DATABASE_NAME, target_db)
    for name in (SECRETS_NAME, DATABASE_NAME):
        if (data_dir / name).exists():
            os.chmod(data_dir / name, 0o600)
    return aside
