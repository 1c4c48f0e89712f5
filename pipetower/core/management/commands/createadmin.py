"""`pipetower createadmin`: a staff superuser for the back office (/admin/).

Staff see no team's content unless that team grants support access.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from pipetower.core.management.commands._base import read_password
from pipetower.core.management.commands.createuser import (
    account_create_verified,
    add_identity_arguments,
)


class Command(BaseCommand):
    help = "Create a staff superuser (verified email) for the back office at /admin/."
    requires_system_checks: list[str] = []
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        add_identity_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        password = read_password(
            from_stdin=options["password_stdin"], stdin=options.get("stdin") or sys.stdin
        )
        user = account_create_verified(
            email=options["email"], name=options["name"], password=password, staff=True
        )
        self.stdout.write(
            f"Created staff account {user.name} <{user.email}>. "
            "Sign in, then open /admin/ for the back office."
        )
