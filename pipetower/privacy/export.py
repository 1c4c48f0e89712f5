"""Self-service export: a ZIP with everything Pipetower holds about a person.

`export_request` queues one job per person (never two at once);
`export_build` (run by a Celery task) writes one JSON file per category, a CSV
beside every table-shaped one, the avatar and the output of the person's runs
(streamed chunk by chunk), `manifest.json` (with the schema version),
`schema.json` (a JSON Schema every file validates against) and a README.

Both the files and their schema are generated from the data map and the models:
every model the map declares with a link to the person (its subject, or a field
such as `created_by`) gets a file with every stored field except the left-out
ones: encrypted fields, secrets by name (hashes, keys) and fields the map marks
`export=False` or `secret=True`. Each field's JSON type comes from its kind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.accounts.models import SignInEvent, User
from pipetower.actions.models import Action, OutputChunk, Run, RunTarget
from pipetower.api.models import ApiToken
from pipetower.audit.models import AuditEvent
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed
from pipetower.core.fields import EncryptedTextField
from pipetower.core.outbox import outbox_enqueue
from pipetower.privacy.datamap import DATA_MAP, ModelDecl
from pipetower.privacy.models import ExportJob
from pipetower.servers.models import Server
from pipetower.teams.models import Membership, Role, Team

SCHEMA_VERSION = "1.1"
SIGNING_SALT = "pipetower.privacy.export"
# A job still "queued" or "building" after this long was lost by its worker.
STALE_AFTER_SECONDS = 3600

SECRET_NOTE = (
    "Secrets are left out of this export: SSH private keys, server passwords, "
    "secret action parameters and their defaults, two-factor secrets and API token "
    "values. Pipetower keeps them encrypted and never shows them again; set them anew "
    "where you import this data."
)

# Field names that hold a secret or an internal key although not encrypted: never
# exported, whatever the model (hashes of tokens, confirmation keys, session keys).
SECRET_NAMES = {"password", "key", "token", "token_secret", "secret", "session_key", "data_key"}
# Extra, computed values the built-in files add to a model's own fields.
STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
JSON_VALUE = {"type": ["object", "array", "string", "number", "integer", "boolean", "null"]}
TARGET_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["server", "status", "exit_code", "error"],
        "properties": {
            "server": STRING,
            "status": STRING,
            "exit_code": {"type": ["integer", "null"]},
            "error": STRING,
        },
        "additionalProperties": False,
    },
}


@dataclass(frozen=True)
class Category:
    """One file of the export: `<name>.json` (and `<name>.csv` when `table`).

    Its fields are the model's own exportable fields (see `exportable_fields`)
    plus `extra`: computed values, each with its JSON Schema."""

    name: str
    title: str
    model: type[models.Model]
    collect: Callable[[User], list[dict[str, Any]]]
    extra: dict[str, dict[str, Any]] = dataclass_field(default_factory=dict)
    table: bool = True
    nested: dict[str, Category] = dataclass_field(default_factory=dict)  # field -> items

    @property
    def fields(self) -> list[str]:
        own = exportable_fields(self.model)
        return [*own, *(name for name in self.extra if name not in own), *self.nested]


# --- helpers -----------------------------------------------------------------


def _decl(label: str) -> ModelDecl | None:
    for decl in DATA_MAP:
        if decl.model.lower() == label.lower():
            return decl
    return None


def _secret_name(name: str) -> bool:
    return name in SECRET_NAMES or name.endswith("_hash")


def _left_out(model: type[models.Model]) -> set[str]:
    """Fields never exported: encrypted ones, secret by name, and those the data
    map excludes."""
    names = {
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedTextField) or _secret_name(f.name)
    }
    decl = _decl(model._meta.label)
    if decl:
        names |= {name for name, fd in decl.fields.items() if fd.secret or not fd.export}
    return names


def exportable_fields(model: type[models.Model]) -> list[str]:
    """Every stored field of `model` the export carries: all but the left-out ones.
    A field the data map declares (and does not exclude) is therefore always in."""
    excluded = _left_out(model)
    return [f.name for f in model._meta.concrete_fields if f.name not in excluded]


def field_schema(field: models.Field[Any, Any]) -> dict[str, Any]:
    """The JSON Schema of one model field as `_plain` writes it."""
    schema: dict[str, Any]
    if isinstance(field, models.ForeignKey | models.OneToOneField):
        schema = field_schema(field.target_field)
        schema.pop("enum", None)
    elif isinstance(field, models.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, models.IntegerField | models.AutoField):
        schema = {"type": "integer"}
    elif isinstance(field, models.FloatField | models.DecimalField):
        schema = {"type": "number"}
    elif isinstance(field, models.DateTimeField):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(field, models.DateField):
        schema = {"type": "string", "format": "date"}
    elif isinstance(field, models.JSONField):
        default = field.default() if callable(field.default) else field.default
        if isinstance(default, list):
            schema = {"type": "array"}
        elif isinstance(default, dict):
            schema = {"type": "object"}
        else:
            schema = dict(JSON_VALUE)
    else:  # text, email, addresses, slugs, files (their name), uuids
        schema = {"type": "string"}
    if field.choices and not isinstance(field, models.BooleanField):
        values = [value for value, _label in field.flatchoices]
        if field.blank and "" not in values and schema["type"] == "string":
            values.append("")
        schema["enum"] = values
    if field.null or isinstance(field, models.FileField):
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if "null" not in kinds:
            schema["type"] = [*kinds, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _plain(value: Any) -> Any:
    """A JSON-ready value: dates in ISO 8601, files by name, ids as they are."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.fields.files.FieldFile):
        return value.name or None
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return str(value)


