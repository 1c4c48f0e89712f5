"""`pipetower token create`: an API token for a user, printed once.

The token alone goes to standard output (so `TOKEN=$(pipetower token create …)`
works); the advice to keep it safe goes to standard error.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.core.errors import ServiceError
from pipetower.core.management.commands._base import positive

MAX_EXPIRY_DAYS = 3650


class Command(BaseCommand):
    help = "Manage API tokens from the command line."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="create")
        create = actions.add_parser(
            "create",
            help="Create a token for a user and print it once.",
            description="Create an API token for a user and print it once.",
        )
        create.add_argument("--email", required=True, help="The user the token acts as.")
        create.add_argument(
            "--scope",
            required=True,
            choices=["read", "write"],
            help="read: look only; write: also change things and start runs.",
        )
        create.add_argument(
            "--name", default="Command line", help="What the token is for (default: Command line)."
        )
        create.add_argument(
            "--expires-days",
            type=positive,
            default=None,
            help="Days until the token stops working (default: it does not expire).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from pipetower.api.services import api_token_create

        email = options["email"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"There is no account with the email address {email}.")
        if not user.is_active:
            raise CommandError(f"The account {email} is disabled; it cannot have API tokens.")
        days = options["expires_days"]
        if days is not None and days > MAX_EXPIRY_DAYS:
            raise CommandError(f"--expires-days can be at most {MAX_EXPIRY_DAYS} (ten years).")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            token, plaintext = api_token_create(
                user=user, name=options["name"], scope=options["scope"], expires_at=expires_at
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(plaintext)
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            if token.expires_at
            else ("does not expire")
        )
        self.stderr.write(
            f"Created {token.scope} token “{token.name}” for {user.email}; it {expiry}. "
            "Copy it now: Pipetower shows it only this once."
        )
