"""`pipetower privacy purge` and `pipetower privacy scan`: erasure for operators.

`purge` runs what the scheduler runs: due account deletions, expired export
files, saved mail past its retention, expired invitations. `scan` looks for
what is left of a person (addresses, names, any other marker) in the
database, the data directory (uploads, exports, saved mail, log files, the
SQLite files byte for byte) and the cache, and names every place it finds one.
It exits with status 1 when it finds anything, so a script can check an erasure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Erasure tools: `purge` (what the scheduler runs) and `scan` (find a person's residue)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="purge|scan")
        actions.add_parser(
            "purge",
            help="Erase due account deletions and delete expired exports, mail and invitations.",
        )
        scan = actions.add_parser(
            "scan",
            help="Find a person's addresses, names or other markers anywhere Pipetower keeps data.",
        )
        scan.add_argument("--email", action="append", default=[], help="an address (repeatable)")
        scan.add_argument("--name", action="append", default=[], help="a name (repeatable)")
        scan.add_argument(
            "--marker", action="append", default=[], help="any other text, e.g. an IP (repeatable)"
        )
        scan.add_argument(
            "--log",
            action="append",
            default=[],
            type=Path,
            help="a log file kept outside the data directory to scan too (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "purge":
            self._purge()
        else:
            self._scan(options)

    def _purge(self) -> None:
        from pipetower.privacy.deletion import sqlite_wal_truncate
        from pipetower.privacy.retention import privacy_purge

        for what, count in privacy_purge().items():
            self.stdout.write(f"{what}: {count}")
        if not sqlite_wal_truncate():
            self.stdout.write(
                "The database's write-ahead log could not be truncated now (it is in use); "
                "SQLite will checkpoint it shortly."
            )

    def _scan(self, options: dict[str, Any]) -> None:
        from pipetower.privacy.residue import (
            scan_cache,
            scan_data_dir,
            scan_database,
            scan_paths,
        )

        needles = [n.strip() for n in options["email"] + options["name"] + options["marker"]]
        needles = [n for n in needles if n]
        if not needles:
            raise CommandError("Say what to look for: --email E, --name N or --marker M.")
        if any(len(n) < 3 for n in needles):
            raise CommandError(
                "Each value needs at least 3 characters; shorter ones match everywhere."
            )
        missing = [str(p) for p in options["log"] if not p.is_file()]
        if missing:
            raise CommandError(f"There is no log file {', '.join(missing)}.")
        hits = (
            scan_database(needles)
            + scan_data_dir(needles)
            + scan_paths(options["log"], needles)
            + scan_cache(needles)
        )
        for hit in hits:
            self.stdout.write(hit)
        if hits:
            self.stderr.write(f"Found {len(hits)} place(s) holding what you looked for.")
            raise SystemExit(1)
        self.stdout.write("Nothing found in the database, the data directory or the cache.")
