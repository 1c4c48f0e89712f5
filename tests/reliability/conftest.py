"""Fixtures for reliability tests: real workers, an own Redis, servers behind real sshd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actions.conftest import make_action  # noqa: F401  (fixture)
from tests.reliability.procs import OwnRedis


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A redis-server of this test's own on a free loopback port, to stop and start at will."""
    redis = OwnRedis()
    try:
        yield redis
    finally:
        redis.stop()
