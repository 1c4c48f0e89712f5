"""Pieces shared by Pipetower's management commands (Django skips `_` modules).

- `refuse_to_start_on_errors()`: the gate in front of `serve`, `web`, `worker`
  and `scheduler`: the database must answer and the system checks (the
  master-key check among them) must pass, or the process does not start.
- `database_problem()`: a quick, time-bounded "can we reach the database?"
  that does not wait for the connection pool's long timeout.
- `read_password()`: a password from a prompt (asked twice) or from stdin.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from django.core import checks
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, connections

DB_PROBE_TIMEOUT_SECONDS = 5

_VENDORS = {
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "oracle": "Oracle",
}


def database_summary(settings_dict: Mapping[str, Any]) -> str:
    """Vendor and location of a database, never its password."""
    engine = str(settings_dict.get("ENGINE", ""))
    vendor = _VENDORS.get(engine.rsplit(".", 1)[-1].removesuffix("3"), engine)
    name = str(settings_dict.get("NAME") or "")
    if vendor == "SQLite":
        return f"SQLite, file {name}"
    host = str(settings_dict.get("HOST") or "localhost")
    port = str(settings_dict.get("PORT") or "")
    user = str(settings_dict.get("USER") or "")
    where = f"{host}:{port}" if port else host
    who = f" as {user}" if user else ""
    return f"{vendor}, database {name!r} on {where}{who}"


def url_redacted(url: str) -> str:
    """`url` with any password replaced by ***, for showing to people."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_problem() -> str | None:
    """Why the database cannot be reached, or None when it answers.

    PostgreSQL is probed with a direct connection and a short timeout: going
    through the connection pool would wait for the pool's own (long) timeout
    before saying anything.
    """
    where = database_summary(connection.settings_dict)
    try:
        if connection.vendor == "postgresql":
            import psycopg

            params = connection.get_connection_params()
            params.pop("context", None)
            params.pop("cursor_factory", None)
            params["connect_timeout"] = DB_PROBE_TIMEOUT_SECONDS
            with psycopg.connect(**params) as probe:
                probe.execute("SELECT 1")
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not reachable"; say why
        detail = " ".join(str(exc).split()) or exc.__class__.__name__
        return f"cannot reach the database ({where}): {detail}"
    return None


def check_messages(*, deploy: bool = False) -> list[checks.CheckMessage]:
    """Django's system checks (Pipetower's own included), minus silenced ones."""
    try:
        found = checks.run_checks(include_deployment_checks=deploy)
    except DatabaseError as exc:  # a check that needs a table the database lacks
        return [checks.Error(f"A system check could not read the database: {exc}")]
    return [m for m in found if not m.is_silenced()]


def check_message_text(message: checks.CheckMessage) -> str:
    text = str(message.msg)
    if message.id:
        text += f" [{message.id}]"
    if message.hint:
        text += f"\n      Hint: {message.hint}"
    return text


def refuse_to_start_on_errors(command: BaseCommand, *, what: str) -> None:
    """Raise CommandError unless the database answers and no system check fails."""
    problem = database_problem()
    if problem:
        raise CommandError(f"Pipetower will not start the {what}: {problem}")
    messages = check_messages()
    for message in messages:
        if not message.is_serious():
            command.stderr.write(f"Warning: {check_message_text(message)}")
    errors = [m for m in messages if m.is_serious()]
    if errors:
        raise CommandError(
            f"Pipetower will not start the {what} until "
            + ("this is" if len(errors) == 1 else "these are")
            + " fixed:\n"
            + "\n".join(f"  - {check_message_text(e)}" for e in errors)
        )


def connections_release() -> None:
    """Close every database connection and pool before this process forks or execs.

    Connections and pool threads do not survive a fork; the processes that
    serve requests and run tasks open their own.
    """
    for conn in connections.all(initialized_only=True):
        conn.close()
        close_pool = getattr(conn, "close_pool", None)
        if close_pool is not None:
            close_pool()


def add_skip_checks_argument(parser: Any) -> None:
    parser.add_argument(
        "--skip-checks",
        action="store_true",
        help="Skip the start-up preparation and checks (`pipetower serve` has done them).",
    )


def read_password(
    *,
    from_stdin: bool,
    stdin: TextIO | None = None,
    prompt: str = "Password",
) -> str:
    """A password read from stdin (one line) or prompted for twice on the terminal."""
    stream = stdin if stdin is not None else sys.stdin
    if from_stdin:
        line = stream.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandError("--password-stdin was given but standard input held no password.")
        return password
    if not _is_terminal(stream):
        raise CommandError(
            "There is no terminal to ask for a password on. "
            "Pipe the password in with --password-stdin."
        )
    first = getpass.getpass(f"{prompt}: ")
    if not first:
        raise CommandError("The password cannot be empty.")
    second = getpass.getpass(f"{prompt} (again): ")
    if first != second:
        raise CommandError("The two passwords do not match; nothing was changed.")
    return first


def _is_terminal(stream: TextIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def port_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, not {value!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 1 and 65535, not {number}")
    return number


def log_level() -> str:
    """The root log level from PIPETOWER_LOG_LEVEL, upper case (INFO by default)."""
    from django.conf import settings

    logging_config: dict[str, Any] = settings.LOGGING
    return str(logging_config.get("root", {}).get("level", "INFO")).upper()


def quiet_root_warning() -> None:
    """Celery warns at length when its worker runs as root (as in a container or a
    first try on a laptop). Pipetower never accepts pickled messages, which is what
    the warning is about, so the worker starts without it."""
    import warnings

    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
