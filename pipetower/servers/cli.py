"""`pipetower servers import`: add many servers from an inventory through the API.

    pipetower servers import hosts.ini --default-user deploy --dry-run [--json]

A client of the REST API only (`servers_import`), like the other commands of
pipetower/api/cli.py (the login, or PIPETOWER_URL and PIPETOWER_TOKEN). It
prints every line of the inventory with what is wrong with it; --dry-run only
checks. Exit status: 0 every line is fine (and imported, without --dry-run),
1 some lines have errors (the others were imported, without --dry-run), 2 the
request was refused (unreadable file, no permission, nothing to import),
4 Pipetower could not be reached.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pipetower.actions.cli import Client, CliError

FORMATS = ("auto", "ansible_ini", "ansible_yaml", "ssh_config", "csv")
EXIT_OK, EXIT_LINE_ERRORS = 0, 1
MAX_FILE_BYTES = 1_000_000


def add_import_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """`pipetower servers import`, beside `list` and `add` (pipetower/api/cli.py)."""
    imp = sub.add_parser(
        "import",
        help="Add servers from an Ansible inventory (INI or YAML), an ssh_config or CSV.",
        description="Add servers from an Ansible inventory (INI or YAML; groups become tags), "
        "an OpenSSH ssh_config, or CSV with the header name,address,port,user,tags. Lines "
        "with errors are listed and left out.",
    )
    imp.add_argument("file", help="The inventory file, or - to read it from standard input.")
    imp.add_argument("--format", choices=FORMATS, default="auto", help="Default: detect it.")
    imp.add_argument(
        "--default-user", default="", help="SSH user for servers the inventory gives none."
    )
    imp.add_argument("--dry-run", action="store_true", help="Only check every line; add nothing.")
    common(imp)


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read(MAX_FILE_BYTES + 1)
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text; save it as UTF-8 and try again.") from None


def _report(answer: dict[str, Any], out: TextIO) -> None:
    for row in answer["rows"]:
        address = f"{row['user']}@{row['host']}:{row['port']}" if row["user"] else row["host"]
        tags = " ".join(f"#{tag}" for tag in row["tags"])
        state = "ok" if row["ok"] else "error: " + " ".join(row["errors"])
        out.write(
            f"line {row['line']}: {row['name']} {address} {tags} — {state}\n".replace("  ", " ")
        )
    for note in answer["notes"]:
        out.write(f"line {note['line']}: skipped — {note['message']}\n")


def cmd_import(args: argparse.Namespace, client: Client, team: str, out: Any) -> int:
    """Send the file to `servers_import`, print every line and what is wrong with it."""
    answer = client.call(
        "POST",
        f"/teams/{team}/servers/import",
        {
            "text": _read(args.file),
            "format": args.format,
            "default_user": args.default_user,
            "dry_run": args.dry_run,
        },
    )
    rows = answer["rows"]
    good = sum(1 for row in rows if row["ok"])
    bad = len(rows) - good

    def text(answer: dict[str, Any]) -> str:
        lines = io.StringIO()
        _report(answer, lines)
        return lines.getvalue()

    out.data(answer, text)
    left_out = f"; {bad} line{'s' if bad != 1 else ''} with errors" if bad else ""
    if args.dry_run:
        out.note(f"Dry run: {good} of {len(rows)} servers can be imported{left_out}.")
    else:
        created = len(answer["created"])
        page = f"{client.base.removesuffix('/api/v1')}/teams/{team}/servers/host-keys/"
        plural = "s" if created != 1 else ""
        skipped = f"{left_out} left out" if bad else ""
        out.note(
            f"Imported {created} server{plural}{skipped}. Compare and pin their host keys: {page}"
        )
    return EXIT_LINE_ERRORS if bad else EXIT_OK
