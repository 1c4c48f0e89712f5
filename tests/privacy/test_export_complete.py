"""The export is complete and typed, because both come from the data map (issue 13, part 2).

A row belonging to the person is created for every model the data map declares with
exported fields, including content they created in a team they do not own. Every
exported text field of those rows gets a unique marker; the export must carry each
marker in the file of its own model. A field the map declares exported that the
export drops makes this fail, whatever the model.
"""

from __future__ import annotations

import datetime
import io
import json
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress, EmailConfirmation
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.models import UserSession
from django.apps import apps
from django.core.files.base import ContentFile
from django.db import models
from django.utils import timezone

from pipetower.accounts.models import SignInEvent, User
from pipetower.actions.models import (
    Action,
    ActionVersion,
    ApprovalRequest,
    OutputChunk,
    Run,
    RunTarget,
    Schedule,
    Webhook,
)
from pipetower.api.models import ApiToken
from pipetower.audit.models import AuditEvent
from pipetower.notifications.models import NotificationRule
from pipetower.privacy import export
from pipetower.privacy.datamap import DATA_MAP, ModelDecl
from pipetower.privacy.models import (
    AccountDeletion,
    ConsentEvent,
    DataSubjectRequest,
    ExportJob,
    PolicyAcknowledgement,
    PolicyNotice,
    PolicyVersion,
    ProcessingRestriction,
    SubprocessorSubscriber,
    SupportGrant,
)
from pipetower.servers.models import Server, TeamSshKey
from pipetower.support.models import Correspondence, Interview, Survey, SurveyResponse
from pipetower.teams.models import Invitation, Membership, Role, Team
from tests.factories import TeamFactory, UserFactory
from tests.privacy.helpers import validate_archive

pytestmark = pytest.mark.django_db

# Models whose rows are written inside another file rather than in one of their own:
# where the export puts them, and which rows are the person's.
RUN_OUTPUT = "run_output/"
NESTED: dict[str, tuple[str, Callable[[User], models.QuerySet[Any]]]] = {
    "actions.RunTarget": ("runs.json", lambda p: RunTarget.objects.filter(run__started_by=p)),
    "actions.OutputChunk": (
        RUN_OUTPUT,
        lambda p: OutputChunk.objects.filter(run_target__run__started_by=p),
    ),
}


