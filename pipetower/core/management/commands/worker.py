"""`pipetower worker`: a Celery worker that runs Pipetower's tasks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.core.management.commands._base import (
    add_skip_checks_argument,
    connections_release,
    log_level,
    positive,
    quiet_root_warning,
    refuse_to_start_on_errors,
)


def worker_argv(
    *, concurrency: int | None, queues: str | None = None, hostname: str | None = None
) -> list[str]:
    """The `celery worker` arguments for this configuration (`-q`: no Celery banner;
    Pipetower says itself where it runs)."""
    argv = ["-q", "worker", f"--loglevel={log_level()}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    argv.append(f"--queues={queues or ','.join(settings.TASK_QUEUES)}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    if not settings.BROKER_URL:
        # The embedded broker is a folder of files: worker-to-worker chatter
        # (start-up sync, gossip, event heartbeats) would only add files to it.
        # Remote control (inspect, ping, revoke) stays on.
        argv += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    return argv


class Command(BaseCommand):
    help = "Run a Celery worker for Pipetower (start several in a scale-out deployment)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=positive,
            default=None,
            help="Task processes (default: one per CPU core).",
        )
        parser.add_argument(
            "--queues",
            default=None,
            help=(
                "Comma-separated queues to take tasks from: runs, mail, housekeeping "
                "(default: all three)."
            ),
        )
        parser.add_argument(
            "--hostname",
            default=None,
            help="Worker name, e.g. worker1@%%h (default: celery@<host name>).",
        )
        add_skip_checks_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from pipetower.config.celery import app

        if not options["skip_checks"]:
            refuse_to_start_on_errors(self, what="worker")
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.stderr.write(
                "Warning: PIPETOWER_TASKS_EAGER is on, so the web process runs tasks itself "
                "and this worker will receive none."
            )
        connections_release()
        quiet_root_warning()
        code: int | None = app.worker_main(
            worker_argv(
                concurrency=options["concurrency"],
                queues=options["queues"],
                hostname=options["hostname"],
            )
        )
        if code:
            raise CommandError(f"The worker stopped with exit code {code}.", returncode=code)
