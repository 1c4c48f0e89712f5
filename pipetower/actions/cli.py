"""`pipetower run`: start an action through the API and follow its output.

    PIPETOWER_URL=https://pipetower.example.com PIPETOWER_TOKEN=ptk_... \\
        pipetower run deploy --target web-1 --target tag:db --param version=1.4 --follow

A client of the REST API only: it needs no database, settings or secrets of
the Pipetower it talks to. Exit status: 0 the run succeeded (or was started,
without --follow), 1 it failed, 3 it was cancelled, 2 the request was refused
(no target, bad parameter, unknown server...), 4 Pipetower could not be reached.

It runs on exactly the targets and values given: without --target it refuses,
unless --default-targets asks for the action's default targets (and
--default-params for the defaults of parameters not given). A 429 (too many
requests) is never fatal: it waits as long as Retry-After says, then goes on.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
FOLLOW_WAIT_SECONDS = 10
# A 429 without a usable Retry-After waits this long; a longer one is capped.
RETRY_AFTER_DEFAULT = 5.0
RETRY_AFTER_MAX = 300.0
HINTS = {
    "no_targets": "Name them with --target NAME or --target tag:TAG, or pass --default-targets "
    "to run on the action's default targets.",
    "parameter_not_given": "Give it with --param NAME=VALUE, or pass --default-params to use "
    "the action's defaults.",
}


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """How long a 429's Retry-After (seconds or an HTTP date) asks to wait, within bounds."""
    text = (value or "").strip()
    seconds = RETRY_AFTER_DEFAULT
    if text.isdigit():
        seconds = float(text)
    elif text:
        try:
            when = email.utils.parsedate_to_datetime(text)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError):
            pass
    return min(max(seconds, 1.0), RETRY_AFTER_MAX)


