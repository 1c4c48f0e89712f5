"""Self-service export: a ZIP with everything Pipetower holds about a person.

`export_request` queues one job per person (never two at once);
`export_build` (run by a Celery task) writes one JSON file per category, a CSV
beside every table-shaped one, `manifest.json` (with the schema version),
`schema.json` (a JSON Schema every file validates against) and a README.
Secrets (encrypted fields, and fields the data map marks `secret`) are never
written; the manifest and README list what was left out and why.
What goes in is driven by the data map where it declares a model: fields it
marks `export=False` or `secret=True` are left out.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.accounts.models import SignInEvent, User
from pipetower.actions.models import Action, Run
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

SCHEMA_VERSION = "1.0"
SIGNING_SALT = "pipetower.privacy.export"
# A job still "queued" or "building" after this long was lost by its worker.
STALE_AFTER_SECONDS = 3600

SECRET_NOTE = (
    "Secrets are left out of this export: SSH private keys, server passwords, "
    "secret action parameters and their defaults, two-factor secrets and API token "
    "values. Pipetower keeps them encrypted and never shows them again; set them anew "
    "where you import this data."
)

PROFILE_FIELDS = ["email", "name", "date_joined", "last_login", "signup_ip", "avatar"]
MEMBERSHIP_FIELDS = ["team_name", "team_slug", "role", "created_at"]
TEAM_FIELDS = ["name", "slug", "created_at", "require_2fa"]
SERVER_FIELDS = [
    "name",
    "host",
    "port",
    "username",
    "tags",
    "auth_method",
    "host_keys",
    "host_key_pinned_at",
    "created_at",
]
ACTION_FIELDS = [
    "name",
    "description",
    "script",
    "parameters",
    "run_as",
    "timeout_seconds",
    "concurrency",
    "failure_limit",
    "default_servers",
    "default_tags",
    "created_at",
]
RUN_FIELDS = [
    "id",
    "team_slug",
    "action_name",
    "status",
    "trigger",
    "params",
    "created_at",
    "finished_at",
    "targets",
]
SIGNIN_FIELDS = [
    "created_at",
    "method",
    "outcome",
    "second_factor",
    "ip",
    "country_code",
    "country_name",
    "region",
    "city",
    "user_agent",
    "browser",
    "os",
]
TOKEN_FIELDS = [
    "name",
    "prefix",
    "scope",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "revoked_at",
]
AUDIT_FIELDS = [
    "created_at",
    "verb",
    "team",
    "actor_label",
    "target_type",
    "target_label",
    "ip",
    "data",
]


@dataclass(frozen=True)
class Category:
    """One file of the export: `<name>.json` (and `<name>.csv` when `table`)."""

    name: str
    title: str
    fields: list[str]
    collect: Callable[[User], list[dict[str, Any]]]
    table: bool = True
    nested: dict[str, list[str]] | None = None  # field -> fields of its items


# --- helpers -----------------------------------------------------------------


def _decl(label: str) -> ModelDecl | None:
    for decl in DATA_MAP:
        if decl.model.lower() == label.lower():
            return decl
    return None


def _left_out(model: type[models.Model]) -> set[str]:
    """Fields never exported: encrypted ones, and those the data map excludes."""
    names = {f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)}
    decl = _decl(model._meta.label)
    if decl:
        names |= {name for name, fd in decl.fields.items() if fd.secret or not fd.export}
    return names


def _fields(model: type[models.Model], wanted: list[str]) -> list[str]:
    excluded = _left_out(model)
    return [name for name in wanted if name not in excluded]


def _plain(value: Any) -> Any:
    """A JSON-ready value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, models.fields.files.FieldFile):
        return value.name or ""
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return str(value)


def _row(obj: models.Model, fields: Iterable[str], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in fields:
        if name in extra:
            row[name] = _plain(extra[name])
            continue
        field = obj._meta.get_field(name)
        value = getattr(obj, getattr(field, "attname", name) if field.is_relation else name)
        row[name] = _plain(value)
    return row


# --- what is collected ---------------------------------------------------------


def _profile(user: User) -> list[dict[str, Any]]:
    return [_row(user, _fields(User, PROFILE_FIELDS))]


def _memberships(user: User) -> list[dict[str, Any]]:
    rows = []
    for m in Membership.objects.filter(user=user).select_related("team").order_by("created_at"):
        rows.append(
            {
                "team_name": m.team.name,
                "team_slug": m.team.slug,
                "role": m.role,
                "created_at": _plain(m.created_at),
            }
        )
    return rows


def owned_teams(user: User) -> models.QuerySet[Team]:
    return Team.objects.filter(memberships__user=user, memberships__role=Role.OWNER).order_by(
        "created_at", "id"
    )


def _server_row(server: Server) -> dict[str, Any]:
    tags = sorted(tag.name for tag in server.tags.all())
    return _row(server, _fields(Server, SERVER_FIELDS), tags=tags)


def _action_row(action: Action) -> dict[str, Any]:
    defaults = sorted(s.name for s in action.default_servers.all())
    return _row(action, _fields(Action, ACTION_FIELDS), default_servers=defaults)


def _teams(user: User) -> list[dict[str, Any]]:
    rows = []
    for team in owned_teams(user):
        row = _row(team, TEAM_FIELDS)
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
            {"server": t.server_name, "status": t.status, "exit_code": t.exit_code}
            for t in run.targets.all()
        ]
        rows.append(
            _row(
                run,
                _fields(Run, RUN_FIELDS),
                team_slug=run.team.slug,
                params=run.masked_params(),
                targets=targets,
            )
        )
    return rows


