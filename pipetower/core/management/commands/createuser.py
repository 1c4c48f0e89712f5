"""`pipetower createuser`: an account whose email address is already verified.

For operators who add people by hand (sign-up closed, or a first account).
The password is prompted for, read from stdin, or left unset (`--no-password`:
the person then signs in with Google or sets one through "forgot password").
"""

from __future__ import annotations

import sys
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from pipetower.accounts.models import User
from pipetower.audit.services import audit_record
from pipetower.core.management.commands._base import read_password

NAME_MAX_LENGTH = 150


def account_create_verified(*, email: str, name: str, password: str | None, staff: bool) -> User:
    """Create an account with a verified primary email; staff accounts are superusers.

    Raises CommandError with a message for people on any bad input.
    """
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise CommandError(f"{email!r} is not a valid email address.") from None
    name = " ".join(name.split())
    if not name:
        raise CommandError("Give the person's name with --name: team mates see it.")
    if len(name) > NAME_MAX_LENGTH:
        raise CommandError(f"Names can be at most {NAME_MAX_LENGTH} characters long.")
    taken = (
        User.objects.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email).exists()
    )
    if taken:
        raise CommandError(f"An account with the email address {email} already exists.")
    if password is not None:
        try:
            validate_password(password, user=User(email=email, name=name))
        except ValidationError as exc:
            raise CommandError(
                "That password is not accepted:\n" + "\n".join(f"  - {m}" for m in exc.messages)
            ) from None

    with transaction.atomic():
        create = User.objects.create_superuser if staff else User.objects.create_user
        user = create(email, password, name=name)
        if password is None:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        audit_record(
            actor=None,
            verb="account.created",
            target=user,
            data={"via": "command line", "staff": staff, "password_set": password is not None},
        )
    return user


def add_identity_arguments(parser: CommandParser) -> None:
    parser.add_argument("--email", required=True, help="Email address; it is the login.")
    parser.add_argument("--name", required=True, help="The person's name, as team mates see it.")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="Read the password from the first line of standard input instead of asking.",
    )


class Command(BaseCommand):
    help = "Create a user whose email address is already verified."
    requires_system_checks: list[str] = []
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        add_identity_arguments(parser)
        parser.add_argument(
            "--no-password",
            action="store_true",
            help="Create the account without a password (sign in with Google, or reset it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["no_password"] and options["password_stdin"]:
            raise CommandError("Choose one of --no-password and --password-stdin.")
        password = None
        if not options["no_password"]:
            password = read_password(
                from_stdin=options["password_stdin"], stdin=options.get("stdin") or sys.stdin
            )
        user = account_create_verified(
            email=options["email"], name=options["name"], password=password, staff=False
        )
        self.stdout.write(f"Created {user.name} <{user.email}>, email address verified.")
        if password is None:
            self.stdout.write(
                "No password is set: they can sign in with Google (when configured) "
                "or choose one through “Forgot your password?”."
            )
