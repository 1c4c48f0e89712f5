"""`pipetower import-export FILE --email EMAIL`: restore an export into an account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.accounts.models import User
from pipetower.core.errors import ServiceError


class Command(BaseCommand):
    help = "Restore the teams, servers and actions of a Pipetower export into an account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the export ZIP")
        parser.add_argument("--email", required=True, help="the account that will own them")

    def handle(self, *args: Any, **options: Any) -> None:
        from pipetower.privacy.importer import export_import

        email = options["email"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(
                f"There is no account {email}. Create it first (pipetower createuser)."
            )
        try:
            result = export_import(path=Path(options["file"]), user=user)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Imported {result.teams} team(s), {result.servers} server(s) and "
            f"{result.actions} action(s) for {email}."
        )
        for note in result.notes:
            self.stdout.write(f"Note: {note}")
