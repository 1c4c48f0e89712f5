"""Settings for the test suite: the real settings, with a few test-only overrides.

DATABASE_URL, BROKER_URL and CACHE_URL are honoured, so `make test` runs against
SQLite by default and against PostgreSQL and Redis when they are set.
"""

import os
import re
import tempfile

# Under pytest-xdist (`make test` runs two test processes) each process gets its own
# data directory (SQLite file, filesystem broker, logs) and its own Redis databases,
# set in the environment so the workers and servers the tests start use them too.
_XDIST = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST and os.environ.get("PIPETOWER_TEST_PROCESS") != _XDIST:
    # Once per test process; the processes it starts inherit the result.
    os.environ["PIPETOWER_TEST_PROCESS"] = _XDIST
    _index = int(_XDIST.removeprefix("gw") or 0)
    os.environ["PIPETOWER_DATA_DIR"] = tempfile.mkdtemp(prefix=f"pipetower-test-{_XDIST}-")
    for _name in ("BROKER_URL", "CACHE_URL"):
        _url = os.environ.get(_name, "")
        _match = re.fullmatch(r"(redis://[^/]*)/(\d+)", _url)
        if _match:
            os.environ[_name] = f"{_match[1]}/{int(_match[2]) + 2 * _index}"
elif not _XDIST:
    os.environ.setdefault("PIPETOWER_DATA_DIR", tempfile.mkdtemp(prefix="pipetower-test-"))

from pipetower.config.settings import *  # noqa: E402, F403
from pipetower.config.settings import CACHE_URL, DATA_DIR, DATABASES, INSTALLED_APPS  # noqa: E402

# Argon2 is deliberately slow (about 180 ms a hash); the tests check its order
# in the real settings and hash with a fast algorithm.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
if not CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A file, not memory, so that worker and web subprocesses started by tests can
# share the test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
ALLOWED_HOSTS = ["*"]
# Test-only models that use EncryptedTextField (tests/cryptotest).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.cryptotest"]
# `pipetower serve` collects static files here; WhiteNoise wants it to exist.
(DATA_DIR / "static").mkdir(exist_ok=True)
# Warm SSH connections stay off unless a test turns them on (tests/actions/test_warm.py):
# an idle connection would outlive the test's sshd and its processes.
ACTIONS_SSH_IDLE_SECONDS = 0
