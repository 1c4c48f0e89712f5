"""Requests one route as one caller, each inside a savepoint that is rolled back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.test import Client

from pipetower.actions.models import Action, OutputChunk, Run, RunTarget, Schedule, Webhook
from pipetower.api.models import ApiToken
from pipetower.notifications.models import NotificationRule
from pipetower.servers.models import Server, TeamSshKey
from pipetower.teams.models import Invitation, Membership, Team
from tests.security.seed import Seed


class _Rollback(Exception):
    pass


@dataclass
class Answer:
    status: int
    body: str
    location: str
    changed: bool


def snapshot(seed: Seed) -> str:
    """Every row about team A (secrets as stored), as one comparable string."""
    team = seed.team
    parts: list[Any] = [
        list(Team.objects.filter(pk=team.pk).values("name", "slug")),
        list(Membership.objects.filter(team=team).order_by("pk").values("user_id", "role")),
        list(Server.objects.filter(team=team).order_by("pk").values()),
        list(TeamSshKey.objects.filter(team=team).order_by("pk").values("pk", "state")),
        list(Action.objects.filter(team=team).order_by("pk").values()),
        list(Run.objects.filter(team=team).order_by("pk").values("pk", "status")),
        list(RunTarget.objects.filter(run__team=team).order_by("pk").values("pk", "status")),
        list(OutputChunk.objects.filter(run_target__run__team=team).values_list("pk", flat=True)),
        list(Schedule.objects.filter(team=team).order_by("pk").values()),
        list(Webhook.objects.filter(team=team).order_by("pk").values()),
        list(NotificationRule.objects.filter(team=team).order_by("pk").values()),
        list(
            Invitation.objects.filter(team=team)
            .order_by("pk")
            .values("pk", "email", "role", "revoked_at")
        ),
        list(ApiToken.objects.filter(user=seed.users["owner"]).values("pk", "revoked_at")),
    ]
    return json.dumps(parts, default=str, sort_keys=True)


def _client(seed: Seed, caller: str) -> Client:
    """One signed-in client per caller for the whole matrix (signing in once, outside
    the savepoints, so a rolled-back request cannot undo it)."""
    if caller not in seed.clients:
        client = Client()
        if caller != "anonymous":
            client.force_login(seed.users[caller])
        seed.clients[caller] = client
    return seed.clients[caller]  # type: ignore[no-any-return]


def ask(
    seed: Seed, caller: str, method: str, url: str, *, api: bool, body: dict[str, Any] | None
) -> Answer:
    cache.clear()  # rate-limit counters would otherwise end the matrix early
    headers: dict[str, str] = {}
    if caller != "anonymous" and api:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {seed.tokens[caller]}"
    client = _client(seed, caller if not api else "anonymous")
    answer: Answer | None = None
    try:
        with transaction.atomic():
            before = snapshot(seed) if method != "GET" else ""
            if api:
                response = client.generic(
                    method, url, json.dumps(body or {}), content_type="application/json", **headers
                )
            elif method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, body or {})
            if getattr(response, "streaming", False):
                # Team A's run is finished, so its live stream ends after one event.
                content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
            else:
                content = response.content
            answer = Answer(
                response.status_code,
                content.decode(errors="replace"),
                response.get("Location", ""),
                method != "GET" and snapshot(seed) != before,
            )
            raise _Rollback
    except _Rollback:
        pass
    assert answer is not None
    return answer