def seed(person: User) -> None:
    """One row of every kind the data map links to a person, all of them `person`'s.
    Most content sits in a team `person` only belongs to, owned by someone else."""
    now = timezone.now()
    boss = UserFactory()
    own = TeamFactory(created_by=person)
    Membership.objects.create(team=own, user=person, role=Role.OWNER)
    theirs = TeamFactory(created_by=boss, deletion_requested_by=person)
    Membership.objects.create(team=theirs, user=boss, role=Role.OWNER)
    Membership.objects.create(team=theirs, user=person, role=Role.ADMIN)
    server = Server.objects.create(
        team=theirs,
        name="web",
        host="127.0.0.1",
        username="deploy",
        created_by=person,
        host_key_pinned_by=person,
        check_requested_by=person,
    )
    TeamSshKey.objects.create(team=theirs, public_key="ssh-ed25519 AAAA", created_by=person)
    action = Action.objects.create(team=theirs, name="Deploy", script="true", created_by=person)
    ActionVersion.objects.create(
        team=theirs,
        action=action,
        number=2,
        script="true",
        timeout_seconds=60,
        concurrency=1,
        changes=["script"],
        created_by=person,
    )
    Schedule.objects.create(
        team=theirs,
        action=action,
        name="Nightly",
        cron="0 2 * * *",
        next_run_at=now,
        created_by=person,
    )
    Webhook.objects.create(
        team=theirs, action=action, name="On push", token="w" * 43, created_by=person
    )
    NotificationRule.objects.create(
        team=theirs,
        action=action,
        name="Failures",
        channel="webhook",
        url="https://hooks.example.com/ops",
        format="json",
        secret="n" * 43,
        created_by=person,
    )
    run = Run.objects.create(
        team=theirs,
        action=action,
        action_name="Deploy",
        script="true",
        timeout_seconds=60,
        concurrency=1,
        status="succeeded",
        started_by=person,
        cancelled_by=person,
    )
    target = RunTarget.objects.create(run=run, server=server, server_name="web", status="ok")
    ApprovalRequest.objects.create(
        team=theirs,
        run=run,
        requested_by=person,
        decided_by=person,
        decision="denied",
        reason="freeze",
        decided_at=now,
        expires_at=now,
    )
    OutputChunk.objects.create(run_target=target, seq=1, stream="stdout", data="one")
    OutputChunk.objects.create(run_target=target, seq=2, stream="stderr", data="two")
    Invitation.objects.create(
        team=theirs,
        email="guest@example.com",
        token_hash="h" * 64,
        expires_at=now,
        invited_by=person,
        accepted_by=person,
    )
    SupportGrant.objects.create(
        team=theirs, scope="read", reason="ticket", granted_by=person, expires_at=now
    )
    AuditEvent.objects.create(team=theirs, actor=person, verb="server.created")
    ApiToken.objects.create(user=person, name="laptop", prefix="ptk_x", token_hash="t" * 64)
    SignInEvent.objects.create(user=person, method="password", outcome="success")
    UserSession.objects.create(user=person, ip="127.0.0.1", session_key="s" * 32)
    address = EmailAddress.objects.get(user=person)
    EmailConfirmation.objects.create(email_address=address, key="k" * 64)
    Authenticator.objects.create(user=person, type="totp", data={"secret": "TOTPSECRET"})
    app = SocialApp.objects.create(provider="google", name="Google", client_id="c", secret="s")
    social = SocialAccount.objects.create(user=person, provider="google", uid="1", extra_data={})
    SocialToken.objects.create(app=app, account=social, token="GOOGLETOKEN")
    ConsentEvent.objects.create(
        user=person, purpose="newsletter", granted=True, channel="web", wording_version="v1"
    )
    ProcessingRestriction.objects.create(user=person)
    DataSubjectRequest.objects.create(user=person, kind="access", details="d", due_at=now)
    ExportJob.objects.create(user=person, status="failed")
    AccountDeletion.objects.create(
        user=person, status="cancelled", scheduled_for=now, cancelled_at=now
    )
    version = PolicyVersion.objects.create(number=1, text="Policy", summary="First")
    PolicyNotice.objects.create(version=version, user=person, sent_at=now)
    PolicyAcknowledgement.objects.create(version=version, user=person)
    Correspondence.objects.create(user=person, email=person.email, subject="Hi", body="b")
    survey = Survey.objects.create(title="How are we doing?", questions="Good?")
    SurveyResponse.objects.create(survey=survey, user=person, answers=["yes"])
    SubprocessorSubscriber.objects.create(email=person.email, confirmed_at=now)
    Interview.objects.create(
        user=person,
        topic="Schedules",
        scheduled_for=now,
        token_hash="i" * 64,
        recording_allowed=True,
        recording_reference="rec.mp3",
        invited_by=boss,
    )


class Markers:
    def __init__(self) -> None:
        self.count = 0
        self.expected: list[tuple[str, str, str]] = []  # (where, marker, "Model.field")

    def text(self, where: str, label: str, max_length: int | None) -> str:
        self.count += 1
        value = f"mk{self.count:04d}z"[: max_length or None]
        self.expected.append((where, value, label))
        return value


def _categories_by_model() -> dict[str, list[export.Category]]:
    found: dict[str, list[export.Category]] = {}
    for cat in export.export_categories():
        found.setdefault(cat.model._meta.label, []).append(cat)
    return found


def _exported(decl: ModelDecl) -> list[str]:
    return [name for name, fd in decl.fields.items() if fd.export and not fd.secret]


def _value(field: models.Field[Any, Any], current: Any, make: Callable[[], str]) -> Any:
    """A marked value for a text-like field; None when the field cannot hold one."""
    if field.is_relation or field.choices or isinstance(field, models.FileField):
        return None
    if isinstance(field, models.EmailField):
        return f"{make()}@example.org"
    if isinstance(field, models.GenericIPAddressField):
        return None  # checked by name below; an address cannot carry a marker
    if isinstance(field, models.JSONField):
        return [{"note": make()}] if isinstance(current, list) else {"note": make()}
    if isinstance(field, models.CharField | models.TextField):
        return make()
    return None


