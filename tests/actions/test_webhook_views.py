"""The webhook pages: creating a webhook from an action (its secret shown once),
the list and its empty state, a hook's page with its last deliveries, editing,
a new secret, deleting, and how a run says a webhook started it."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from pipetower.actions import webhooks
from pipetower.actions.models import Run, Webhook
from pipetower.teams.models import Role
from tests.actions.conftest import pinned_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(team):
    return pinned_server(team, "web-1", port=9)


@pytest.fixture
def action(make_action):
    return make_action(
        "echo hi",
        parameters=[
            {"name": "ref", "kind": "string", "required": True},
            {"name": "token", "kind": "secret"},
        ],
    )


def url(name, team, *args):
    return reverse(name, args=[team.slug, *args])


def form_data(server, **overrides):
    data = {
        "name": "on push",
        "enabled": "on",
        "require_signature": "on",
        "servers": [server.pk],
        "param_ref": "",
        "path_ref": "ref",
        "param_token": "tok-123",
        "path_token": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def errors_of(response):
    return re.findall(
        r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S
    )


def secret_on(page) -> str:
    match = re.search(r'<code id="hook-secret">([^<]+)</code>', page.content.decode())
    assert match, "the secret is shown"
    return match.group(1)


def test_the_list_says_what_a_webhook_is_when_there_is_none(owner_client, team):
    page = owner_client.get(url("webhooks:list", team))
    assert page.status_code == 200
    assert "No webhooks yet" in page.content.decode()


def test_creating_a_webhook_shows_its_url_and_secret_once(owner_client, team, server, action):
    page = owner_client.get(url("actions:detail", team, action.pk))
    assert "No webhook runs this action." in page.content.decode()
    assert owner_client.get(url("actions:webhook_create", team, action.pk)).status_code == 200
    created = owner_client.post(url("actions:webhook_create", team, action.pk), form_data(server))
    assert created.status_code == 201
    hook = Webhook.objects.get()
    secret = secret_on(created)
    assert f"/hooks/{hook.token}/" in created.content.decode()
    assert hook.mapping == {"ref": "ref"}
    assert hook.secret_param_values() == {"token": "tok-123"}
    detail = owner_client.get(url("webhooks:detail", team, hook.pk))
    assert secret not in detail.content.decode()
    assert "tok-123" not in detail.content.decode()
    assert "No delivery in the last 24 hours." in detail.content.decode()
    # The secret shown works.
    body = json.dumps({"ref": "main"}).encode()
    answer = Client().post(
        f"/hooks/{hook.token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=webhooks.signature_for(secret, body),
        HTTP_X_GITHUB_DELIVERY="page-1",
    )
    assert answer.status_code == 202
    run = Run.objects.get()
    assert run.params["ref"] == "main" and run.secret_param_values() == {"token": "tok-123"}
    detail = owner_client.get(url("webhooks:detail", team, hook.pk)).content.decode()
    assert f"Run #{run.pk}" in detail and "page-1" in detail
    run_page = owner_client.get(url("runs:detail", team, run.pk)).content.decode()
    assert "Webhook: " in run_page and "on push</a>" in run_page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"servers": None}, "Choose at least one server or tag to run on."),
        ({"path_ref": ""}, "Parameter ref is required."),
        ({"path_ref": "head commit"}, "is not a path in the body"),
        ({"param_ref": "main"}, "has a fixed value and is taken from the body"),
    ],
)
def test_bad_input_on_the_form_is_shown_with_what_is_wrong(
    owner_client, team, server, action, overrides, message
):
    response = owner_client.post(
        url("actions:webhook_create", team, action.pk), form_data(server, **overrides)
    )
    assert response.status_code == 400
    assert any(message in error for error in errors_of(response)), errors_of(response)
    assert not Webhook.objects.exists()


def test_editing_keeps_the_stored_secret_value_and_the_secret(
    owner_client, team, server, action, user
):
    hook, secret = webhooks.webhook_create(
        action=action,
        actor=user,
        name="on push",
        server_ids=[server.pk],
        values={"token": "tok-123"},
        mapping={"ref": "ref"},
    )
    form = owner_client.get(url("webhooks:edit", team, hook.pk)).content.decode()
    assert "tok-123" not in form and 'value="ref"' in form
    response = owner_client.post(
        url("webhooks:edit", team, hook.pk),
        form_data(server, name="on tag", param_token="", keep_token="on", require_signature=None),
    )
    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.name == "on tag" and not hook.require_signature
    assert hook.secret_param_values() == {"token": "tok-123"}
    assert hook.secret == secret


def test_a_new_secret_is_shown_once_and_replaces_the_old(owner_client, team, server, action, user):
    hook, old = webhooks.webhook_create(
        action=action, actor=user, name="on push", server_ids=[server.pk], mapping={"ref": "ref"}
    )
    assert owner_client.get(url("webhooks:secret", team, hook.pk)).status_code == 405
    page = owner_client.post(url("webhooks:secret", team, hook.pk))
    assert page.status_code == 200
    new = secret_on(page)
    assert new != old
    hook.refresh_from_db()
    assert hook.secret == new


def test_deleting_a_webhook(owner_client, team, server, action, user):
    hook, _ = webhooks.webhook_create(
        action=action, actor=user, name="on push", server_ids=[server.pk], mapping={"ref": "ref"}
    )
    confirm = owner_client.get(url("webhooks:delete", team, hook.pk))
    assert "Delete the webhook “on push”?" in confirm.content.decode()
    response = owner_client.post(url("webhooks:delete", team, hook.pk))
    assert response.status_code == 302
    assert not Webhook.objects.exists()


def test_a_viewer_sees_the_webhook_but_not_its_url_or_controls(
    client, team, server, action, user, make_member
):
    hook, _ = webhooks.webhook_create(
        action=action, actor=user, name="on push", server_ids=[server.pk], mapping={"ref": "ref"}
    )
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)
    page = client.get(url("webhooks:detail", team, hook.pk)).content.decode()
    assert "on push" in page
    assert hook.token not in page
    assert url("webhooks:edit", team, hook.pk) not in page
    assert client.get(url("webhooks:edit", team, hook.pk)).status_code == 403
    assert client.post(url("webhooks:secret", team, hook.pk)).status_code == 403
