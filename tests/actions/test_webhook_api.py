"""The webhooks API: the same services, rules and messages as the pages; the
secret is in the answer of a create or a new secret, and nowhere else."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from pipetower.actions import webhooks
from pipetower.actions.models import Run, Webhook
from pipetower.api.services import api_token_create
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server
from tests.api.helpers import Api, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def action(make_action):
    return make_action(
        parameters=[
            {"name": "ref", "kind": "string", "required": True},
            {"name": "token", "kind": "secret"},
        ]
    )


@pytest.fixture
def api(client, user):
    return Api(client, api_token_create(user=user, name="t", scope="write")[1])


def body(**fields):
    data = {
        "name": "on push",
        "targets": ["web-1"],
        "params": {"token": "tok-9"},
        "mapping": {"ref": "ref"},
    }
    data.update(fields)
    return data


def deliver(url: str, secret: str, payload: dict, delivery: str) -> int:
    raw = json.dumps(payload).encode()
    return (
        Client()
        .post(
            url,
            data=raw,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=webhooks.signature_for(secret, raw),
            HTTP_X_PIPETOWER_DELIVERY=delivery,
        )
        .status_code
    )


def test_create_use_change_and_delete_a_webhook(api, team, server, action):
    created = api.post(f"/teams/{team.slug}/actions/{action.pk}/webhooks", body())
    assert created.status_code == 201, created.content
    out = created.json()
    hook = Webhook.objects.get()
    assert out["url"].endswith(f"/hooks/{hook.token}/")
    assert out["secret"] == hook.secret
    assert out["params"] == {"token": "••••••"}
    assert out["mapping"] == {"ref": "ref"} and out["server_ids"] == [server.pk]
    assert deliver(out["url"], out["secret"], {"ref": "main"}, "a-1") == 202
    assert Run.objects.get().started_by_text == "Webhook: on push"

    listed = api.get(f"/teams/{team.slug}/webhooks").json()
    assert [h["name"] for h in listed["items"]] == ["on push"]
    assert "secret" not in listed["items"][0]
    shown = api.get(f"/teams/{team.slug}/webhooks/{hook.pk}").json()
    assert "secret" not in shown and out["secret"] not in json.dumps(shown)

    changed = api.patch(
        f"/teams/{team.slug}/webhooks/{hook.pk}", {"require_signature": False, "params": {}}
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["require_signature"] is False
    hook.refresh_from_db()
    assert hook.secret_param_values() == {"token": "tok-9"}  # left out: kept

    renewed = api.post(f"/teams/{team.slug}/webhooks/{hook.pk}/secret", {})
    assert renewed.status_code == 200
    assert renewed.json()["secret"] not in (out["secret"], "")

    assert api.delete(f"/teams/{team.slug}/webhooks/{hook.pk}").status_code == 204
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"targets": []}, "Choose at least one server or tag to run on."),
        ({"mapping": {}}, "Parameter ref is required."),
        ({"mapping": {"ref": "a b"}}, "is not a path in the body"),
        ({"mapping": {"nope": "ref"}}, "Unknown parameter 'nope'"),
        ({"params": {"ref": "main"}}, "has a fixed value and is taken from the body"),
    ],
)
def test_bad_input_is_refused_with_the_pages_message(api, team, server, action, fields, message):
    answer = api.post(f"/teams/{team.slug}/actions/{action.pk}/webhooks", body(**fields))
    assert answer.status_code == 400
    assert message in error_of(answer)["message"]
    assert not Webhook.objects.exists()


def test_a_viewer_reads_webhooks_without_their_url_and_cannot_create_one(
    client, team, server, action, user, make_member
):
    hook, _ = webhooks.webhook_create(
        action=action, actor=user, name="on push", server_ids=[server.pk], mapping={"ref": "ref"}
    )
    viewer = make_member(Role.VIEWER)
    api = Api(client, api_token_create(user=viewer, name="v", scope="write")[1])
    shown = api.get(f"/teams/{team.slug}/webhooks/{hook.pk}").json()
    assert shown["url"] is None and hook.token not in json.dumps(shown)
    refused = api.post(f"/teams/{team.slug}/actions/{action.pk}/webhooks", body(name="x"))
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": ""}, 422, "name"),
        ({"name": "x" * 101}, 422, "name"),
        ({"mapping": ["ref"]}, 422, "mapping"),
        ({"targets": ["no-such-server"]}, 404, "no-such-server"),
        ({"server_ids": [999999], "targets": []}, 404, "999999"),
        ({"require_signature": "maybe"}, 422, "require_signature"),
    ],
)
def test_malformed_fields_are_refused_naming_them(
    api, team, server, action, fields, status, message
):
    answer = api.post(f"/teams/{team.slug}/actions/{action.pk}/webhooks", body(**fields))
    assert answer.status_code == status, answer.content
    assert message in json.dumps(error_of(answer))
    assert not Webhook.objects.exists()