def plant(person: User) -> tuple[Markers, dict[str, tuple[str, list[str]]]]:
    """Marks every exported text field of the person's rows; returns the markers and,
    per model, the file it must be found in and the field names its records carry."""
    markers = Markers()
    by_model = _categories_by_model()
    checks: dict[str, tuple[str, list[str]]] = {}
    missing = []
    # First find the person's rows of each model, then mark them: marking changes the
    # addresses some rows are found by.
    found: list[tuple[ModelDecl, type[models.Model], str, list[Any], list[str]]] = []
    for decl in DATA_MAP:
        declared = _exported(decl)
        if not declared:
            continue
        model = apps.get_model(decl.model)
        label = model._meta.label
        if label in NESTED:
            where, rows = NESTED[label]
            pks = list(rows(person).values_list("pk", flat=True))
            names = declared
        elif label in by_model:
            cats = by_model[label]
            where = " ".join(f"{c.name}.json" for c in cats)
            pks = sorted({r["id"] for c in cats for r in c.collect(person)})
            names = list(dict.fromkeys([*declared, *export.exportable_fields(model)]))
            checks[label] = (where, declared)
        else:
            missing.append(label)
            continue
        assert pks, f"seed a row of {label} that belongs to the person"
        found.append((decl, model, where, pks, names))
    for decl, model, where, pks, names in found:
        label = model._meta.label
        for pk in pks:
            obj = model._default_manager.get(pk=pk)
            changes: dict[str, Any] = {}
            for name in names:
                field = model._meta.get_field(name)
                if name == decl.subject_email:  # found by address: one of the person's
                    changes[name] = sorted(export.verified_addresses(person))[0]
                    continue
                value = _value(
                    field,  # type: ignore[arg-type]
                    getattr(obj, name, None),
                    lambda name=name, field=field: markers.text(
                        where, f"{label}.{name}", getattr(field, "max_length", None)
                    ),
                )
                if value is not None:
                    changes[field.attname] = value  # type: ignore[union-attr]
            model._default_manager.filter(pk=pk).update(**changes)
    assert not missing, f"declared exported, but the export has no file for: {missing}"
    return markers, checks


def _texts(archive: zipfile.ZipFile) -> dict[str, str]:
    return {name: archive.read(name).decode() for name in archive.namelist()}


def test_every_exported_field_of_every_model_reaches_the_archive(user: User) -> None:
    seed(user)
    user.avatar.save("me.webp", ContentFile(b"RIFF-avatar-marker"), save=True)
    markers, checks = plant(user)
    assert markers.count > 40

    archive = zipfile.ZipFile(io.BytesIO(export.export_archive(user=user)))
    files = validate_archive(archive)
    texts = _texts(archive)

    lost = []
    for where, marker, label in markers.expected:
        if where == RUN_OUTPUT:
            haystack = "".join(t for n, t in texts.items() if n.startswith(RUN_OUTPUT))
        else:
            haystack = "".join(texts[name] for name in where.split())
        if marker not in haystack:
            lost.append(f"{label} (expected in {where})")
    assert lost == [], f"declared exported, missing from the export: {lost}"

    # Fields that carry no marker (links, dates, choices, addresses) are there by name.
    for label, (where, names) in checks.items():
        for name in where.split():
            records = files[name.removesuffix(".json")]["records"]
            assert records, f"{label}: no records in {name}"
            for field_name in names:
                assert all(field_name in r for r in records), f"{label}.{field_name} in {name}"

    assert (
        archive.read(f"avatar/{str(user.avatar.name).rsplit('/', 1)[-1]}") == b"RIFF-avatar-marker"
    )


def test_content_made_in_someone_elses_team_is_exported_readably(user: User) -> None:
    seed(user)
    files = validate_archive(zipfile.ZipFile(io.BytesIO(export.export_archive(user=user))))
    [server] = files["servers_server"]["records"]
    assert server["name"] == "web" and server["created_by"] == user.pk
    assert server["created_at"].startswith(str(timezone.now().year))  # ISO 8601
    [request] = files["privacy_datasubjectrequest"]["records"]
    assert request["kind"] == "access" and request["status"] == "open"
    [consent] = files["privacy_consentevent"]["records"]
    assert consent["purpose"] == "newsletter" and consent["granted"] is True
    [factor] = files["mfa_authenticator"]["records"]
    assert factor["type"] == "totp" and factor["created_at"] and "data" not in factor
    [invitation] = files["teams_invitation"]["records"]
    assert invitation["email"] == "guest@example.com"


