"""The API's command line: `pipetower login`, `servers`, `actions`, `runs`,
`schedules` and `export`.

    pipetower login https://pipetower.example.com      # asks for a token, checks it, stores it
    pipetower servers list --json
    pipetower actions run deploy --target tag:web --param version=1.4 --follow
    pipetower runs show 42

A client of the REST API only, like `pipetower run` (pipetower/actions/cli.py),
whose Client (waiting out 429s) it uses. The token and URL come from
PIPETOWER_TOKEN / PIPETOWER_URL when set, else from the file `login` wrote:
$XDG_CONFIG_HOME/pipetower/config.json (~/.config/... by default), mode 0600.

`--json` prints the API's answer as JSON instead of text. Exit status: 0 done
(or a run that succeeded), 1 a run that failed, 2 the request was refused or
the command is wrong, 3 a run that was cancelled, 4 Pipetower could not be
reached, 5 a run still queued or running (`runs show`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from pipetower.actions.cli import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_SUCCEEDED,
    EXIT_UNREACHABLE,
    Client,
    CliError,
    _action,
    _error_message,
    _params,
    _team,
    follow,
)
from pipetower.servers.cli import add_import_parser, cmd_import

EXIT_RUNNING = 5
RUN_EXIT = {"succeeded": EXIT_SUCCEEDED, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
COMMANDS = ("login", "servers", "actions", "runs", "schedules", "export")


# --- configuration -------------------------------------------------------------------


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pipetower" / "config.json"


def config_load() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def config_save(data: dict[str, str]) -> Path:
    """Write the file readable by its owner only (0600, in a 0700 folder), never wider."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(path, 0o600)
    return path


def credentials() -> tuple[str, str]:
    """(url, token): the environment first, then the file `pipetower login` wrote."""
    stored = config_load()
    url = os.environ.get("PIPETOWER_URL") or stored.get("url") or "http://localhost:8000"
    token = (os.environ.get("PIPETOWER_TOKEN") or stored.get("token") or "").strip()
    if not token:
        raise CliError(
            "not logged in: run `pipetower login URL` (or set PIPETOWER_TOKEN and PIPETOWER_URL)."
        )
    return url, token


# --- output ----------------------------------------------------------------------------


class Out:
    def __init__(self, as_json: bool, out: TextIO, err: TextIO) -> None:
        self.as_json, self.out, self.err = as_json, out, err

    def data(self, value: Any, text: Callable[[Any], str]) -> None:
        self.out.write(json.dumps(value, indent=2) + "\n" if self.as_json else text(value))
        self.out.flush()

    def note(self, message: str) -> None:
        self.err.write(message + "\n")
        self.err.flush()


