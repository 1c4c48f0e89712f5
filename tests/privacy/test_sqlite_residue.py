"""After a purge, nothing of the person is left in the SQLite files (WAL or free pages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from pipetower.privacy import deletion
from pipetower.privacy.residue import read_bytes
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

MARKER = "wal-marker-3f9c1d@example.com"


def _database_files() -> list[Path]:
    main = Path(connection.settings_dict["NAME"])
    return [main, main.with_name(main.name + "-wal")]


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL: no database files in the data directory"
)
def test_a_purged_marker_is_in_neither_the_wal_nor_the_free_pages() -> None:
    if connection.settings_dict["NAME"] == ":memory:" or "mode=memory" in str(
        connection.settings_dict["NAME"]
    ):
        pytest.skip("in-memory test database")
    ada = UserFactory(email=MARKER, name="Wal Marker")
    scheduled = deletion.account_deletion_request(user=ada)
    main, wal = _database_files()
    assert any(MARKER.encode() in read_bytes(p) for p in (main, wal) if p.exists())

    assert deletion.account_deletions_purge(now=scheduled.scheduled_for) == 1

    assert not wal.exists() or wal.stat().st_size == 0, "the WAL was not truncated"
    on_a_free_page = MARKER.encode() in read_bytes(main)
    assert not on_a_free_page, "the row is still on a free page"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA secure_delete")
        assert cursor.fetchone()[0] == 1