def _signins(user: User) -> list[dict[str, Any]]:
    fields = _fields(SignInEvent, SIGNIN_FIELDS)
    return [_row(e, fields) for e in SignInEvent.objects.filter(user=user)]


def _tokens(user: User) -> list[dict[str, Any]]:
    fields = _fields(ApiToken, TOKEN_FIELDS)
    return [_row(t, fields) for t in ApiToken.objects.filter(user=user)]


def _audit(user: User) -> list[dict[str, Any]]:
    about = Q(actor=user) | Q(target_type="accounts.user", target_id=str(user.pk))
    rows = []
    for event in AuditEvent.objects.filter(about).select_related("team"):
        rows.append(_row(event, AUDIT_FIELDS, team=event.team.slug if event.team else ""))
    return rows


def _built_in() -> list[Category]:
    return [
        Category("profile", "Your profile", _fields(User, PROFILE_FIELDS), _profile),
        Category("memberships", "Teams you belong to", MEMBERSHIP_FIELDS, _memberships),
        Category(
            "teams",
            "Teams you own, with their servers and actions",
            [*TEAM_FIELDS, "servers", "actions"],
            _teams,
            table=False,
            nested={
                "servers": _fields(Server, SERVER_FIELDS),
                "actions": _fields(Action, ACTION_FIELDS),
            },
        ),
        Category("runs", "Runs you started", _fields(Run, RUN_FIELDS), _runs, table=False),
        Category(
            "signins",
            "Sign-in log, with address and location",
            _fields(SignInEvent, SIGNIN_FIELDS),
            _signins,
        ),
        Category(
            "api_tokens",
            "API tokens (names and use, never the token)",
            _fields(ApiToken, TOKEN_FIELDS),
            _tokens,
        ),
        Category("audit_events", "Activity-log entries about you", AUDIT_FIELDS, _audit),
    ]


HANDLED_MODELS = {
    "accounts.user",
    "teams.membership",
    "teams.team",
    "servers.server",
    "actions.action",
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


def _declared_category(decl: ModelDecl) -> Category | None:
    """A file for a data-map model not built in (consent history, correspondence, ...)."""
    from django.apps import apps

    if (decl.subject is None and not decl.subject_email) or decl.model.lower() in HANDLED_MODELS:
        return None
    try:
        model = apps.get_model(decl.model)
    except LookupError:
        return None
    excluded = _left_out(model)
    fields = ["id"] + [name for name, fd in decl.fields.items() if fd.export and not fd.secret]
    fields = [name for name in dict.fromkeys(fields) if name not in excluded]
    subject, subject_email = decl.subject, decl.subject_email

    def collect(user: User) -> list[dict[str, Any]]:
        if subject_email:
            by_address = Q(pk__in=[])
            for address in verified_addresses(user):
                by_address |= Q(**{f"{subject_email}__iexact": address})
            rows = model._default_manager.filter(by_address)
        else:
            rows = model._default_manager.filter(**{subject or "pk": user})
        return [_row(obj, fields) for obj in rows]

    name = decl.model.replace(".", "_").lower()
    return Category(name, decl.title or model._meta.verbose_name_plural, fields, collect)


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

ANY_VALUE = {"type": ["string", "integer", "number", "boolean", "null", "array", "object"]}


def _record_schema(fields: list[str], nested: dict[str, str] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name in fields:
        if nested and name in nested:
            properties[name] = {"type": "array", "items": {"$ref": f"#/$defs/{nested[name]}"}}
        else:
            properties[name] = ANY_VALUE
    return {
        "type": "object",
        "properties": properties,
        "required": fields,
        "additionalProperties": False,
    }


def export_schema(categories: list[Category]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for cat in categories:
        nested_refs = {}
        for field, item_fields in (cat.nested or {}).items():
            ref = f"{cat.name}.{field}"
            defs[ref] = _record_schema(item_fields)
            nested_refs[field] = ref
        defs[f"{cat.name}.record"] = _record_schema(cat.fields, nested_refs)
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
        "required": ["schema_version", "generated_at", "files", "left_out", "note"],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "generated_at": {"type": "string"},
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
                },
            },
        },
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
  definition named in its manifest entry.
- Each category is a JSON file; categories that are tables also come as CSV.
- teams.json holds the teams you own, with their servers and actions. The
  `pipetower import-export` command restores them into another account.

{note}

Fields left out: {left_out}
"""


def export_archive(*, user: User, progress: Callable[[int], None] | None = None) -> bytes:
    """The ZIP for `user`; `progress(percent)` is called as categories are written."""
    categories = export_categories()
    buffer = io.BytesIO()
    files = []
    left_out = left_out_fields()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
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
                progress(int(index * 90 / len(categories)))
        archive.writestr("schema.json", json.dumps(export_schema(categories), indent=2))
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "generated_at": timezone.now().isoformat(),
            "files": files,
            "left_out": left_out,
            "note": SECRET_NOTE,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        archive.writestr(
            "README.txt",
            README.format(version=SCHEMA_VERSION, note=SECRET_NOTE, left_out=", ".join(left_out)),
        )
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


def _save_private(job: ExportJob, data: bytes) -> None:
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
    job.file.save(f"{secrets.token_hex(16)}.zip", ContentFile(data), save=False)
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

    try:
        data = export_archive(user=job.user, progress=progress)
    except Exception as exc:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED,
            error="The export could not be built; please try again later.",
        )
        raise exc
    now = timezone.now()
    _save_private(job, data)
    job.status = ExportJob.Status.READY
    job.progress = 100
    job.size_bytes = len(data)
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
