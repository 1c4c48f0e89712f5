"""`pipetower backup`: one archive of the embedded default's data (see core/backup.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.core.backup import backup_create
from pipetower.core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Back up the embedded default while it runs: the SQLite database (online backup), "
        "the generated secrets and uploaded files, in one tar.gz archive."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            default=None,
            help="Archive to write (default: pipetower-backup-<time>.tar.gz here).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(
            options["output"] or f"pipetower-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}.tar.gz"
        )
        try:
            manifest = backup_create(output=output)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Backup written to {output} (readable by you only).")
        if manifest["master_keys_from_environment"]:
            self.stdout.write(
                "The master keys come from PIPETOWER_MASTER_KEYS: the archive does not hold "
                "them. Keep them apart; without them the backup's secrets cannot be read."
            )
        else:
            self.stdout.write("It holds the master key: keep it as safe as the server itself.")
