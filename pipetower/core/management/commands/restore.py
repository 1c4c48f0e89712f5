"""`pipetower restore FILE`: put a `pipetower backup` archive back (see core/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.core.backup import backup_restore
from pipetower.core.errors import ServiceError


class Command(BaseCommand):
    help = "Restore a `pipetower backup` archive into the data directory (Pipetower stopped)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="The backup archive (.tar.gz).")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace an existing database (the current files are moved aside first).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            aside = backup_restore(archive_path=Path(options["archive"]), force=options["force"])
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        if aside is not None:
            self.stdout.write(f"The files it replaced are in {aside}.")
        self.stdout.write(
            "Restored. Run `pipetower migrate` if this release is newer than the backup, "
            "then start Pipetower."
        )
