"""Settings for a Celery worker process started by tests/actions/test_worker.py: the test
settings, on the test database, with tasks really queued and a quick heartbeat."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

# The test database: a file for SQLite (tests/settings.py names it), Django's
# "test_" name for PostgreSQL; under pytest-xdist, with the test process's suffix
# (pytest-django gives each test process its own database, "…_gw1").
_database = DATABASES["default"]
_database["NAME"] = _database.get("TEST", {}).get("NAME") or f"test_{_database['NAME']}"
if os.environ.get("PYTEST_XDIST_WORKER"):
    _database["NAME"] = f"{_database['NAME']}_{os.environ['PYTEST_XDIST_WORKER']}"
CELERY_TASK_ALWAYS_EAGER = False
ACTIONS_HEARTBEAT_SECONDS = 0.5
ACTIONS_CANCEL_GRACE_SECONDS = 1.0
