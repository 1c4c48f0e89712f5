from __future__ import annotations

import json

import jsonschema
import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict
from pipetower.privacy import export
from pipetower.privacy.models import ExportJob
from pipetower.teams.models import Team
from tests.factories import UserFactory
from tests.privacy.helpers import open_zip, populate, validate_archive

pytestmark = pytest.mark.django_db


def _build(user: User, django_capture_on_commit_callbacks) -> ExportJob:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        job = export.export_request(user=user)
    job.refresh_from_db()
    return job


def test_export_contains_every_category_and_validates_against_its_schema(
    user: User, team: Team, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    populate(user, team)
    job = _build(user, django_capture_on_commit_callbacks)
    assert job.status == ExportJob.Status.READY and job.progress == 100
    archive = open_zip(job.file.read())
    names = set(archive.namelist())
    assert {"manifest.json", "schema.json", "README.txt", "profile.json", "profile.csv"} <= names
    files = validate_archive(archive)
    assert files["profile"]["records"][0]["email"] == "ada@example.com"
    assert files["memberships"]["records"][0]["role"] == "owner"
    server = files["teams"]["records"][0]["servers"][0]
    assert server["host"] == "web1.example.net" and server["tags"] == ["web"]
    assert files["runs"]["records"][0]["action_name"] == "Restart nginx"
    assert files["signins"]["records"][0]["ip"] == "203.0.113.77"
    assert files["signins"]["records"][0]["city"] == "Lisbon"
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["schema_version"] == export.SCHEMA_VERSION
    assert "Secrets are left out" in manifest["note"]
    assert "servers.Server.password" in manifest["left_out"]
    assert mailoutbox[-1].to == ["ada@example.com"]
    assert "ready" in mailoutbox[-1].subject


def test_export_never_contains_secrets(
    user: User, team: Team, django_capture_on_commit_callbacks
) -> None:
    populate(user, team)
    job = _build(user, django_capture_on_commit_callbacks)
    archive = open_zip(job.file.read())
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"hunter2-server-password" not in everything
    assert b"s3cret-action-default" not in everything
    assert b"pt1:" not in everything and b"pt2:" not in everything  # no ciphertext either


def test_a_schema_violation_is_detected(
    user: User, team: Team, django_capture_on_commit_callbacks
) -> None:
    job = _build(user, django_capture_on_commit_callbacks)
    archive = open_zip(job.file.read())
    schema = json.loads(archive.read("schema.json"))
    document = json.loads(archive.read("profile.json"))
    document["records"][0]["surprise"] = "field"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, {**schema, "$ref": "#/$defs/profile"})


def test_a_second_export_while_one_is_building_is_refused(user: User) -> None:
    export.export_request(user=user)  # not committed: the job stays queued
    with pytest.raises(Conflict, match="already being built"):
        export.export_request(user=user)
    assert ExportJob.objects.filter(user=user).count() == 1


def test_export_page_shows_progress_and_refuses_a_duplicate(
    owner_client: Client, user: User
) -> None:
    ExportJob.objects.create(user=user, status=ExportJob.Status.BUILDING, progress=42)
    page = owner_client.get(reverse("privacy:export"))
    assert page.status_code == 200
    assert b"42%" in page.content
    assert b'http-equiv="refresh"' in page.content
    answer = owner_client.post(reverse("privacy:export"), follow=True)
    assert b"already being built" in answer.content
    assert ExportJob.objects.filter(user=user).count() == 1


def test_owner_downloads_the_ready_export_and_the_download_is_logged(
    owner_client: Client, user: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("privacy:export"))
    job = ExportJob.objects.get(user=user)
    assert job.status == ExportJob.Status.READY  # tasks run eagerly in tests
    page = owner_client.get(reverse("privacy:export"))
    token = export.export_download_token(job)
    assert reverse("privacy:export_download", args=[token]).encode() in page.content
    answer = owner_client.get(reverse("privacy:export_download", args=[token]))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    validate_archive(open_zip(b"".join(answer.streaming_content)))
    assert AuditEvent.objects.filter(verb="privacy.export_downloaded", actor=user).exists()


def test_a_tampered_link_answers_403_with_a_clear_page(owner_client: Client, user: User) -> None:
    owner_client.post(reverse("privacy:export"))
    token = export.export_download_token(ExportJob.objects.get(user=user))
    answer = owner_client.get(reverse("privacy:export_download", args=[token[:-3] + "abc"]))
    assert answer.status_code == 403
    assert b"not valid" in answer.content


def test_another_person_cannot_use_the_link(client: Client, user: User) -> None:
    client.force_login(user)
    client.post(reverse("privacy:export"))
    token = export.export_download_token(ExportJob.objects.get(user=user))
    client.force_login(UserFactory())
    answer = client.get(reverse("privacy:export_download", args=[token]))
    assert answer.status_code == 403
    assert b"another account" in answer.content


def test_an_expired_export_answers_410(owner_client: Client, user: User) -> None:
    owner_client.post(reverse("privacy:export"))
    job = ExportJob.objects.get(user=user)
    token = export.export_download_token(job)
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now())
    answer = owner_client.get(reverse("privacy:export_download", args=[token]))
    assert answer.status_code == 410
    assert b"expired" in answer.content


def test_an_old_link_signature_answers_410(owner_client: Client, user: User, settings) -> None:  # type: ignore[no-untyped-def]
    owner_client.post(reverse("privacy:export"))
    job = ExportJob.objects.get(user=user)
    old = signing.TimestampSigner(salt=export.SIGNING_SALT)
    token = export.export_download_token(job)
    settings.EXPORT_TTL = timezone.timedelta(seconds=-1)
    answer = owner_client.get(reverse("privacy:export_download", args=[token]))
    assert answer.status_code == 410
    assert old is not None


def test_purge_removes_expired_export_files(user: User) -> None:
    export.export_request(user=user)
    job = ExportJob.objects.get(user=user)
    export.export_build(job_id=job.pk)
    job.refresh_from_db()
    name = job.file.name
    storage = job.file.storage
    assert storage.exists(name)
    assert export.export_jobs_purge(now=job.expires_at) == 1
    assert not storage.exists(name)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.EXPIRED
