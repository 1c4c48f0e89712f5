"""Two owners revoke the same support access at the same moment, from two real
processes on the same database: one revokes it, the other is told it already
was; one audit row, one summary email queued."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from pipetower.audit.models import AuditEvent
from pipetower.privacy import support_access
from pipetower.privacy.models import SupportGrant
from pipetower.teams.models import Role
from tests.core._ops import database_url

pytestmark = pytest.mark.django_db(transaction=True)

REVOKE = """
import os, sys, time
import django
django.setup()
from pipetower.accounts.models import User
from pipetower.core.errors import Conflict
from pipetower.privacy import support_access
from pipetower.privacy.models import SupportGrant

grant = SupportGrant.objects.get(pk=int(sys.argv[1]))
actor = User.objects.get(pk=int(sys.argv[2]))
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
try:
    support_access.support_grant_revoke(grant=grant, actor=actor)
except Conflict as refused:
    print("conflict:", refused.message)
else:
    print("revoked", flush=True)
"""


def test_two_owners_revoking_at_once_revoke_it_once(team, user, make_member):
    if connection.vendor != "postgresql":
        # The processes reach the test database through DATABASE_URL, and a SQLite
        # DATABASE_URL gets no IMMEDIATE transactions; the embedded default's
        # SQLite serialises every write anyway. Row locks are PostgreSQL's question.
        pytest.skip("row locking between processes is tested on PostgreSQL")
    second_owner = make_member(Role.OWNER)
    grant = support_access.support_grant_create(
        team=team, actor=user, scope="read", reason="ticket #7", duration=timedelta(days=1)
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PIPETOWER_DATA_DIR": str(settings.DATA_DIR),
        # The summary email is queued on commit: keep it out of a broker here.
        "PIPETOWER_TASKS_EAGER": "true",
    }
    start = time.time() + 3  # both processes are set up by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REVOKE, str(grant.pk), str(actor.pk), str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for actor in (user, second_owner)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    # The last line is the answer (the console mail backend prints the summary before it).
    outputs = sorted(out.strip().splitlines()[-1] if out.strip() else "" for out, _ in results)
    assert outputs == [
        "conflict: This support access was already revoked.",
        "revoked",
    ], [err[-2000:] for _, err in results]
    grant.refresh_from_db()
    assert grant.revoked_by_id in (user.pk, second_owner.pk)
    assert AuditEvent.objects.filter(verb="support.revoked").count() == 1
    assert SupportGrant.objects.get().summary_sent_at is not None
