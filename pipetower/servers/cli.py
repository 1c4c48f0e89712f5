"""`pipetower servers import`: add many servers from an inventory through the API.

    PIPETOWER_URL=https://pipetower.example.com PIPETOWER_TOKEN=ptk_... \\
        pipetower servers import hosts.ini --default-user deploy --dry-run

A client of the REST API only (`servers_import`), like `pipetower run`. It
prints every line of the inventory with what is wrong with it; --dry-run only
checks. Exit status: 0 every line is fine (and imported, without --dry-run),
1 some lines have errors (the others were imported, without --dry-run), 2 the
request was refused (unreadable file, no permission, nothing to import),
4 Pipetower could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pipetower.actions.cli import EXIT_REFUSED, Client, CliError, _team

FORMATS = ("auto", "ansible_ini", "ansible_yaml", "ssh_config", "csv")
EXIT_OK, EXIT_LINE_ERRORS = 0, 1
MAX_FILE_BYTES = 1_000_000


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pipetower servers",
        description="Manage servers through the Pipetower API. Needs PIPETOWER_TOKEN "
        "(an API token with write scope, of a team admin) and PIPETOWER_URL.",
    )
    commands = p.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
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
    imp.add_argument("--team", default=os.environ.get("PIPETOWER_TEAM", ""), help="Team slug.")
    imp.add_argument("--url", default=os.environ.get("PIPETOWER_URL", "http://localhost:8000"))
    return p


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


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(list(argv or []))
    token = os.environ.get("PIPETOWER_TOKEN", "").strip()
    if not token:
        err.write(
            "pipetower servers: set PIPETOWER_TOKEN to an API token with write scope "
            "(create one under API tokens).\n"
        )
        return EXIT_REFUSED
    client = Client(args.url, token, notes=err)
    try:
        text = _read(args.file)
        team = _team(client, args.team)
        answer = client.call(
            "POST",
            f"/teams/{team}/servers/import",
            {
                "text": text,
                "format": args.format,
                "default_user": args.default_user,
                "dry_run": args.dry_run,
            },
        )
    except CliError as exc:
        err.write(f"pipetower servers: {exc.message}\n")
        return exc.code
    _report(answer, out)
    rows = answer["rows"]
    good = sum(1 for row in rows if row["ok"])
    bad = len(rows) - good
    left_out = f"; {bad} line{'s' if bad != 1 else ''} with errors" if bad else ""
    if args.dry_run:
        err.write(f"Dry run: {good} of {len(rows)} servers can be imported{left_out}.\n")
    else:
        created = len(answer["created"])
        page = f"{args.url.rstrip('/')}/teams/{team}/servers/host-keys/"
        plural = "s" if created != 1 else ""
        skipped = f"{left_out} left out" if bad else ""
        err.write(
            f"Imported {created} server{plural}{skipped}. Compare and pin their host keys: {page}\n"
        )
    return EXIT_LINE_ERRORS if bad else EXIT_OK
