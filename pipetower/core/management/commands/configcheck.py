"""`pipetower check`: what is configured, what is missing, and the system checks.

Shows where things are and which mode each part runs in; never a password,
a secret key or a master key.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.db.migrations.exceptions import (
    InconsistentMigrationHistory,
    NodeNotFoundError,
)

from pipetower.core.management.commands._base import (
    check_message_text,
    check_messages,
    database_problem,
    database_summary,
    url_redacted,
)

SECRETS_FILE = "secrets.json"
MigrationError = (NodeNotFoundError, InconsistentMigrationHistory)


def configuration_report() -> tuple[list[tuple[str, str]], list[str], bool]:
    """(label, value) lines describing the configuration, what is missing, and
    whether the database answers."""
    lines: list[tuple[str, str]] = []
    missing: list[str] = []
    data_dir = settings.DATA_DIR
    generated_from = f"generated, kept in {SECRETS_FILE} in the data directory"

    lines.append(("mode", settings.ENVIRONMENT))
    writable = os.access(data_dir, os.W_OK)
    lines.append(("data directory", f"{data_dir}" + ("" if writable else " (NOT writable)")))
    if not writable:
        missing.append(f"The data directory {data_dir} is not writable by this user.")
    lines.append(("base URL", settings.BASE_URL))

    problem = database_problem()
    db = database_summary(settings.DATABASES["default"])
    lines.append(("database", db + (" (reachable)" if problem is None else " (NOT reachable)")))
    if problem:
        missing.append(problem[0].upper() + problem[1:].rstrip(".?") + ".")
    else:
        lines.append(("migrations", _migrations_summary(missing)))

    if settings.BROKER_URL:
        lines.append(("broker", url_redacted(settings.BROKER_URL)))
    else:
        lines.append(
            ("broker", f"embedded: files in {data_dir / 'queue'} (no broker service needed)")
        )
    cache = settings.CACHES["default"]
    backend = str(cache["BACKEND"])
    if "redis" in backend.lower():
        lines.append(("cache", url_redacted(str(cache["LOCATION"]))))
    elif "filebased" in backend:
        lines.append(("cache", f"files in {cache['LOCATION']}"))
    else:
        lines.append(("cache", backend.rsplit(".", 2)[-2]))

    lines.append(("email", _email_summary(missing)))
    lines.append(("from address", settings.DEFAULT_FROM_EMAIL))
    lines.append(("sign-up", _signup_summary()))

    from_env = bool(os.environ.get("SECRET_KEY", "").strip())
    lines.append(("secret key", "from SECRET_KEY" if from_env else generated_from))
    count = len(settings.MASTER_KEYS)
    keys_from_env = bool(os.environ.get("PIPETOWER_MASTER_KEYS", "").strip())
    source = "from PIPETOWER_MASTER_KEYS" if keys_from_env else generated_from
    noun = "key" if count == 1 else "keys"
    lines.append(("master keys", f"{count} {noun}, {source}"))
    if count == 0:
        missing.append("No master key: set PIPETOWER_MASTER_KEYS (`pipetower keygen` makes one).")

    lines.append(("Google sign-in", _google_summary(missing, database_ok=problem is None)))

    if settings.CELERY_TASK_ALWAYS_EAGER:
        lines.append(("tasks", "run inside the web process (PIPETOWER_TASKS_EAGER)"))
    else:
        lines.append(("tasks", "run by `pipetower worker` processes"))
    if settings.PRODUCTION:
        lines.append(("HTTPS redirect", "on" if settings.SECURE_SSL_REDIRECT else "off"))
        lines.append(("HSTS", f"{settings.SECURE_HSTS_SECONDS} seconds"))
        if not settings.BASE_URL.startswith("https://"):
            missing.append(
                "PIPETOWER_BASE_URL must be the public https:// address in production: "
                "links in emails are built from it."
            )
        if settings.EMAIL_MODE == "console":
            missing.append(
                "PIPETOWER_EMAIL is console, which sends nothing: in production people could "
                "not verify their address or reset a password. Use smtp or mailgun."
            )
    lines.append(("debug", "on" if settings.DEBUG else "off"))
    return lines, missing, problem is None


def _email_summary(missing: list[str]) -> str:
    mode = settings.EMAIL_MODE
    if mode == "console":
        return f"console: printed and saved in {settings.MAIL_DIR} (nothing is sent)"
    if mode == "smtp":
        mailer: dict[str, Any] = settings.MAILERS["default"]
        options: dict[str, Any] = mailer["OPTIONS"]
        security = "SSL" if options["use_ssl"] else "STARTTLS" if options["use_tls"] else "plain"
        who = f" as {options['username']}" if options["username"] else ""
        if options["username"] and not options["password"]:
            missing.append("EMAIL_HOST_USER is set but EMAIL_HOST_PASSWORD is not.")
        return f"SMTP via {options['host']}:{options['port']} ({security}){who}"
    anymail: dict[str, str] = settings.ANYMAIL
    domain = anymail.get("MAILGUN_SENDER_DOMAIN") or ""
    if not domain:
        missing.append(
            "MAILGUN_SENDER_DOMAIN is not set: Mailgun needs the domain mail is sent from."
        )
    return f"Mailgun, domain {domain or '(not set)'}, API {anymail['MAILGUN_API_URL']}"


def _migrations_summary(missing: list[str]) -> str:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        unapplied = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except MigrationError as exc:
        missing.append(f"The migrations cannot be read: {exc}")
        return "cannot be read"
    if not unapplied:
        return "all applied"
    missing.append(
        f"The database lacks {unapplied} migration{'s' if unapplied != 1 else ''}: "
        "run `pipetower migrate` (`pipetower serve` does it by itself)."
    )
    return f"{unapplied} not applied yet"


def _google_summary(missing: list[str], *, database_ok: bool) -> str:
    provider: dict[str, Any] = settings.SOCIALACCOUNT_PROVIDERS.get("google") or {}
    apps: list[dict[str, Any]] = provider.get("APPS") or []
    if apps:
        if apps[0].get("client_id") and apps[0].get("secret"):
            return "configured (GOOGLE_CLIENT_ID)"
        missing.append("GOOGLE_CLIENT_ID is set but GOOGLE_CLIENT_SECRET is not.")
        return "incomplete"
    if database_ok:
        from allauth.socialaccount.models import SocialApp

        try:
            if SocialApp.objects.filter(provider="google").exists():
                return "configured (in the back office)"
        except DatabaseError:  # not migrated yet
            pass
    return "not configured (set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)"


def _signup_summary() -> str:
    return {
        "open": "open: anyone can create an account",
        "invite": "invite: only people with an invitation can create an account",
        "closed": "closed: nobody can create an account",
    }.get(settings.SIGNUP_MODE, settings.SIGNUP_MODE)


class Command(BaseCommand):
    help = (
        "Show what Pipetower is configured with and what is missing, then run the system "
        "checks. Exits non-zero when something needs fixing."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        pass

    def handle(self, *args: Any, **options: Any) -> None:
        lines, missing, database_ok = configuration_report()
        width = max(len(label) for label, _ in lines)
        self.stdout.write("Pipetower configuration:")
        for label, value in lines:
            self.stdout.write(f"  {label:<{width}}  {value}")

        messages: list[CheckMessage] = []
        if not database_ok:
            self.stdout.write("System checks: skipped, the database does not answer.")
        else:
            messages = check_messages(deploy=settings.PRODUCTION)
            if not messages:
                self.stdout.write("System checks: no issues.")
            for message in messages:
                kind = "Error" if message.is_serious() else "Warning"
                self.stdout.write(f"System check {kind.lower()}: {check_message_text(message)}")
        errors = [m for m in messages if m.is_serious()]
        if missing:
            self.stdout.write("Missing or wrong:")
            for item in missing:
                self.stdout.write(f"  - {item}")
        problems = len(missing) + len(errors)
        if problems:
            raise CommandError(
                f"{problems} {'problem needs' if problems == 1 else 'problems need'} fixing "
                "before Pipetower can run properly."
            )
        self.stdout.write(self.style.SUCCESS("Everything Pipetower needs is in place."))
