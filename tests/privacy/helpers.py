"""Shared builders for the export, import, deletion and residue tests."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import jsonschema

from pipetower.accounts.models import SignInEvent, User
from pipetower.actions.models import Action, Run, RunStatus
from pipetower.servers.models import Server, Tag
from pipetower.teams.models import Team


def populate(user: User, team: Team) -> dict[str, Any]:
    """Servers, an action with a secret default, a run and a sign-in for `user` in `team`."""
    tag = Tag.objects.create(team=team, name="web")
    server = Server.objects.create(
        team=team,
        name="web-1",
        host="web1.example.net",
        username="deploy",
        auth_method=Server.AuthMethod.PASSWORD,
        password="hunter2-server-password",
        created_by=user,
    )
    server.tags.add(tag)
    action = Action.objects.create(
        team=team,
        name="Restart nginx",
        script="systemctl restart nginx",
        secret_defaults=json.dumps({"token": "s3cret-action-default"}),
        parameters=[{"name": "token", "label": "Token", "kind": "secret"}],
        created_by=user,
    )
    action.default_servers.add(server)
    run = Run.objects.create(
        team=team,
        action=action,
        action_name=action.name,
        script=action.script,
        timeout_seconds=60,
        concurrency=1,
        status=RunStatus.SUCCEEDED,
        started_by=user,
    )
    SignInEvent.objects.create(
        user=user, method="password", outcome="success", ip="203.0.113.77", city="Lisbon"
    )
    return {"server": server, "action": action, "run": run}


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def validate_archive(archive: zipfile.ZipFile) -> dict[str, Any]:
    """Validate every file against schema.json; returns the parsed files by category."""
    schema = json.loads(archive.read("schema.json"))
    manifest = json.loads(archive.read("manifest.json"))
    jsonschema.validate(manifest, {**schema, "$ref": "#/$defs/manifest"})
    files = {}
    for entry in manifest["files"]:
        document = json.loads(archive.read(entry["path"]))
        jsonschema.validate(document, {**schema, "$ref": entry["schema"]})
        files[entry["category"]] = document
    return files
