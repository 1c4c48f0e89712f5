"""API request limits hold under concurrency: one atomic increment per request.

The limit is counted in Redis when CACHE_URL is Redis (scale-out) and in a
small SQLite file in the data directory otherwise (embedded default); the same
tests run in both configurations.
"""

from __future__ import annotations

import http.client
import math
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from pipetower.core import ratelimit
from pipetower.core.ratelimit import RequestLimit, SqliteCounterStore
from tests.factories import UserFactory
from tests.webproc import running_web, shared_database_env

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 25
WINDOW = 3600
PROCESSES = 4
THREADS = 8
REQUESTS_PER_THREAD = 6  # 4 x 8 x 6 = 192 requests, far beyond the limit

# The client processes are forked from pytest (they only make HTTP requests).
pytestmark = pytest.mark.filterwarnings("ignore:This process.*multi-threaded:DeprecationWarning")


def _get(port: int, token: str) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        conn.close()


def _hammer(port: int, token: str) -> list[tuple[int, str | None]]:
    """One client process: THREADS threads, each making REQUESTS_PER_THREAD requests."""
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_get, port, token) for _ in range(THREADS * REQUESTS_PER_THREAD)]
        return [f.result() for f in futures]


@pytest.fixture
def served(transactional_db: None) -> Iterator[int]:
    """The port of a real `pipetower web` (two web processes, four threads each) on the
    test database, with a limit of LIMIT API requests an hour per person."""
    env = shared_database_env(PIPETOWER_API_RATE_LIMIT=f"{LIMIT}/h", PIPETOWER_LOG_LEVEL="ERROR")
    with running_web(env, workers=2, threads=4) as base:
        yield int(base.rsplit(":", 1)[1])


def test_concurrent_requests_with_one_token_never_exceed_the_limit(served: int) -> None:
    user = UserFactory()
    _token, raw = api_token_create(user=user, name="load", scope=ApiToken.Scope.READ)

    started = time.time()
    with ProcessPoolExecutor(PROCESSES) as pool:
        results = [
            answer
            for chunk in pool.map(_hammer, [served] * PROCESSES, [raw] * PROCESSES)
            for answer in chunk
        ]
    ended = time.time()

    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    # Windows are fixed (multiples of an hour since the epoch): a run that crosses
    # the hour may use two windows' allowance, never more.
    windows = math.floor(ended / WINDOW) - math.floor(started / WINDOW) + 1
    assert statuses.count(200) <= LIMIT * windows
    assert statuses.count(200) >= LIMIT  # and every allowed request was let through
    retry_after = [int(value) for status, value in results if status == 429 and value]
    assert len(retry_after) == statuses.count(429)
    assert all(1 <= wait <= WINDOW for wait in retry_after)


def test_a_request_limit_answers_the_seconds_left_in_its_window(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = RequestLimit("test-window", "2/m")
    monkeypatch.setattr("pipetower.core.ratelimit.time.time", lambda: 6_000_015.0)

    assert limit.check("someone") == 0
    assert limit.check("someone") == 0
    assert limit.check("someone") == 45  # the minute started at 6,000,000 ends at 6,000,060
    assert limit.check("someone else") == 0

    monkeypatch.setattr("pipetower.core.ratelimit.time.time", lambda: 6_000_060.0)
    assert limit.check("someone") == 0  # a new window


def test_the_sqlite_store_counts_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "counts.sqlite3")
    with ProcessPoolExecutor(4) as pool:
        counts = [c for chunk in pool.map(_count_in_process, [path] * 4) for c in chunk]

    # 4 processes x 50 hits: every count from 1 to 200 handed out exactly once.
    assert sorted(counts) == list(range(1, 201))


def _count_in_process(path: str) -> list[int]:
    store = SqliteCounterStore(path)
    return [store.hit("shared", 3600)[0] for _ in range(50)]


def test_limits_fail_open_with_a_warning_when_the_store_does_not_answer(
    db: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # A store whose file cannot be opened stands for any store that does not answer.
    monkeypatch.setattr(ratelimit, "_store", SqliteCounterStore(str(tmp_path / "no" / "x.db")))
    monkeypatch.setattr(ratelimit, "_last_warning", -1e9)
    limit = RequestLimit("test-down", "1/m")

    with caplog.at_level("WARNING", logger="pipetower.core.ratelimit"):
        assert [limit.check("someone") for _ in range(3)] == [0, 0, 0]

    warnings = [r for r in caplog.records if "not enforced" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per request
