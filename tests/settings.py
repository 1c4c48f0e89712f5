"""Settings for the test suite: the real settings, with a few test-only overrides.

DATABASE_URL, BROKER_URL and CACHE_URL are honoured, so `make test` runs against
SQLite by default and against PostgreSQL and Redis when they are set.
"""

import os
import tempfile

os.environ.setdefault("PIPETOWER_DATA_DIR", tempfile.mkdtemp(prefix="pipetower-test-"))

from pipetower.config.settings import *  # noqa: F403
from pipetower.config.settings import CACHE_URL, DATA_DIR, DATABASES, INSTALLED_APPS

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
