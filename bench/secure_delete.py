"""What PRAGMA secure_delete=ON costs the embedded SQLite database.

Inserts ROWS rows of about 600 bytes (WAL mode, synchronous=NORMAL, as
Pipetower configures it), then deletes them in batches of 100, each batch
its own transaction, with secure_delete OFF and ON. Prints the delete time
per run and the bytes written to the WAL. Usage: python bench/secure_delete.py
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time

ROWS = 20_000


def run(secure: bool) -> tuple[float, int]:
    folder = tempfile.mkdtemp(prefix="pt-securedelete-")
    path = os.path.join(folder, "db.sqlite3")
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        f"PRAGMA secure_delete={'ON' if secure else 'OFF'};"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, body TEXT);"
    )
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO t (email, body) VALUES (?, ?)",
        ((f"person{i}@example.com", "x" * 600) for i in range(ROWS)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    start = time.perf_counter()
    for first in range(1, ROWS + 1, 100):
        db.execute("BEGIN")
        db.execute("DELETE FROM t WHERE id >= ? AND id < ?", (first, first + 100))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    wal = os.path.getsize(path + "-wal")
    db.close()
    return elapsed, wal


if __name__ == "__main__":
    for secure in (False, True):
        times, wals = zip(*(run(secure) for _ in range(3)), strict=True)
        print(
            f"secure_delete={'ON ' if secure else 'OFF'}: delete {ROWS} rows "
            f"min {min(times) * 1000:.0f} ms, WAL {max(wals) / 1e6:.1f} MB"
        )
