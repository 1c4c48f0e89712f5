"""The `pipetower` command: run Pipetower and look after it.

Most subcommands are Django management commands in `pipetower.core`
(`pipetower web` runs the `web` command); this module dispatches to them,
turns configuration errors into one readable line, and answers `keygen`
without loading the settings (production mode needs the key it prints).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

PROG = "pipetower"

# pipetower subcommand -> (Django command, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "Run everything in one command: web server, worker and scheduler."),
    "web": ("web", "Run the web server (granian, WSGI)."),
    "worker": ("worker", "Run a task worker (Celery)."),
    "scheduler": ("scheduler", "Run the scheduler (Celery beat); exactly one per deployment."),
    "migrate": ("migrate", "Create or update the database tables."),
    "check": ("configcheck", "Show what is configured and what is missing; run system checks."),
    "createadmin": ("createadmin", "Create a staff superuser for the back office (/admin/)."),
    "createuser": ("createuser", "Create a user whose email address is already verified."),
    "token": ("token", "Create an API token: token create --email E --scope read|write."),
    "rotate-keys": ("rotate_keys", "Re-encrypt every stored secret under the first master key."),
    "import-export": (
        "import_export",
        "Restore an export's teams, servers and actions: import-export FILE --email E.",
    ),
    "backup": ("backup", "Back up the embedded default (SQLite, secrets, files) while it runs."),
    "restore": ("restore", "Restore a backup archive: restore FILE [--force] (Pipetower stopped)."),
    "privacy": (
        "privacy",
        "Erasure: privacy purge (what the scheduler runs), privacy scan --email E --name N.",
    ),
    "keygen": ("keygen", "Print a new master key for PIPETOWER_MASTER_KEYS."),
    "run": ("", "Run an action through the API: run ACTION --target NAME|tag:T --follow."),
    "login": ("", "Store an API token for a Pipetower: login URL (docs/cli.md)."),
    "servers": (
        "",
        "Through the API: servers list | add NAME --host H --user U | import FILE [--dry-run].",
    ),
    "actions": ("", "Through the API: actions list | show NAME | run NAME --target T --follow."),
    "runs": ("", "Through the API: runs list | show ID | cancel ID | rerun ID."),
    "schedules": ("", "Through the API: schedules list | add ACTION --name N --cron C."),
    "export": ("", "Your data export through the API: export request | download [ID]."),
    "manage": ("", "Run any Django management command: pipetower manage <command> ..."),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"usage: {PROG} <command> [options]",
        "",
        "Pipetower: run saved shell scripts on your servers over SSH.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()),
        "",
        f"`{PROG} <command> --help` explains a command's options.",
        "Configuration comes from environment variables; see the README.",
    ]
    return "\n".join(lines)


API_COMMANDS = frozenset({"login", "servers", "actions", "runs", "schedules", "export"})
MINIMUM_PYTHON = (3, 12)


def unsupported_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> str | None:
    """A clear refusal on a Python older than Pipetower supports (Django 6 needs 3.12)."""
    if tuple(version[:2]) >= MINIMUM_PYTHON:
        return None
    found = ".".join(str(part) for part in version)
    return (
        f"Pipetower needs Python {MINIMUM_PYTHON[0]}.{MINIMUM_PYTHON[1]} or newer; this is "
        f"Python {found}. Install Python 3.12 and create the virtual environment with it "
        "(python3.12 -m venv …)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    problem = unsupported_python()
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    if name in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if name == "--version":
        from importlib.metadata import version

        print(f"{PROG} {version('pipetower')}")
        return 0
    if name not in COMMANDS:
        print(
            f"{PROG}: there is no command {name!r}. Run `{PROG} --help` to see the commands.",
            file=sys.stderr,
        )
        return 2
    if name == "run":  # an API client: no local settings needed (pipetower/actions/cli.py)
        from pipetower.actions.cli import main as run_main

        return run_main(rest)
    if name in API_COMMANDS:  # API clients too (pipetower/api/cli.py)
        from pipetower.api.cli import main as api_main

        return api_main(name, rest)
    if name == "keygen" and not rest:
        # No settings needed: production mode refuses to load them without a
        # master key, and this is how one gets a master key.
        from pipetower.config.env import new_master_key

        print(new_master_key())
        return 0

    if name in {"serve", "web"}:
        _port_to_environment(rest)
    problem = _setup()
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    try:
        _run(name, rest)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return 130
    return 0


def _option(rest: list[str], name: str) -> str | None:
    """The value of `--name V` or `--name=V` among the arguments (last one wins)."""
    value = None
    for index, arg in enumerate(rest):
        if arg == name and index + 1 < len(rest):
            value = rest[index + 1]
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
    return value


def _port_to_environment(rest: list[str]) -> None:
    """`--port N` also sets PIPETOWER_PORT, and without PIPETOWER_BASE_URL the base URL
    becomes the address the command prints (host, port, https with a certificate), so
    the settings and every emailed link agree with where Pipetower listens. Bad values
    are left for the command's own option parsing to report."""
    port = _option(rest, "--port")
    if port is not None and port.isdigit():
        os.environ["PIPETOWER_PORT"] = port
    if os.environ.get("PIPETOWER_BASE_URL"):
        return
    host = _option(rest, "--host")
    tls = _option(rest, "--tls-cert")
    if host is None and tls is None:
        return  # the settings' default (http://localhost:<port>) is what is printed
    from pipetower.core.serve import local_url

    try:
        port_number = int(os.environ.get("PIPETOWER_PORT") or 8000)
    except ValueError:
        return  # the settings report the bad PIPETOWER_PORT
    url = local_url(host or "127.0.0.1", port_number)
    if tls:
        url = "https://" + url.removeprefix("http://")
    os.environ["PIPETOWER_BASE_URL"] = url


def _setup() -> str | None:
    """Load the settings and apps; a readable problem when the configuration is wrong."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipetower.config.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    from pipetower.config.env import ConfigurationError

    try:
        django.setup()
    except (ConfigurationError, ImproperlyConfigured) as exc:
        return str(exc)
    except ValueError as exc:  # e.g. a DATABASE_URL scheme or a log level Django cannot use
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        return f"the configuration is not valid: {exc}{cause}"
    return None


def _run(name: str, rest: list[str]) -> None:
    from django.core.management import execute_from_command_line, get_commands, load_command_class

    django_name = COMMANDS[name][0]
    if name == "manage":
        execute_from_command_line([f"{PROG} manage", *rest])
        return
    app_name = get_commands()[django_name]
    command = load_command_class(app_name, django_name)
    command.run_from_argv([PROG, name, *rest])


if __name__ == "__main__":
    sys.exit(main())
