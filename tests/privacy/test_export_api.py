"""`/me/exports`: the data export through the API, with the page's rules."""

from __future__ import annotations

import pytest
from django.test import Client

from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.privacy.models import ExportJob
from tests.api.helpers import Api
from tests.factories import UserFactory
from tests.privacy.test_export import open_zip, validate_archive


@pytest.fixture
def api(user, team) -> Api:
    return Api(Client(), api_token_create(user=user, name="export", scope="write")[1])


def test_an_export_is_requested_built_and_downloaded(api, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        asked = api.post("/me/exports")

    assert asked.status_code == 202
    export_id = asked.json()["id"]
    state = api.get(f"/me/exports/{export_id}").json()
    assert state["status"] == "ready"  # tasks run eagerly in tests
    assert state["downloadable"] is True
    assert [item["id"] for item in api.get("/me/exports").json()["items"]] == [export_id]
    answer = api.get(f"/me/exports/{export_id}/download")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    validate_archive(open_zip(b"".join(answer.streaming_content)))
    assert AuditEvent.objects.filter(verb="privacy.export_downloaded", actor=user).exists()


def test_a_second_export_while_one_is_building_is_a_conflict(api, user):
    ExportJob.objects.create(user=user, status=ExportJob.Status.BUILDING, progress=40)

    refused = api.post("/me/exports")

    assert refused.status_code == 409
    assert "already being built" in refused.json()["error"]["message"]
    building = ExportJob.objects.get(user=user)
    early = api.get(f"/me/exports/{building.pk}/download")
    assert early.status_code == 409


def test_someone_elses_export_is_not_found(api, user):
    theirs = ExportJob.objects.create(user=UserFactory(), status=ExportJob.Status.READY)

    assert api.get(f"/me/exports/{theirs.pk}").status_code == 404
    assert api.get(f"/me/exports/{theirs.pk}/download").status_code == 404


def test_a_token_for_one_team_cannot_export_everything(user, team):
    limited = Api(Client(), api_token_create(user=user, name="one", scope="write", team=team)[1])

    refused = limited.post("/me/exports")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "token_team_scope"
    assert limited.get("/me/exports").status_code == 403
    assert not ExportJob.objects.exists()
