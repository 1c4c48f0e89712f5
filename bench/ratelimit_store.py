"""Benchmark: the cost of one rate-limit increment in each counter store.

    .venv/bin/python bench/ratelimit_store.py [redis://127.0.0.1:6379/9]

The SQLite store (embedded default) alone and with 4 processes counting on the
same key at once; the Redis store when a URL is given. Reports wall time per
increment (µs) and checks that no increment was lost.
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HITS = 5000


def run_sqlite(path: str) -> tuple[float, int]:
    from pipetower.core.ratelimit import SqliteCounterStore

    store = SqliteCounterStore(path)
    store.hit("warm", 3600)
    start = time.perf_counter()
    last = 0
    for _ in range(HITS):
        last = store.hit("shared", 3600)[0]
    return time.perf_counter() - start, last


def run_redis(url: str) -> tuple[float, int]:
    from pipetower.core.ratelimit import RedisCounterStore

    store = RedisCounterStore(url)
    key = f"bench-{time.time()}"
    store.hit(key + "-warm", 3600)
    start = time.perf_counter()
    last = 0
    for _ in range(HITS):
        last = store.hit(key, 3600)[0]
    return time.perf_counter() - start, last


def main() -> None:
    folder = tempfile.mkdtemp(prefix="pipetower-bench-rl-")
    one = run_sqlite(f"{folder}/one.sqlite3")
    print(f"SQLite, 1 process: {one[0] / HITS * 1e6:.0f} µs per increment")
    path = f"{folder}/four.sqlite3"
    start = time.perf_counter()
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(run_sqlite, [path] * 4))
    wall = time.perf_counter() - start
    final = max(last for _, last in results)
    print(
        f"SQLite, 4 processes on one key: {wall / (4 * HITS) * 1e6:.0f} µs per increment "
        f"(wall), {max(t for t, _ in results) / HITS * 1e6:.0f} µs per increment per process; "
        f"final count {final} of {4 * HITS}"
    )
    if len(sys.argv) > 1:
        elapsed, _ = run_redis(sys.argv[1])
        print(f"Redis (MULTI INCR EXPIRE), 1 process: {elapsed / HITS * 1e6:.0f} µs per increment")


if __name__ == "__main__":
    main()
