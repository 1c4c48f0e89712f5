"""A webhook with real parts: a signed delivery over HTTP to a real `pipetower web`
starts a run that a real Celery worker carries out on a real sshd, with the
value taken from the body; the same delivery sent again, and one signed with
another secret, start nothing; two copies of a delivery sent at the same
moment start one run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipetower.actions import webhooks
from pipetower.actions.models import Run, RunStatus, WebhookDelivery
from tests.actions.conftest import add_server, output_of
from tests.actions.test_worker import Worker, purge_filesystem_queue, wait_for
from tests.webproc import running_web, shared_database_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_signed_delivery_over_http_runs_the_action_on_a_real_server_once(
    team, user, sshd, make_action
):
    purge_filesystem_queue()
    server = add_server(team, user, sshd, name="web-1")
    action = make_action(
        'echo "deploying $PT_PARAM_REF"',
        parameters=[{"name": "ref", "kind": "string", "required": True}],
    )
    hook, secret = webhooks.webhook_create(
        action=action,
        actor=user,
        name="on push",
        server_ids=[server.pk],
        mapping={"ref": "ref"},
    )
    body = json.dumps({"ref": "refs/heads/main", "pusher": {"name": "ada"}}).encode()
    signed = {
        "X-Hub-Signature-256": webhooks.signature_for(secret, body),
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    worker = Worker()
    try:
        with running_web(shared_database_env(), workers=1) as base:
            url = f"{base}/hooks/{hook.token}/"
            status, answer = post(url, body, signed)
            assert status == 202, answer
            run = Run.objects.get()
            assert answer == {"run_id": run.pk, "url": f"/teams/{team.slug}/runs/{run.pk}/"}
            wait_for(
                lambda: Run.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists(),
                timeout=60,
                what="the webhook's run",
            )
            assert post(url, body, signed)[0] == 409
            forged = {**signed, "X-Hub-Signature-256": webhooks.signature_for("guess", body)}
            forged["X-GitHub-Delivery"] = "another-id"
            assert post(url, body, forged)[0] == 401
            twin = {**signed, "X-GitHub-Delivery": "sent-twice-at-once"}
            with ThreadPoolExecutor(max_workers=2) as pool:
                statuses = sorted(pool.map(lambda _: post(url, body, twin)[0], range(2)))
            assert statuses == [202, 409]
            wait_for(
                lambda: not Run.objects.exclude(status=RunStatus.SUCCEEDED).exists(),
                timeout=60,
                what="the second delivery's run",
            )
    finally:
        worker.stop()
        purge_filesystem_queue()
    assert Run.objects.count() == 2
    for run in Run.objects.all():
        assert (run.trigger, run.webhook_id) == (Run.Trigger.WEBHOOK, hook.pk)
        assert output_of(run.targets.get()) == "deploying refs/heads/main\n"
    statuses = sorted(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == [202, 202, 401, 409, 409]
