"""Restore an export's teams, servers and actions into an account (portability)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from pipetower.accounts.models import User
from pipetower.actions.services import action_create
from pipetower.core.errors import ServiceError
from pipetower.privacy.export import SCHEMA_VERSION
from pipetower.servers.services import server_create, server_host_key_paste
from pipetower.teams.services import team_create


@dataclass
class ImportResult:
    teams: int = 0
    servers: int = 0
    actions: int = 0
    notes: list[str] = field(default_factory=list)


def _read(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            teams = json.loads(archive.read("teams.json"))
    except FileNotFoundError:
        raise ServiceError(f"There is no file {path}.") from None
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise ServiceError(
            f"{path} is not a Pipetower export (a ZIP with manifest.json and teams.json)."
        ) from None
    if str(manifest.get("schema_version", "")).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ServiceError(
            f"{path} has export schema version {manifest.get('schema_version')!r}; "
            f"this Pipetower reads version {SCHEMA_VERSION}."
        )
    if not isinstance(teams, dict) or not isinstance(teams.get("records"), list):
        raise ServiceError(f"{path}: teams.json does not hold a list of teams.")
    return teams


def export_import(*, path: Path, user: User) -> ImportResult:
    """Create the export's teams (owned by `user`) with their servers and actions."""
    teams = _read(path)
    result = ImportResult()
    with transaction.atomic():
        for record in teams["records"]:
            team = team_create(user=user, name=record["name"])
            result.teams += 1
            ids: dict[str, int] = {}
            for srv in record.get("servers", []):
                server = server_create(
                    team=team,
                    actor=user,
                    name=srv["name"],
                    host=srv["host"],
                    port=int(srv.get("port") or 22),
                    username=srv["username"],
                    tags=srv.get("tags") or [],
                )
                if srv.get("auth_method") not in (None, "team_key"):
                    result.notes.append(
                        f"{team.name}/{server.name}: its key or password was not exported; "
                        "it now uses the team's SSH key until you set one."
                    )
                if srv.get("host_keys"):
                    server_host_key_paste(server=server, actor=user, text=srv["host_keys"])
                ids[server.name] = server.pk
                result.servers += 1
            for act in record.get("actions", []):
                action_create(
                    team=team,
                    actor=user,
                    name=act["name"],
                    script=act["script"],
                    description=act.get("description", ""),
                    parameters=act.get("parameters") or [],
                    run_as=act.get("run_as", ""),
                    timeout_seconds=int(act.get("timeout_seconds") or 300),
                    concurrency=int(act.get("concurrency") or 10),
                    failure_limit=act.get("failure_limit"),
                    default_server_ids=[ids[n] for n in act.get("default_servers", []) if n in ids],
                    default_tags=act.get("default_tags") or [],
                )
                result.actions += 1
    return result