class Client:
    """Calls the API; waits out every 429 as its Retry-After asks and tries again
    (a refused request was not carried out, so repeating it is safe)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        notes: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token = token
        self.notes = notes or sys.stderr
        self.sleep = sleep

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        while True:
            try:
                return self._call_once(method, path, body, **query)
            except urllib.error.HTTPError as exc:
                if exc.code != 429:
                    raise CliError(_error_message(exc)) from None
                wait = retry_after_seconds(exc.headers.get("Retry-After"))
                exc.close()
                self.notes.write(
                    f"pipetower run: Pipetower is limiting requests (429); "
                    f"trying again in {wait:g} s, as it asks.\n"
                )
                self.notes.flush()
                self.sleep(wait)

    def _call_once(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=FOLLOW_WAIT_SECONDS + 20) as answer:  # noqa: S310
                raw = answer.read()
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot reach Pipetower at {self.base}: {reason}", EXIT_UNREACHABLE
            ) from None
        return json.loads(raw) if raw else None


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
    except (ValueError, KeyError, TypeError):
        return f"Pipetower answered {exc.code} {exc.reason}."
    details = [d["message"] for d in error.get("details", []) if d.get("message")]
    message = str(error.get("message", exc.reason))
    extra = [d for d in details if d != message]
    hint = HINTS.get(str(error.get("code", "")), "")
    return message + (" (" + "; ".join(extra) + ")" if extra else "") + (f" {hint}" if hint else "")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pipetower run",
        description="Run an action on servers through the Pipetower API. Needs PIPETOWER_TOKEN "
        "(an API token with write scope) and PIPETOWER_URL.",
    )
    p.add_argument("action", help="The action's name (or id).")
    p.add_argument(
        "--target",
        "-t",
        action="append",
        default=[],
        metavar="NAME|tag:TAG",
        help="A server name, or tag:NAME for every server with the tag. Repeat for more. "
        "At least one is needed, unless --default-targets.",
    )
    p.add_argument(
        "--default-targets",
        action="store_true",
        help="Run on the action's default targets (instead of --target).",
    )
    p.add_argument(
        "--default-params",
        action="store_true",
        help="Parameters not given with --param take the action's defaults "
        "(without it, leaving out a parameter that has a default is refused).",
    )
    p.add_argument(
        "--param", "-p", action="append", default=[], metavar="NAME=VALUE", help="Repeatable."
    )
    p.add_argument("--follow", "-f", action="store_true", help="Stream the output until it ends.")
    p.add_argument("--team", default=os.environ.get("PIPETOWER_TEAM", ""), help="Team slug.")
    p.add_argument("--url", default=os.environ.get("PIPETOWER_URL", "http://localhost:8000"))
    return p


def _params(pairs: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--param needs NAME=VALUE, not {pair!r}.")
        values[name.strip()] = value
    return values


def _team(client: Client, slug: str) -> str:
    if slug:
        return slug
    teams = client.call("GET", "/teams", page_size=100)["items"]
    if len(teams) == 1:
        return str(teams[0]["slug"])
    if not teams:
        raise CliError("this token's account belongs to no team.")
    names = ", ".join(t["slug"] for t in teams)
    raise CliError(
        f"you belong to several teams ({names}); choose one with --team or PIPETOWER_TEAM."
    )


def _action(client: Client, team: str, name: str) -> dict[str, Any]:
    found = client.call("GET", f"/teams/{team}/actions", name=name)["items"]
    if found:
        return dict(found[0])
    if name.isdigit():
        return dict(client.call("GET", f"/teams/{team}/actions/{name}"))
    raise CliError(f"no action named {name!r} in team {team}.")


class Printer:
    """Writes chunks as they come: one server as is, several with a `name | ` prefix."""

    def __init__(self, targets: dict[int, str], out: TextIO, err: TextIO) -> None:
        self.names = targets
        self.prefix = len(targets) > 1
        self.width = max((len(n) for n in targets.values()), default=0)
        self.partial: dict[tuple[int, str], str] = {}
        self.out, self.err = out, err

    def chunk(self, target: int, stream: str, data: str) -> None:
        stream_out = self.out if stream == "stdout" else self.err
        if not self.prefix:
            stream_out.write(data)
            stream_out.flush()
            return
        key = (target, stream)
        text = self.partial.pop(key, "") + data
        lines = text.split("\n")
        self.partial[key] = lines.pop()
        for line in lines:
            stream_out.write(f"{self.names.get(target, '?'):<{self.width}} | {line}\n")
        stream_out.flush()

    def flush(self) -> None:
        for (target, stream), rest in self.partial.items():
            if rest:
                out = self.out if stream == "stdout" else self.err
                out.write(f"{self.names.get(target, '?'):<{self.width}} | {rest}\n")
        self.partial.clear()

    def target_done(self, target: dict[str, Any]) -> None:
        exit_code = "" if target["exit_code"] is None else f", exit {target['exit_code']}"
        duration = "" if target["duration"] is None else f", {target['duration']:.1f} s"
        line = f"== {target['server']}: {target['status_label'].lower()}{exit_code}{duration}"
        if target["error"] and target["status"] != "failed":
            line += f" ({target['error']})"
        self.err.write(line + "\n")
        self.err.flush()


def follow(client: Client, team: str, run: dict[str, Any], out: TextIO, err: TextIO) -> str:
    """Print output until the run ends; returns its final status."""
    targets = {t["id"]: t["server"] for t in run["targets"]}
    cursor = dict.fromkeys(targets, 0)
    printer = Printer(targets, out, err)
    reported: set[int] = set()
    revision = 0
    said_waiting = False
    while True:
        after = ",".join(f"{t}:{s}" for t, s in cursor.items())
        changes = client.call(
            "GET",
            f"/teams/{team}/runs/{run['id']}/changes",
            rev=revision,
            after=after,
            wait=FOLLOW_WAIT_SECONDS,
        )
        revision = changes["revision"]
        if changes["run"]["status"] == "pending_approval" and not said_waiting:
            said_waiting = True  # said once; the run starts (or ends) when someone decides
            err.write("Waiting for approval\n")
            err.flush()
        for chunk in changes["chunks"]:
            if chunk["seq"] <= cursor.get(chunk["target"], 0):
                continue
            cursor[chunk["target"]] = chunk["seq"]
            printer.chunk(chunk["target"], chunk["stream"], chunk["data"])
        for target in changes["targets"]:
            status = target["status"]
            done = status not in {"queued", "connecting", "running"}
            caught_up = cursor.get(target["id"], 0) >= target["last_seq"]
            if done and caught_up and target["id"] not in reported:
                reported.add(target["id"])
                printer.flush()
                printer.target_done(target)
        if changes["run"]["finished"] and not changes["more"]:
            detail = client.call("GET", f"/teams/{team}/runs/{run['id']}")
            printer.flush()
            for target in detail["targets"]:
                if target["id"] not in reported:
                    printer.target_done(target)
            return str(detail["status"])
        if not changes["chunks"] and not changes["targets"]:
            time.sleep(0.2)


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(list(argv or []))
    token = os.environ.get("PIPETOWER_TOKEN", "").strip()
    if not token:
        from pipetower.api.cli import config_load  # what `pipetower login` stored

        stored = config_load()
        token = stored.get("token", "").strip()
        if token and not os.environ.get("PIPETOWER_URL") and stored.get("url"):
            args.url = stored["url"]
    if not token:
        err.write(
            "pipetower run: set PIPETOWER_TOKEN to an API token with write scope "
            "(create one under API tokens).\n"
        )
        return EXIT_REFUSED
    client = Client(args.url, token, notes=err, sleep=sleep)
    try:
        team = _team(client, args.team)
        action = _action(client, team, args.action)
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
        page = f"{args.url.rstrip('/')}/teams/{team}/runs/{run['id']}/"
        err.write(
            f"Run #{run['id']} of {action['name']} started on {len(run['targets'])} "
            f"server{'s' if len(run['targets']) != 1 else ''}: {page}\n"
        )
        err.flush()
        if not args.follow:
            return EXIT_SUCCEEDED
        status = follow(client, team, run, out, err)
    except CliError as exc:
        err.write(f"pipetower run: {exc.message}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("\nStopped following; the run goes on.\n")
        return 130
    err.write(f"Run #{run['id']} {status}.\n")
    return {"succeeded": EXIT_SUCCEEDED, "cancelled": EXIT_CANCELLED}.get(status, EXIT_FAILED)
