"""`pipetower scheduler`: Celery beat, which sends the periodic tasks.

Run exactly one per deployment: two would send every periodic task twice.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.core.management.commands._base import (
    add_skip_checks_argument,
    connections_release,
    log_level,
    refuse_to_start_on_errors,
)


def scheduler_argv() -> list[str]:
    return [
        "-q",  # no Celery banner
        "beat",
        f"--loglevel={log_level()}",
        f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
    ]


class Command(BaseCommand):
    help = "Run the Pipetower scheduler (Celery beat). Run one per deployment."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_skip_checks_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from pipetower.config.celery import app

        if not options["skip_checks"]:
            refuse_to_start_on_errors(self, what="scheduler")
        connections_release()
        code: int | None = app.start(scheduler_argv())
        if code:
            raise CommandError(f"The scheduler stopped with exit code {code}.", returncode=code)
