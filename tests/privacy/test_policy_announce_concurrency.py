"""Two workers send the same policy announcement at the same moment, from two real
processes on the same database and to a real SMTP server: everyone gets it once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from pipetower.privacy.models import PolicyNotice
from pipetower.privacy.policy import policy_announce_progress, policy_version_publish
from tests.core._ops import database_url
from tests.factories import UserFactory
from tests.smtp import SmtpSink

pytestmark = pytest.mark.django_db(transaction=True)

SEND = """
import sys, time
import django
django.setup()
from pipetower.privacy.policy import policy_announce_send

start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
print("done", policy_announce_send(number=int(sys.argv[1]), batch=5), flush=True)
"""


def test_two_workers_sending_at_once_email_everyone_once(smtp_sink: SmtpSink) -> None:
    staff = UserFactory(email="staff@pipetower.example", is_staff=True)
    for n in range(24):
        UserFactory(email=f"person{n}@example.com", date_joined=timezone.now() - timedelta(days=1))
    version = policy_version_publish(
        staff=staff, text="Policy", summary="Retention changed.", significant=True
    )
    # Tasks run at once in the test process (eager): the announcement already went to
    # the test mail outbox. Put the rows back to "not sent" for the two workers.
    assert PolicyNotice.objects.filter(version=version, sent_at__isnull=False).count() == 25
    PolicyNotice.objects.update(claimed_at=None, sent_at=None)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PIPETOWER_DATA_DIR": str(settings.DATA_DIR),
        "PIPETOWER_EMAIL": "smtp",
        "EMAIL_HOST": smtp_sink.host,
        "EMAIL_PORT": str(smtp_sink.port),
    }
    start = time.time() + 3  # both processes are set up by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SEND, str(version.number), str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        results = [process.communicate(timeout=90) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    outputs = []
    for (out, err), process in zip(results, processes, strict=True):
        assert process.returncode == 0, err[-2000:]
        outputs.append(out.strip().splitlines()[-1])
    # The first to run out of rows may stop while the other still sends its last
    # claimed one (it would retry later); the last to finish sees everything sent.
    assert "done 25 / 25" in outputs, outputs

    delivered = Counter(d.rcpt_tos[0] for d in smtp_sink.wait_for(25))
    assert len(delivered) == 25 and set(delivered.values()) == {1}, delivered.most_common(3)
    assert str(policy_announce_progress(number=version.number)) == "25 / 25"
