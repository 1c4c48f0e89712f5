"""`pipetower serve`: all of Pipetower in one command (the embedded default).

Prepares the data directory (the settings create it and its secrets), migrates
the database, collects static files, checks the configuration, then runs the
web server, two workers (one for runs, one for mail and housekeeping) and the
scheduler as child processes until Ctrl-C, restarting one that dies.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.core.management.commands._base import (
    connections_release,
    port_number,
    positive,
    refuse_to_start_on_errors,
)
from pipetower.core.management.commands.web import add_tls_arguments, tls_files
from pipetower.core.serve import Child, Supervisor, local_url, port_answers, port_is_free

WEB_START_TIMEOUT_SECONDS = 60.0
# Task processes of the worker for mail and housekeeping (`--concurrency` sizes
# the run worker): two, so one slow export does not hold up a sign-in alert.
SMALL_WORKER_CONCURRENCY = 2


def pipetower_argv(*args: str) -> list[str]:
    """How to run a `pipetower` subcommand with this same interpreter."""
    return [sys.executable, "-m", "pipetower.cli", *args]


class Command(BaseCommand):
    help = (
        "Run Pipetower in one command: the web server, two workers and the scheduler, "
        "stopped together with Ctrl-C."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface).",
        )
        parser.add_argument(
            "--port",
            type=port_number,
            default=None,
            help="Port to listen on (default PIPETOWER_PORT, else 8000).",
        )
        parser.add_argument(
            "--concurrency",
            type=positive,
            default=2,
            help="Task processes of the worker for runs (default 2).",
        )
        parser.add_argument(
            "--web-processes",
            type=positive,
            default=None,
            help="Web processes (default PIPETOWER_WEB_PROCESSES, else one per CPU core).",
        )

        add_tls_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        port: int = options["port"] or settings.PORT
        tls = tls_files(options)
        tls_argv = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
        if not port_is_free(host, port):
            raise CommandError(
                f"Port {port} on {host} is already in use. Stop whatever is using it, "
                "or choose another port with --port or PIPETOWER_PORT."
            )
        refuse_to_start_on_errors(self, what="web server, worker and scheduler")
        self.stdout.write("Preparing the database and static files…")
        call_command("migrate", interactive=False, verbosity=0, skip_checks=True)
        call_command("collectstatic", interactive=False, verbosity=0, skip_checks=True)
        connections_release()

        env = dict(os.environ)
        env["PIPETOWER_PORT"] = str(port)
        env["PYTHONUNBUFFERED"] = "1"  # the children's lines appear as they are written
        # One terminal shows every child: keep routine task lines out of it, so the
        # emails printed in the embedded default stay easy to find.
        env.setdefault("PIPETOWER_LOG_LEVEL", "WARNING")
        supervisor = Supervisor(
            [
                Child(
                    "web server",
                    pipetower_argv(
                        "web",
                        "--host",
                        host,
                        "--port",
                        str(port),
                        *tls_argv,
                        "--skip-checks",
                        *(
                            ["--workers", str(options["web_processes"])]
                            if options["web_processes"]
                            else []
                        ),
                    ),
                ),
                # Two workers, so that runs (long) never hold up mail and the
                # housekeeping tasks (heartbeat, reaper, outbox sweep).
                Child(
                    "run worker",
                    pipetower_argv(
                        "worker",
                        "--queues",
                        settings.QUEUE_RUNS,
                        "--concurrency",
                        str(options["concurrency"]),
                        "--hostname",
                        "runs@%h",
                        "--skip-checks",
                    ),
                ),
                Child(
                    "worker",
                    pipetower_argv(
                        "worker",
                        "--queues",
                        f"{settings.QUEUE_MAIL},{settings.QUEUE_HOUSEKEEPING}",
                        "--concurrency",
                        str(SMALL_WORKER_CONCURRENCY),
                        "--hostname",
                        "tasks@%h",
                        "--skip-checks",
                    ),
                ),
                Child("scheduler", pipetower_argv("scheduler", "--skip-checks")),
            ],
            env=env,
            out=sys.stdout,
            err=sys.stderr,
        )

        def announce(running: Supervisor) -> None:
            if not running.wait_for(
                lambda: port_answers(host, port), timeout=WEB_START_TIMEOUT_SECONDS
            ):
                if running.stop_signal is None:
                    self.stderr.write(
                        f"The web server did not answer on port {port} within "
                        f"{WEB_START_TIMEOUT_SECONDS:.0f} seconds; still waiting."
                    )
                return
            url = local_url(host, port)
            if tls:
                url = "https://" + url.removeprefix("http://")
            self.stdout.write(self.style.SUCCESS(f"Pipetower is running at {url}"))
            self.stdout.write(f"  Data directory: {settings.DATA_DIR}")
            if settings.EMAIL_MODE == "console":
                self.stdout.write(
                    "  Email is not sent in this mode: every message is printed here and "
                    f"saved in {settings.MAIL_DIR}{os.sep}"
                )
            self.stdout.write("  Press Ctrl-C to stop.")
            sys.stdout.flush()

        code = supervisor.run(on_started=announce)
        if code:
            raise CommandError(
                "Pipetower stopped because one of its processes failed; see the messages above.",
                returncode=code,
            )
