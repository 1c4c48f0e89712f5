"""`pipetower web`: the web server (granian); HTTPS with --tls-cert/--tls-key.

Granian serves `pipetower.config.asgi:application`: Django's pages and API on a
thread pool per process, live output held on the event loop (no thread per
viewer). By default one process per CPU core (`PIPETOWER_WEB_PROCESSES`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipetower.core.management.commands._base import (
    add_skip_checks_argument,
    connections_release,
    log_level,
    port_number,
    positive,
    refuse_to_start_on_errors,
)

ASGI_TARGET = "pipetower.config.asgi:application"


class Command(BaseCommand):
    help = "Run the Pipetower web server (granian): pages, API, live output and /healthz."
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
            "--workers",
            type=positive,
            default=None,
            help="Web processes (default PIPETOWER_WEB_PROCESSES, else one per CPU core).",
        )
        parser.add_argument(
            "--threads",
            type=positive,
            default=None,
            help="Request threads per web process (default: 2 per CPU core, plus 1).",
        )
        add_tls_arguments(parser)
        add_skip_checks_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from granian import Granian
        from granian.constants import Interfaces

        port: int = options["port"] or settings.PORT
        tls = tls_files(options)
        if not options["skip_checks"]:
            refuse_to_start_on_errors(self, what="web server")
            # Compressed copies of the static files, served by WhiteNoise
            # (quick when they are up to date; `pipetower serve` did it already).
            call_command("collectstatic", interactive=False, verbosity=0, skip_checks=True)
        # Should a worker load the settings afresh, it sees the same port.
        os.environ["PIPETOWER_PORT"] = str(port)
        # Django's request threads per process (read by pipetower/config/asgi.py).
        os.environ["PIPETOWER_WEB_THREADS"] = str(options["threads"] or default_threads())
        connections_release()
        server = Granian(
            ASGI_TARGET,
            address=options["host"],
            port=port,
            interface=Interfaces.ASGI,
            websockets=False,  # none are served; saying so avoids a notice at every start
            workers=options["workers"] or web_processes(),
            log_level=_granian_log_level(),
            ssl_cert=tls[0] if tls else None,
            ssl_key=tls[1] if tls else None,
        )
        try:
            server.serve()
        except OSError as exc:
            raise CommandError(
                f"The web server could not listen on {options['host']}:{port}: {exc}"
            ) from exc


def add_tls_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        default=None,
        help="Serve HTTPS with this certificate (PEM, with its chain); needs --tls-key.",
    )
    parser.add_argument(
        "--tls-key",
        metavar="FILE",
        default=None,
        help="The certificate's private key (PEM, PKCS#8, not encrypted).",
    )


def tls_files(options: dict[str, Any]) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with, checked; None for plain HTTP."""
    cert, key = options.get("tls_cert"), options.get("tls_key")
    if not cert and not key:
        return None
    if not (cert and key):
        raise CommandError("To serve HTTPS give both --tls-cert and --tls-key.")
    paths = Path(cert).expanduser(), Path(key).expanduser()
    for label, path in zip(("certificate", "key"), paths, strict=True):
        if not path.is_file():
            raise CommandError(f"The TLS {label} file {path} does not exist.")
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise CommandError(f"The TLS {label} file {path} cannot be read: {exc}") from exc
        if "-----BEGIN" not in text:
            raise CommandError(f"The TLS {label} file {path} is not in PEM format.")
    key_text = paths[1].read_text(errors="replace")
    if "-----BEGIN PRIVATE KEY-----" not in key_text:
        raise CommandError(
            f"The TLS key {paths[1]} must be an unencrypted PKCS#8 key "
            "(-----BEGIN PRIVATE KEY-----). Convert it with: "
            "openssl pkcs8 -topk8 -nocrypt -in OLD.key -out NEW.key"
        )
    if "-----BEGIN CERTIFICATE-----" not in paths[0].read_text(errors="replace"):
        raise CommandError(f"The TLS certificate file {paths[0]} holds no certificate.")
    return paths


def web_processes() -> int:
    """PIPETOWER_WEB_PROCESSES, else one web process per CPU core."""
    return int(getattr(settings, "WEB_PROCESSES", 0)) or (os.cpu_count() or 1)


def default_threads() -> int:
    """Granian's advice for WSGI: beyond 2 threads per core, plus 1, threads only contend."""
    return 2 * (os.cpu_count() or 1) + 1


def _granian_log_level() -> Any:
    from granian.log import LogLevels

    wanted = log_level().lower()
    return LogLevels(wanted) if wanted in LogLevels.__members__ else LogLevels.info