def _table(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def _all(client: Client, path: str, **query: Any) -> list[dict[str, Any]]:
    """Every item of a list, page after page."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = client.call("GET", path, page=page, page_size=100, **query)
        items += answer["items"]
        if not answer["next"]:
            return items
        page += 1


# --- commands --------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, out: Out) -> int:
    token = (args.token or os.environ.get("PIPETOWER_TOKEN") or "").strip()
    if not token:
        token = getpass.getpass("API token (ptk_…, from the API tokens page): ").strip()
    client = Client(args.url, token, notes=out.err)
    me = client.call("GET", "/me")
    data = {"url": args.url.rstrip("/"), "token": token}
    if args.team:
        client.call("GET", f"/teams/{args.team}")
        data["team"] = args.team
    path = config_save(data)
    out.data(
        {"url": data["url"], "email": me["email"], "config": str(path)},
        lambda d: f"Logged in to {d['url']} as {d['email']}; token stored in {d['config']}.\n",
    )
    return EXIT_SUCCEEDED


def _server_text(items: list[dict[str, Any]]) -> str:
    if not items:
        return "No servers yet. Add one with `pipetower servers add`.\n"
    rows = [["ID", "NAME", "ADDRESS", "TAGS", "PINNED", "LAST CHECK"]]
    for s in items:
        check = s["last_check"]
        last = "never" if check["ok"] is None else ("ok" if check["ok"] else check["error"])
        pinned = "yes" if s["host_key"]["pinned"] else "no"
        rows.append([str(s["id"]), s["name"], s["address"], ",".join(s["tags"]), pinned, last])
    return _table(rows)


def cmd_servers(args: argparse.Namespace, client: Client, team: str, out: Out) -> int:
    if args.action == "import":
        return cmd_import(args, client, team, out)
    if args.action == "list":
        items = _all(client, f"/teams/{team}/servers")
        out.data(items, _server_text)
        return EXIT_SUCCEEDED
    body = {
        "name": args.name,
        "host": args.host,
        "port": args.port,
        "username": args.user,
        "tags": args.tag,
    }
    server = client.call("POST", f"/teams/{team}/servers", body)
    out.data(
        server,
        lambda s: (
            f"Added server #{s['id']} {s['name']} ({s['address']}). Test the connection "
            "and pin its host key on its page.\n"
        ),
    )
    return EXIT_SUCCEEDED


def _action_text(action: dict[str, Any]) -> str:
    params = ", ".join(
        f"{p['name']} ({p['kind']}{', required' if p['required'] else ''})"
        for p in action["parameters"]
    )
    return (
        f"#{action['id']} {action['name']} (version {action['current_version']})\n"
        f"{action['description']}\n".lstrip("\n")
        + f"parameters: {params or 'none'}\n"
        + f"timeout: {action['timeout_seconds']} s, concurrency: {action['concurrency']}\n"
        + "script:\n"
        + "".join(f"  {line}\n" for line in action["script"].splitlines())
    )


def cmd_actions(args: argparse.Namespace, client: Client, team: str, out: Out) -> int:
    if args.action == "list":
        items = _all(client, f"/teams/{team}/actions")
        out.data(
            items,
            lambda xs: (
                _table(
                    [["ID", "NAME", "VERSION", "DESCRIPTION"]]
                    + [
                        [str(a["id"]), a["name"], str(a["current_version"]), a["description"]]
                        for a in xs
                    ]
                )
                if xs
                else "No actions yet.\n"
            ),
        )
        return EXIT_SUCCEEDED
    action = _action(client, team, args.name)
    if args.action == "show":
        out.data(action, _action_text)
        return EXIT_SUCCEEDED
    run = client.call(
        "POST",
        f"/teams/{team}/actions/{action['id']}/runs",
        {
            "targets": args.target,
            "params": _params(args.param),
            "default_targets": args.default_targets,
            "default_params": args.default_params,
        },
    )
    return _started(client, team, run, args, out)


def _started(
    client: Client, team: str, run: dict[str, Any], args: argparse.Namespace, out: Out
) -> int:
    count = len(run["targets"])
    out.note(
        f"Run #{run['id']} of {run['action_name']} started on {count} "
        f"server{'s' if count != 1 else ''}."
    )
    if not args.follow:
        out.data(run, lambda r: f"{r['id']}\n")
        return EXIT_SUCCEEDED
    status = follow(client, team, run, out.err if args.json else out.out, out.err)
    final = client.call("GET", f"/teams/{team}/runs/{run['id']}")
    if args.json:
        out.data(final, str)
    out.note(f"Run #{run['id']} {status}.")
    return RUN_EXIT.get(status, EXIT_FAILED)


def _run_text(run: dict[str, Any]) -> str:
    lines = [
        f"Run #{run['id']} of {run['action_name']}: {run['status']} "
        f"(started {run['created_at'][:19].replace('T', ' ')} by "
        f"{run['started_by'] or run['trigger']})"
    ]
    for t in run.get("targets", []):
        code = "" if t["exit_code"] is None else f" exit {t['exit_code']}"
        lines.append(
            f"  {t['server']}: {t['status']}{code}{' ' + t['error'] if t['error'] else ''}"
        )
    return "\n".join(lines) + "\n"


def cmd_runs(args: argparse.Namespace, client: Client, team: str, out: Out) -> int:
    if args.action == "list":
        query = {"status": args.status} if args.status else {}
        answer = client.call("GET", f"/teams/{team}/runs", page_size=args.limit, **query)
        items = answer["items"]
        out.data(
            items,
            lambda xs: (
                _table(
                    [["ID", "ACTION", "STATUS", "STARTED", "BY"]]
                    + [
                        [
                            str(r["id"]),
                            r["action_name"],
                            r["status"],
                            r["created_at"][:19].replace("T", " "),
                            r["started_by"] or r["trigger"],
                        ]
                        for r in xs
                    ]
                )
                if xs
                else "No runs yet.\n"
            ),
        )
        return EXIT_SUCCEEDED
    path = f"/teams/{team}/runs/{args.id}"
    if args.action == "show":
        run = client.call("GET", path)
        out.data(run, _run_text)
        return EXIT_RUNNING if not run["finished"] else RUN_EXIT.get(run["status"], EXIT_FAILED)
    if args.action == "cancel":
        run = client.call("POST", f"{path}/cancel")
        out.data(run, _run_text)
        return EXIT_SUCCEEDED
    again = client.call("POST", f"{path}/again", {})
    return _started(client, team, again, args, out)


def cmd_schedules(args: argparse.Namespace, client: Client, team: str, out: Out) -> int:
    if args.action == "list":
        items = _all(client, f"/teams/{team}/schedules")
        out.data(
            items,
            lambda xs: (
                _table(
                    [["ID", "NAME", "ACTION", "CRON", "ZONE", "NEXT"]]
                    + [
                        [
                            str(s["id"]),
                            s["name"],
                            s["action_name"],
                            s["cron"],
                            s["timezone"],
                            (s["next_run_at"] or "disabled")[:16].replace("T", " "),
                        ]
                        for s in xs
                    ]
                )
                if xs
                else "No schedules yet.\n"
            ),
        )
        return EXIT_SUCCEEDED
    action = _action(client, team, args.action_name)
    schedule = client.call(
        "POST",
        f"/teams/{team}/actions/{action['id']}/schedules",
        {
            "name": args.name,
            "cron": args.cron,
            "timezone": args.timezone,
            "targets": args.target,
            "params": _params(args.param),
            "default_params": args.default_params,
        },
    )
    out.data(
        schedule,
        lambda s: (
            f"Schedule #{s['id']} {s['name']}: {s['action_name']} at {s['cron']} "
            f"({s['timezone']}); next {str(s['next_run_at'])[:16].replace('T', ' ')}.\n"
        ),
    )
    return EXIT_SUCCEEDED


def _download(client: Client, path: str, target: Path) -> int:
    request = urllib.request.Request(client.base + path)  # noqa: S310
    request.add_header("Authorization", f"Bearer {client.token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            size = 0
            with os.fdopen(fd, "wb") as handle:
                while block := answer.read(1 << 16):
                    handle.write(block)
                    size += len(block)
    except urllib.error.HTTPError as exc:
        raise CliError(_error_message(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot download from {client.base}: {exc}", EXIT_UNREACHABLE) from None
    return size


def cmd_export(args: argparse.Namespace, client: Client, out: Out) -> int:
    if args.action == "request":
        job = client.call("POST", "/me/exports")
        out.data(
            job,
            lambda j: (
                f"Export #{j['id']} requested; `pipetower export download` fetches it "
                "when it is ready.\n"
            ),
        )
        return EXIT_SUCCEEDED
    export_id = args.id
    if export_id is None:
        jobs = client.call("GET", "/me/exports", page_size=1)["items"]
        if not jobs:
            raise CliError("you have no export yet: run `pipetower export request` first.")
        export_id = jobs[0]["id"]
    job = client.call("GET", f"/me/exports/{export_id}")
    if job["status"] in {"queued", "building"}:
        out.data(job, lambda j: f"Export #{j['id']} is still being built ({j['progress']}%).\n")
        return EXIT_RUNNING
    target = Path(args.output or f"pipetower-export-{export_id}.zip")
    size = _download(client, f"/me/exports/{export_id}/download", target)
    out.data(
        {**job, "file": str(target), "bytes": size},
        lambda j: f"Saved export #{j['id']} to {j['file']} ({j['bytes']} bytes).\n",
    )
    return EXIT_SUCCEEDED


# --- arguments -------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="Print the API's answer as JSON.")
    p.add_argument("--team", default="", help="Team slug (default: PIPETOWER_TEAM, the login's).")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow", "-f", action="store_true", help="Stream the output until it ends.")


def parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"pipetower {command}")
    if command == "login":
        p.description = "Check an API token and store it, with the URL, for the other commands."
        p.add_argument("url", help="Pipetower's address, e.g. https://pipetower.example.com")
        p.add_argument("--token", default="", help="The token (else PIPETOWER_TOKEN, else asked).")
        _common(p)
        return p
    sub = p.add_subparsers(dest="action", required=True, metavar="COMMAND")
    if command == "servers":
        _common(sub.add_parser("list", help="The team's servers."))
        add = sub.add_parser("add", help="Add a server that logs in with the team key.")
        add.add_argument("name")
        add.add_argument("--host", required=True)
        add.add_argument("--port", type=int, default=22)
        add.add_argument("--user", required=True, help="The SSH user.")
        add.add_argument("--tag", action="append", default=[], help="Repeatable.")
        _common(add)
        add_import_parser(sub, _common)
    elif command == "actions":
        _common(sub.add_parser("list", help="The team's actions."))
        show = sub.add_parser("show", help="One action: parameters and script.")
        show.add_argument("name", help="The action's name (or id).")
        _common(show)
        run = sub.add_parser("run", help="Start a run on exactly the targets given.")
        run.add_argument("name", help="The action's name (or id).")
        run.add_argument("--target", "-t", action="append", default=[], metavar="NAME|tag:TAG")
        run.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE")
        run.add_argument("--default-targets", action="store_true")
        run.add_argument("--default-params", action="store_true")
        _run_options(run)
        _common(run)
    elif command == "runs":
        runs = sub.add_parser("list", help="Run history, newest first.")
        runs.add_argument("--status", default="")
        runs.add_argument("--limit", type=int, default=20, help="How many (1 to 100).")
        _common(runs)
        for name, what in (
            ("show", "One run and its servers; the exit status follows the run's."),
            ("cancel", "Cancel a run."),
            ("rerun", "Run a finished run's action again, same servers and values."),
        ):
            one = sub.add_parser(name, help=what)
            one.add_argument("id", type=int)
            if name == "rerun":
                _run_options(one)
            _common(one)
    elif command == "schedules":
        _common(sub.add_parser("list", help="The team's schedules."))
        add = sub.add_parser("add", help="Schedule an action.")
        add.add_argument("action_name", metavar="ACTION")
        add.add_argument("--name", required=True)
        add.add_argument("--cron", required=True, help='e.g. "30 2 * * *" or @daily')
        add.add_argument("--timezone", default="UTC")
        add.add_argument("--target", "-t", action="append", default=[], metavar="NAME|tag:TAG")
        add.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE")
        add.add_argument("--default-params", action="store_true")
        _common(add)
    elif command == "export":
        _common(sub.add_parser("request", help="Ask for an export of your data."))
        get = sub.add_parser("download", help="Save your latest (or the given) export.")
        get.add_argument("id", type=int, nargs="?")
        get.add_argument("--output", "-o", default="", help="File to write.")
        _common(get)
    return p


def main(
    command: str, argv: Sequence[str], *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser(command).parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_REFUSED
    printer = Out(args.json, out, err)
    try:
        if command == "login":
            return cmd_login(args, printer)
        url, token = credentials()
        client = Client(url, token, notes=err)
        if command == "export":
            return cmd_export(args, client, printer)
        team = _team(
            client,
            args.team or os.environ.get("PIPETOWER_TEAM", "") or config_load().get("team", ""),
        )
        handler = {
            "servers": cmd_servers,
            "actions": cmd_actions,
            "runs": cmd_runs,
            "schedules": cmd_schedules,
        }[command]
        return handler(args, client, team, printer)
    except CliError as exc:
        err.write(f"pipetower {command}: {exc.message}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("\nStopped.\n")
        return 130