def _row(obj: models.Model, cat_fields: Iterable[str], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in cat_fields:
        if name in extra:
            row[name] = _plain(extra[name])
            continue
        field = obj._meta.get_field(name)
        value = getattr(obj, getattr(field, "attname", name) if field.is_relation else name)
        row[name] = _plain(value)
    return row


def _own(model: type[models.Model]) -> list[str]:
    return exportable_fields(model)


# --- what is collected ---------------------------------------------------------


def _profile(user: User) -> list[dict[str, Any]]:
    from pipetower.privacy.deletion import former_identifiers

    emails, names = former_identifiers(user=user)
    stored = User.objects.get(pk=user.pk)  # as stored, not as passed
    return [
        _row(
            stored,
            [*_own(User), "emails_on_record", "names_on_record"],
            emails_on_record=sorted(emails),
            names_on_record=sorted(names),
        )
    ]


def _memberships(user: User) -> list[dict[str, Any]]:
    rows = []
    for m in Membership.objects.filter(user=user).select_related("team").order_by("created_at"):
        rows.append(
            _row(
                m,
                [*_own(Membership), "team_name", "team_slug"],
                team_name=m.team.name,
                team_slug=m.team.slug,
            )
        )
    return rows


def owned_teams(user: User) -> models.QuerySet[Team]:
    return Team.objects.filter(memberships__user=user, memberships__role=Role.OWNER).order_by(
        "created_at", "id"
    )


def _server_row(server: Server) -> dict[str, Any]:
    tags = sorted(tag.name for tag in server.tags.all())
    return _row(server, [*_own(Server), "tags"], tags=tags)


def _action_row(action: Action) -> dict[str, Any]:
    defaults = sorted(s.name for s in action.default_servers.all())
    return _row(action, [*_own(Action), "default_servers"], default_servers=defaults)


def _teams(user: User) -> list[dict[str, Any]]:
    rows = []
    for team in owned_teams(user):
        row = _row(team, _own(Team))
        servers = Server.objects.filter(team=team).prefetch_related("tags")
        actions = Action.objects.filter(team=team).prefetch_related("default_servers")
        row["servers"] = [_server_row(s) for s in servers]
        row["actions"] = [_action_row(a) for a in actions]
        rows.append(row)
    return rows


def _runs(user: User) -> list[dict[str, Any]]:
    rows = []
    for run in (
        Run.objects.filter(started_by=user).select_related("team").prefetch_related("targets")
    ):
        targets = [
            {
                "server": t.server_name,
                "status": t.status,
                "exit_code": t.exit_code,
                "error": t.error,
            }
            for t in run.targets.all()
        ]
        rows.append(
            _row(
                run,
                [*_own(Run), "team_slug", "targets"],
                team_slug=run.team.slug,
                params=run.masked_params(),
                targets=targets,
            )
        )
    return rows


def _signins(user: User) -> list[dict[str, Any]]:
    return [_row(e, _own(SignInEvent)) for e in SignInEvent.objects.filter(user=user)]


def _tokens(user: User) -> list[dict[str, Any]]:
    return [_row(t, _own(ApiToken)) for t in ApiToken.objects.filter(user=user)]


def _audit(user: User) -> list[dict[str, Any]]:
    about = Q(actor=user) | Q(target_type="accounts.user", target_id=str(user.pk))
    rows = []
    for event in AuditEvent.objects.filter(about).select_related("team"):
        team_slug = event.team.slug if event.team else ""
        rows.append(_row(event, [*_own(AuditEvent), "team_slug"], team_slug=team_slug))
    return rows


def _none(user: User) -> list[dict[str, Any]]:
    return []


def _built_in() -> list[Category]:
    return [
        Category(
            "profile",
            "Your profile, with every address and name of yours that history still holds",
            User,
            _profile,
            extra={"emails_on_record": STRINGS, "names_on_record": STRINGS},
        ),
        Category(
            "memberships",
            "Teams you belong to",
            Membership,
            _memberships,
            extra={"team_name": STRING, "team_slug": STRING},
        ),
        Category(
            "teams",
            "Teams you own, with their servers and actions",
            Team,
            _teams,
            table=False,
            nested={
                "servers": Category("servers", "", Server, _none, extra={"tags": STRINGS}),
                "actions": Category(
                    "actions", "", Action, _none, extra={"default_servers": STRINGS}
                ),
            },
        ),
        Category(
            "runs",
            "Runs you started (their output is in run_output/)",
            Run,
            _runs,
            extra={"team_slug": STRING, "targets": TARGET_SCHEMA},
            table=False,
        ),
        Category("signins", "Sign-in log, with address and location", SignInEvent, _signins),
        Category("api_tokens", "API tokens (names and use, never the token)", ApiToken, _tokens),
        Category(
            "audit_events",
            "Activity-log entries about you",
            AuditEvent,
            _audit,
            extra={"team_slug": STRING},
        ),
    ]


HANDLED_MODELS = {
    "accounts.user",
    "teams.membership",
    "actions.run",
    "accounts.signinevent",
    "api.apitoken",
    "audit.auditevent",
}


def verified_addresses(user: User) -> set[str]:
    """The addresses the person has proved are theirs (confirmed on the account).
    Rows found by address are exported only for these, so an address signed up
    with but never confirmed reveals nothing about its real owner."""
    from allauth.account.models import EmailAddress

    confirmed = EmailAddress.objects.filter(user=user, verified=True)
    return {e.lower() for e in confirmed.values_list("email", flat=True)}


def person_links(decl: ModelDecl, model: type[models.Model]) -> list[str]:
    """The ORM paths by which a row of `decl` belongs to the person: its subject, and
    every exported field the map declares as a link to an account (who created a
    server in someone else's team, who accepted an invitation, ...). A link the
    map keeps out of the export (a staff member's change log) makes no row theirs."""
    links: list[str] = []
    if decl.subject:
        subject_decl = decl.fields.get(decl.subject)
        if subject_decl is None or subject_decl.export:
            links.append(decl.subject)
    for name, fd in decl.fields.items():
        if fd.category != "user.unique_id" or not fd.export or name in links:
            continue
        field = model._meta.get_field(name)  # test_datamap: every declared field exists
        if getattr(field, "related_model", None) is User:
            links.append(name)
    return links


def _declared_category(decl: ModelDecl) -> Category | None:
    """A file for a data-map model not built in (consent history, requests, two-factor
    methods, content you created in any team, ...), with every exportable field."""
    from django.apps import apps

    if decl.model.lower() in HANDLED_MODELS:
        return None
    try:
        model = apps.get_model(decl.model)
    except LookupError:
        return None
    links = person_links(decl, model)
    subject_email = decl.subject_email
    if not links and not subject_email:
        return None
    own = exportable_fields(model)

    def collect(user: User) -> list[dict[str, Any]]:
        mine = Q(pk__in=[])
        for link in links:
            mine |= Q(**{link: user})
        if subject_email:
            for address in verified_addresses(user):
                mine |= Q(**{f"{subject_email}__iexact": address})
        rows = model._default_manager.filter(mine).distinct().order_by("pk")
        return [_row(obj, own) for obj in rows]

    name = decl.model.replace(".", "_").lower()
    return Category(name, str(decl.title or model._meta.verbose_name_plural), model, collect)


def export_categories() -> list[Category]:
    declared = [c for c in (_declared_category(d) for d in DATA_MAP) if c is not None]
    return [*_built_in(), *declared]


def left_out_fields() -> list[str]:
    """Every field the export never contains, as "app.Model.field"."""
    from django.apps import apps

    out = []
    for model in apps.get_models():
        for name in sorted(_left_out(model)):
            out.append(f"{model._meta.label}.{name}")
    return out


# --- schema ------------------------------------------------------------------


def record_schema(cat: Category) -> dict[str, Any]:
    """The schema of one record of `cat`: each model field typed from its kind."""
    properties: dict[str, Any] = {}
    for name in exportable_fields(cat.model):
        properties[name] = field_schema(cat.model._meta.get_field(name))  # type: ignore[arg-type]
    for name, schema in cat.extra.items():
        properties[name] = schema
    for name in cat.nested:
        properties[name] = {"type": "array", "items": {"$ref": f"#/$defs/{cat.name}.{name}"}}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def export_schema(categories: list[Category]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for cat in categories:
        for field_name, item in cat.nested.items():
            defs[f"{cat.name}.{field_name}"] = record_schema(item)
        defs[f"{cat.name}.record"] = record_schema(cat)
        defs[cat.name] = {
            "type": "object",
            "required": ["category", "title", "schema_version", "records"],
            "properties": {
                "category": {"const": cat.name},
                "title": {"type": "string"},
                "schema_version": {"const": SCHEMA_VERSION},
                "records": {"type": "array", "items": {"$ref": f"#/$defs/{cat.name}.record"}},
            },
            "additionalProperties": False,
        }
    defs["manifest"] = {
        "type": "object",
        "required": ["schema_version", "generated_at", "files", "attachments", "left_out", "note"],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "generated_at": {"type": "string", "format": "date-time"},
            "note": {"type": "string"},
            "left_out": {"type": "array", "items": {"type": "string"}},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "category", "schema", "records"],
                    "properties": {
                        "path": {"type": "string"},
                        "category": {"type": "string"},
                        "schema": {"type": "string"},
                        "records": {"type": "integer", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
            },
            "attachments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "kind", "bytes"],
                    "properties": {
                        "path": {"type": "string"},
                        "kind": {"enum": ["avatar", "run_output"]},
                        "bytes": {"type": "integer", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pipetower personal data export",
        "description": "Validate each file with the definition its manifest entry names.",
        "$defs": defs,
    }


def _csv(fields: list[str], records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                k: json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
                for k, v in record.items()
            }
        )
    return out.getvalue()


README = """Your Pipetower data
===================

This archive holds a copy of the personal data Pipetower keeps about you.

- manifest.json lists every file, how many records it holds and the schema
  version ({version}).
- schema.json is a JSON Schema (draft 2020-12); each file validates against the
  definition named in its manifest entry. Dates are ISO 8601; links to other
  records are their ids.
- Each category is a JSON file; categories that are tables also come as CSV.
- teams.json holds the teams you own, with their servers and actions. The
  `pipetower import-export` command restores them into another account.
  Content you created in other people's teams is in the files of its kind
  (for example servers_server.json, actions_action.json).
- run_output/ holds what the runs you started printed, one text file per
  server of each run; avatar/ holds your profile picture, if you set one.

{note}

Fields left out: {left_out}
"""

COPY_CHUNK = 64 * 1024


def _write_avatar(archive: zipfile.ZipFile, user: User) -> list[dict[str, Any]]:
    if not user.avatar:
        return []
    path = f"avatar/{Path(str(user.avatar.name)).name}"
    size = 0
    with user.avatar.open("rb") as source, archive.open(path, "w") as target:
        while piece := source.read(COPY_CHUNK):
            target.write(piece)
            size += len(piece)
    return [{"path": path, "kind": "avatar", "bytes": size}]


def _write_run_output(archive: zipfile.ZipFile, user: User) -> list[dict[str, Any]]:
    """One text file per server of each run the person started, written chunk by
    chunk straight from the database: the output is never held whole in memory."""
    written = []
    targets = RunTarget.objects.filter(run__started_by=user).order_by("run_id", "pk")
    for target in targets.iterator():
        chunks = OutputChunk.objects.filter(run_target=target).order_by("seq")
        if not chunks.exists():
            continue
        path = f"run_output/run-{target.run_id}-target-{target.pk}.txt"
        size = 0
        with archive.open(path, "w", force_zip64=True) as out:
            for data in chunks.values_list("data", flat=True).iterator(chunk_size=200):
                piece = data.encode()
                out.write(piece)
                size += len(piece)
        written.append({"path": path, "kind": "run_output", "bytes": size})
    return written


def export_archive_to(
    destination: BinaryIO, *, user: User, progress: Callable[[int], None] | None = None
) -> None:
    """Write the ZIP for `user` to `destination`; `progress(percent)` is called as
    categories are written."""
    categories = export_categories()
    files = []
    left_out = left_out_fields()
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, cat in enumerate(categories, 1):
            records = cat.collect(user)
            document = {
                "category": cat.name,
                "title": str(cat.title),
                "schema_version": SCHEMA_VERSION,
                "records": records,
            }
            archive.writestr(f"{cat.name}.json", json.dumps(document, indent=2))
            files.append(
                {
                    "path": f"{cat.name}.json",
                    "category": cat.name,
                    "schema": f"#/$defs/{cat.name}",
                    "records": len(records),
                }
            )
            if cat.table:
                archive.writestr(f"{cat.name}.csv", _csv(cat.fields, records))
            if progress:
                progress(int(index * 80 / len(categories)))
        attachments = _write_avatar(archive, user) + _write_run_output(archive, user)
        if progress:
            progress(90)
        archive.writestr("schema.json", json.dumps(export_schema(categories), indent=2))
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "generated_at": timezone.now().isoformat(),
            "files": files,
            "attachments": attachments,
            "left_out": left_out,
            "note": SECRET_NOTE,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        archive.writestr(
            "README.txt",
            README.format(version=SCHEMA_VERSION, note=SECRET_NOTE, left_out=", ".join(left_out)),
        )


def export_archive(*, user: User, progress: Callable[[int], None] | None = None) -> bytes:
    """The ZIP for `user` as bytes (for tests and small exports)."""
    buffer = io.BytesIO()
    export_archive_to(buffer, user=user, progress=progress)
    return buffer.getvalue()


# --- services ----------------------------------------------------------------


def _expire_stale(user: User) -> None:
    cutoff = timezone.now() - timedelta(seconds=STALE_AFTER_SECONDS)
    ExportJob.objects.filter(
        user=user,
        status__in=(ExportJob.Status.QUEUED, ExportJob.Status.BUILDING),
        created_at__lt=cutoff,
    ).update(status=ExportJob.Status.FAILED, error="The export stopped; please request it again.")


def export_request(*, user: User, request: HttpRequest | None = None) -> ExportJob:
    """Queue an export for `user`; refuses a second one while one is being built."""
    from pipetower.privacy.tasks import export_build_task

    _expire_stale(user)
    busy = Conflict(
        "Your export is already being built. This page shows its progress; "
        "you will get an email when it is ready."
    )
    if ExportJob.objects.filter(
        user=user, status__in=(ExportJob.Status.QUEUED, ExportJob.Status.BUILDING)
    ).exists():
        raise busy
    try:
        with transaction.atomic():
            job = ExportJob.objects.create(user=user)
            audit_record(actor=user, verb="privacy.export_requested", target=job, request=request)
            outbox_enqueue(export_build_task, job.pk, subject=f"privacy.export:{job.pk}")
    except IntegrityError:
        raise busy from None
    return job


def _save_private(job: ExportJob, data: BinaryIO) -> None:
    """Store the archive readable by Pipetower's own user only: mode 0600, in an
    `exports/` folder of mode 0700 made before the file, so it is never readable
    by anyone else, not even for a moment (Django's default would be 0644)."""
    storage = job.file.storage
    try:
        folder = Path(storage.path("exports"))
    except NotImplementedError:  # a remote storage: its own access rules apply
        folder = None
    if folder is not None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    job.file.save(f"{secrets.token_hex(16)}.zip", File(data, name="export.zip"), save=False)
    if folder is not None:
        os.chmod(storage.path(str(job.file.name)), 0o600)


def export_build(*, job_id: int) -> ExportJob:
    """Build the archive for a queued job; the task's body."""
    job = ExportJob.objects.select_related("user").get(pk=job_id)
    if job.status != ExportJob.Status.QUEUED:
        return job
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.BUILDING, progress=1)

    def progress(percent: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(progress=percent)

    # The archive is built in a private temporary file, never whole in memory.
    with tempfile.TemporaryFile() as data:
        try:
            export_archive_to(data, user=job.user, progress=progress)
        except Exception as exc:
            ExportJob.objects.filter(pk=job.pk).update(
                status=ExportJob.Status.FAILED,
                error="The export could not be built; please try again later.",
            )
            raise exc
        size = data.tell()
        data.seek(0)
        now = timezone.now()
        _save_private(job, data)
    job.status = ExportJob.Status.READY
    job.progress = 100
    job.size_bytes = size
    job.finished_at = now
    job.expires_at = now + settings.EXPORT_TTL
    job.save(
        update_fields=["file", "status", "progress", "size_bytes", "finished_at", "expires_at"]
    )
    link = settings.BASE_URL + reverse("privacy:export")
    email = job.user.email
    transaction.on_commit(
        lambda: send_mail(
            "[Pipetower] Your data export is ready",
            f"Your Pipetower data export is ready. Download it within 7 days, signed in, "
            f"from:\n\n{link}\n\nIf you did not ask for it, change your password.",
            None,
            [email],
        )
    )
    return job


def export_download_token(job: ExportJob) -> str:
    return signing.dumps({"job": job.pk, "user": job.user_id}, salt=SIGNING_SALT)


def export_get_for_download(
    *, user: User, token: str, request: HttpRequest | None = None
) -> ExportJob:
    """The job a download link names, for its own person only; logs the download.

    A tampered link raises NotAllowed (403), an expired export Gone (410).
    """
    max_age: timedelta = settings.EXPORT_TTL
    try:
        payload = signing.loads(token, salt=SIGNING_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise Gone("This download link has expired. Request a new export.") from None
    except signing.BadSignature:
        raise NotAllowed(
            "This download link is not valid. Use the link on your export page."
        ) from None
    if not isinstance(payload, dict) or payload.get("user") != user.pk:
        raise NotAllowed("This download link belongs to another account.")
    job = ExportJob.objects.filter(pk=int(payload.get("job") or 0), user=user).first()
    if job is None or not job.is_downloadable:
        raise Gone("This export has expired or been removed. Request a new export.")
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk).update(downloaded_at=timezone.now())
        audit_record(actor=user, verb="privacy.export_downloaded", target=job, request=request)
    return job


def export_jobs_purge(*, now: datetime | None = None) -> int:
    """Delete the files of expired exports; the job rows stay as "expired"."""
    now = now or timezone.now()
    count = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.READY, expires_at__lte=now):
        if job.file:
            job.file.delete(save=False)
        job.status = ExportJob.Status.EXPIRED
        job.save(update_fields=["file", "status"])
        count += 1
    return count


def export_files_delete(*, user: User) -> int:
    """Delete every export file of `user` (part of account deletion)."""
    count = 0
    for job in ExportJob.objects.filter(user=user).exclude(file=""):
        job.file.delete(save=False)
        count += 1
    return count
