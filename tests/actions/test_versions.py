"""An action's history: numbered versions, the run's version, the diff page, restore, API."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pipetower.actions import services
from pipetower.actions.models import Action, ActionVersion, Run
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server
from tests.api.helpers import Api, error_of

pytestmark = pytest.mark.django_db

SECRET = "Zq-version-secret-4411"
PARAMS = [
    {"name": "version", "kind": "string", "default": "1.0"},
    {"name": "token", "kind": "secret", "default": SECRET},
]


@pytest.fixture
def action(team, user):
    return services.action_create(
        team=team, actor=user, name="Deploy", script="echo one\n", parameters=PARAMS
    )


def numbers(action):
    return list(action.versions.order_by("number").values_list("number", "changes"))


def test_creation_is_version_1_and_each_change_to_what_runs_adds_the_next(action, user):
    assert numbers(action) == [(1, [])]
    assert action.current_version == 1

    # Neither a rename nor the same content again makes a version.
    services.action_update(action=action, actor=user, name="Deploy app", description="Ships")
    services.action_update(action=action, actor=user, script="echo one\n", parameters=PARAMS)
    services.action_update(action=action, actor=user, timeout_seconds=300)
    assert numbers(action) == [(1, [])]

    services.action_update(action=action, actor=user, script="echo two\n", timeout_seconds=60)
    new_secret = [PARAMS[0], {**PARAMS[1], "default": "other-secret"}]
    services.action_update(action=action, actor=user, parameters=new_secret)

    assert numbers(action) == [(1, []), (2, ["script", "timeout"]), (3, ["secret defaults"])]
    action.refresh_from_db()
    assert action.current_version == 3
    v2 = action.versions.get(number=2)
    assert (v2.script, v2.timeout_seconds, v2.created_by) == ("echo two\n", 60, user)
    assert v2.secret_default_values() == {"token": SECRET}
    audit = AuditEvent.objects.filter(verb="action.updated").order_by("-id").first()
    assert audit is not None and audit.data["version"] == 3


def test_a_run_records_its_version_and_its_page_links_it(action, user, team, owner_client):
    server = pinned_server(team, "web-1", port=9)
    services.action_update(action=action, actor=user, script="echo two\n")
    run = services.run_start(
        action=action, actor=user, server_ids=[server.pk], values={"version": "2"},
        default_params=True,
    )  # fmt: skip
    assert run.version_number == 2

    page = owner_client.get(reverse("runs:detail", args=[team.slug, run.pk]))
    version_url = reverse("actions:version", args=[team.slug, action.pk, 2])
    assert f'<a href="{version_url}">version 2</a>' in page.content.decode()

    # Run again after a change: the form says which version it starts and links the diff.
    Run.objects.filter(pk=run.pk).update(status="succeeded")
    services.action_update(action=action, actor=user, script="echo three\n")
    again = owner_client.get(reverse("runs:again", args=[team.slug, run.pk])).content.decode()
    diff_url = reverse("actions:version", args=[team.slug, action.pk, 3]) + "?against=2"
    assert f'the run had version 2: <a href="{diff_url}">what changed</a>' in again


def test_the_version_page_shows_the_diff_escaped_and_never_a_secret_default(
    action, user, team, owner_client
):
    services.action_update(
        action=action,
        actor=user,
        script="echo <b>two</b>\n",
        concurrency=3,
        parameters=[{**PARAMS[0], "default": "2.0"}, {**PARAMS[1], "default": "new-secret"}],
    )
    page = owner_client.get(reverse("actions:version", args=[team.slug, action.pk, 2]))
    html = page.content.decode()

    assert page.status_code == 200
    assert '<span class="diff-del">-echo one</span>' in html
    assert '<span class="diff-add">+echo &lt;b&gt;two&lt;/b&gt;</span>' in html
    assert "<b>two</b>" not in html
    assert "Servers at once: 10 → 3." in html
    assert "version: default “1.0” → “2.0”." in html
    assert "token: the secret default changed (not shown)." in html
    assert SECRET not in html and "new-secret" not in html

    # Any two versions: against a later one too; a version that does not exist is said so.
    back = owner_client.get(
        reverse("actions:version", args=[team.slug, action.pk, 1]), {"against": "2"}
    )
    assert "Changes from version 2" in back.content.decode()
    wrong = owner_client.get(
        reverse("actions:version", args=[team.slug, action.pk, 2]), {"against": "<9>"}
    )
    assert wrong.status_code == 400
    assert "There is no version &lt;9&gt; to compare with" in wrong.content.decode()

    history = owner_client.get(reverse("actions:history", args=[team.slug, action.pk]))
    text = history.content.decode()
    assert 'Version 2</a> <span class="badge">current</span>' in text
    assert "script, parameters, secret defaults, servers at once" in text
    assert "Ada Lovelace" in text


def test_restore_adds_a_version_with_the_old_content_and_is_audited(action, user, team):
    services.action_update(
        action=action, actor=user, script="echo two\n", run_as="deploy", parameters=[]
    )
    restored = services.action_version_restore(action=action, number=1, actor=user)

    action.refresh_from_db()
    assert restored.number == 3 and restored.restored_from == 1
    assert (action.script, action.run_as, action.current_version) == ("echo one\n", "", 3)
    assert action.secret_default_values() == {"token": SECRET}
    assert [p["name"] for p in action.parameters] == ["version", "token"]
    assert numbers(action)[:2] == [
        (1, []),
        (2, ["script", "parameters", "secret defaults", "run as"]),
    ]
    event = AuditEvent.objects.get(verb="action.version_restored")
    assert (event.data["restored"], event.data["version"]) == (1, 3)

    with pytest.raises(Conflict, match="nothing to restore"):
        services.action_version_restore(action=action, number=1, actor=user)
    assert action.versions.count() == 3


def test_only_who_can_change_actions_restores(action, user, team, make_member):
    services.action_update(action=action, actor=user, script="echo two\n")
    operator = make_member(Role.OPERATOR)
    with pytest.raises(NotAllowed):
        services.action_version_restore(action=action, number=1, actor=operator)

    client = Client()
    client.force_login(operator)
    restore_url = reverse("actions:version_restore", args=[team.slug, action.pk, 1])
    assert client.post(restore_url).status_code == 403
    page = client.get(reverse("actions:version", args=[team.slug, action.pk, 1]))
    assert page.status_code == 200 and b"Restore this version" not in page.content
    assert action.versions.count() == 2

    admin = Client()
    admin.force_login(make_member(Role.ADMIN))
    done = admin.post(restore_url, follow=True)
    assert b"Version 1 restored: the action now runs it as version 3." in done.content
    again = admin.post(restore_url, follow=True)
    assert b"nothing to restore" in again.content
    assert action.versions.count() == 3


def test_the_api_lists_gets_and_restores_versions(action, user, team, client, make_member):
    api = Api(client, api_token_create(user=user, name="t", scope=ApiToken.Scope.WRITE)[1])
    base = f"/teams/{team.slug}/actions/{action.pk}"
    assert api.patch(base, {"script": "echo two"}).json()["current_version"] == 2

    listed = api.get(f"{base}/versions?page_size=1")
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 2 and body["next"]
    assert body["items"] == [
        {
            "number": 2,
            "created_at": body["items"][0]["created_at"],
            "created_by": "ada@example.com",
            "changes": ["script"],
            "restored_from": None,
            "current": True,
        }
    ]
    one = api.get(f"{base}/versions/1").json()
    assert one["script"] == "echo one\n" and one["current"] is False
    assert one["parameters"][1]["default"] is None and SECRET not in str(one)
    assert error_of(api.get(f"{base}/versions/9"))["code"] == "not_found"

    operator_token = api_token_create(user=make_member(Role.OPERATOR), name="o", scope="write")
    operator = Api(client, operator_token[1])
    assert operator.post(f"{base}/versions/1/restore").status_code == 403
    restored = api.post(f"{base}/versions/1/restore")
    assert restored.status_code == 201
    assert (restored.json()["number"], restored.json()["restored_from"]) == (3, 1)
    assert error_of(api.post(f"{base}/versions/3/restore"))["code"] == "conflict"

    server = pinned_server(team, "web-1", port=9)
    run = api.post(
        f"{base}/runs",
        {"server_ids": [server.pk], "params": {"version": "1"}, "default_params": True},
    )
    assert run.json()["version_number"] == 3
    assert api.get(f"/teams/{team.slug}/runs/{run.json()['id']}").json()["version_number"] == 3

    with CaptureQueriesContext(connection) as three:
        assert api.get(f"{base}/versions").json()["count"] == 3
    for script in ("echo 4", "echo 5", "echo 6"):
        services.action_update(action=action, actor=make_member(Role.ADMIN), script=script)
    with CaptureQueriesContext(connection) as six:
        assert api.get(f"{base}/versions").json()["count"] == 6
    assert len(six) == len(three)  # a page of versions costs the same whatever it holds


def test_the_upgrade_gives_existing_actions_a_first_version_with_their_secrets(action):
    ActionVersion.objects.all().delete()
    # Found by name, whatever number the migration ends up with.
    folder = Path(importlib.import_module("pipetower.actions.migrations").__file__ or "").parent
    [path] = folder.glob("*_action_versions.py")
    migration = importlib.import_module(f"pipetower.actions.migrations.{path.stem}")

    migration.first_versions(apps, None)

    [first] = ActionVersion.objects.all()
    assert (first.number, first.script, first.created_by) == (1, "echo one\n", None)
    assert first.secret_default_values() == {"token": SECRET}
    assert Action.objects.get(pk=action.pk).current_version == 1


def test_the_edit_form_says_when_a_save_made_a_version(team, owner_client):
    form = {
        "name": "Backup",
        "script": "echo one",
        "timeout_seconds": "300",
        "concurrency": "10",
        **{f"params-{k}": v for k, v in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))},
    }
    owner_client.post(reverse("actions:create", args=[team.slug]), form)
    action = Action.objects.get(team=team, name="Backup")
    edit = reverse("actions:edit", args=[team.slug, action.pk])

    changed = owner_client.post(edit, {**form, "script": "echo two"}, follow=True)
    same = owner_client.post(edit, {**form, "script": "echo two"}, follow=True)

    assert "Action “Backup” saved as version 2." in changed.content.decode()
    assert "Action “Backup” saved." in same.content.decode()
    assert numbers(action) == [(1, []), (2, ["script"])]
