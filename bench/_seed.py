"""A history to measure pages against: one team, 20 servers, 3 actions and 200
finished runs: 199 over 4 servers each and, newest, one over 20 servers for
the run page, with a few lines of output per server. Rows are written directly
(no SSH): the pages read history, they do not care how it was made.

Call `seed()` after `_env.prepare(...)` (Django set up, database migrated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

RUNS = 200
TARGETS_PER_RUN = 4
RUN_PAGE_TARGETS = 20


@dataclass
class Seeded:
    team: str
    run_id: int
    token: str
    session_cookie: str  # "name=value"
    user_id: int


def seed() -> Seeded:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from pipetower.actions.models import Action, OutputChunk, Run, RunTarget
    from pipetower.api.models import ApiToken
    from pipetower.api.services import api_token_create
    from pipetower.servers.models import Server
    from pipetower.teams.models import Membership, Role
    from tests.factories import TeamFactory, UserFactory

    user = UserFactory(email="bench@example.com", name="Bench Owner")
    team = TeamFactory(slug="bench", name="Bench")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    servers = [
        Server.objects.create(
            team=team, name=f"web-{n:02d}", host="127.0.0.1", port=9, username="deploy"
        )
        for n in range(RUN_PAGE_TARGETS)
    ]
    actions = [
        Action.objects.create(team=team, name=f"action-{n}", script="uname -a", created_by=user)
        for n in range(3)
    ]
    now = timezone.now()

    def make_run(index: int, server_count: int) -> Run:
        action = actions[index % len(actions)]
        created = now - timedelta(minutes=RUNS - index)
        run = Run.objects.create(
            team=team,
            action=action,
            action_name=action.name,
            script=action.script,
            timeout_seconds=300,
            concurrency=10,
            status="succeeded" if index % 7 else "failed",
            started_by=user,
            created_at=created,
            finished_at=created + timedelta(seconds=3 + index % 5),
            params={"version": str(index)},
        )
        targets = RunTarget.objects.bulk_create(
            RunTarget(
                run=run,
                server=server,
                server_name=server.name,
                status="succeeded" if (index + n) % 7 else "failed",
                exit_code=0 if (index + n) % 7 else 1,
                started_at=created,
                finished_at=created + timedelta(seconds=2),
                last_seq=3,
                output_bytes=120,
            )
            for n, server in enumerate(servers[:server_count])
        )
        OutputChunk.objects.bulk_create(
            OutputChunk(
                run_target=target, seq=seq, stream="stdout", data=f"line {seq} of {index}\n"
            )
            for target in targets
            for seq in (1, 2, 3)
        )
        return run

    for index in range(RUNS - 1):
        make_run(index, TARGETS_PER_RUN)
    big = make_run(RUNS - 1, RUN_PAGE_TARGETS)

    _token, raw = api_token_create(user=user, name="bench", scope=ApiToken.Scope.READ)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return Seeded(
        team=team.slug,
        run_id=big.pk,
        token=raw,
        session_cookie=f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
        user_id=user.pk,
    )
