"""The residue scanner reads database files without taking SQLite's locks away.

Closing any descriptor of a file drops every POSIX lock the process holds on
it. A scanner that read a live database's files with a plain open/close made
another process believe it was the database's last user: that process deleted
the write-ahead log still in use, and every connection answered "disk I/O
error" afterwards.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipetower.privacy.residue import read_bytes

OTHER_PROCESS = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
    "c.execute('SELECT count(*) FROM t').fetchall(); c.close()"
)


def wal_left_after_another_process_comes_and_goes(
    tmp_path: Path, read: Callable[[Path], bytes]
) -> bool:
    database = tmp_path / "live.sqlite3"
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x TEXT)")
        connection.execute("INSERT INTO t VALUES ('marker-7c1e')")
        connection.commit()
        wal = tmp_path / "live.sqlite3-wal"
        assert wal.exists()

        found = b"marker-7c1e" in read(database) + read(wal)
        assert found
        subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(database)], check=True)
        return wal.exists()
    finally:
        connection.close()


def test_reading_a_live_database_leaves_its_write_ahead_log_to_its_users(tmp_path: Path) -> None:
    assert wal_left_after_another_process_comes_and_goes(tmp_path, read_bytes)


def test_a_plain_read_would_have_lost_the_write_ahead_log(tmp_path: Path) -> None:
    # The hazard itself, so that the test above cannot pass for another reason.
    if sys.platform != "linux":
        pytest.skip("POSIX lock semantics checked on Linux")
    assert not wal_left_after_another_process_comes_and_goes(tmp_path, Path.read_bytes)