def test_former_addresses_and_names_are_exported_with_the_profile(user: User) -> None:
    AuditEvent.objects.create(actor=user, actor_label="ada.old@example.com", verb="x")
    AuditEvent.objects.create(actor=user, actor_label="Ada Byron", verb="y")
    files = validate_archive(zipfile.ZipFile(io.BytesIO(export.export_archive(user=user))))
    [profile] = files["profile"]["records"]
    assert profile["emails_on_record"] == ["ada.old@example.com", "ada@example.com"]
    assert profile["names_on_record"] == ["Ada Byron", "Ada Lovelace"]


def test_no_secret_is_exported_only_that_it_exists(user: User) -> None:
    seed(user)
    data = export.export_archive(user=user)
    archive = zipfile.ZipFile(io.BytesIO(data))
    everything = "".join(_texts(archive).values())
    for secret in ("TOTPSECRET", "GOOGLETOKEN", "h" * 64, "t" * 64, "k" * 64, "s" * 32):
        assert secret not in everything
    assert "pbkdf2" not in everything and "argon2" not in everything  # password hashes
    [token] = json.loads(archive.read("api_tokens.json"))["records"]
    assert token["name"] == "laptop" and "token_hash" not in token


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, definition in schema["$defs"].items():
        for prop, sub in definition.get("properties", {}).items():
            out.append((f"{name}.{prop}", sub))
    return out


def test_every_field_has_a_real_type_in_the_schema(user: User) -> None:
    seed(user)
    schema = export.export_schema(export.export_categories())
    untyped = [
        name
        for name, sub in _properties(schema)
        if not ({"type", "enum", "const", "$ref"} & set(sub))
    ]
    assert untyped == []
    records = schema["$defs"]
    assert records["profile.record"]["properties"]["date_joined"] == {
        "type": "string",
        "format": "date-time",
    }
    assert records["profile.record"]["properties"]["is_active"] == {"type": "boolean"}
    assert records["privacy_consentevent.record"]["properties"]["user"]["type"] == [
        "integer",
        "null",
    ]
    assert records["runs.record"]["properties"]["timeout_seconds"] == {"type": "integer"}
    assert "access" in records["privacy_datasubjectrequest.record"]["properties"]["kind"]["enum"]


def test_a_wrongly_typed_value_fails_validation(user: User) -> None:
    import jsonschema

    seed(user)
    archive = zipfile.ZipFile(io.BytesIO(export.export_archive(user=user)))
    schema = json.loads(archive.read("schema.json"))
    document = json.loads(archive.read("privacy_consentevent.json"))
    document["records"][0]["granted"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, {**schema, "$ref": "#/$defs/privacy_consentevent"})


def test_run_output_is_streamed_in_pieces_with_bounded_memory(user: User, team: Team) -> None:
    seed(user)
    target = RunTarget.objects.filter(run__started_by=user).get()
    piece = "x" * 4095 + "\n"
    OutputChunk.objects.bulk_create(
        OutputChunk(run_target=target, seq=n, stream="stdout", data=piece) for n in range(3, 2003)
    )  # about 8 MB of output
    size = 2000 * len(piece)

    class Sink(io.BytesIO):
        writes = 0

        def write(self, b: Any) -> int:
            Sink.writes += 1
            return super().write(b)

    tracemalloc.start()
    try:
        sink = Sink()
        export.export_archive_to(sink, user=user)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    archive = zipfile.ZipFile(io.BytesIO(sink.getvalue()))
    [name] = [n for n in archive.namelist() if n.startswith(RUN_OUTPUT)]
    text = archive.read(name).decode()
    assert text.startswith("onetwo") and len(text) == size + 6
    # The compressed archive itself lives in the sink; what is built on the way is not
    # the whole output (it would be twice its size as a string and its bytes).
    assert peak - len(sink.getvalue()) < size / 2
    assert Sink.writes > 10
    manifest = json.loads(archive.read("manifest.json"))
    assert {"path": name, "kind": "run_output", "bytes": size + 6} in manifest["attachments"]


def test_an_account_with_nothing_yet_exports_empty_valid_files() -> None:
    person = UserFactory()
    files = validate_archive(zipfile.ZipFile(io.BytesIO(export.export_archive(user=person))))
    assert files["runs"]["records"] == []
    assert files["servers_server"]["records"] == []
    assert datetime.datetime.fromisoformat(files["profile"]["records"][0]["date_joined"])
