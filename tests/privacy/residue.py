"""A scanner for what is left of a person: every table and text-ish column, files, cache."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection

TEXTISH = ("char", "text", "json", "clob", "inet", "varchar", "uuid")


def scan_database(needles: list[str], *, skip_tables: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """ "table.column" for every value that contains one of `needles` (case-insensitive)."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table in skip_tables:
                continue
            for column in connection.introspection.get_table_description(cursor, table):
                kind = str(column.type_code).lower()
                data_type = connection.introspection.get_field_type(column.type_code, column)
                if not any(
                    t in kind or t in data_type.lower() for t in TEXTISH
                ) and data_type not in (
                    "CharField",
                    "TextField",
                    "JSONField",
                    "GenericIPAddressField",
                ):
                    continue
                quoted_table = connection.ops.quote_name(table)
                quoted_col = connection.ops.quote_name(column.name)
                for needle in needles:
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {quoted_table} "
                        f"WHERE LOWER(CAST({quoted_col} AS TEXT)) LIKE %s",
                        [f"%{needle.lower()}%"],
                    )
                    if cursor.fetchone()[0]:
                        hits.append(f"{table}.{column.name} contains {needle!r}")
    return hits


def scan_files(needles: list[str]) -> list[str]:
    hits = []
    root = Path(settings.MEDIA_ROOT)
    if root.exists():
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes().lower()
                hits += [f"{path} contains {n!r}" for n in needles if n.lower().encode() in data]
    return hits


def scan_cache(needles: list[str]) -> list[str]:
    store = getattr(cache, "_cache", None)
    if store is None:  # only the in-memory cache can be listed
        return []
    hits = []
    for key, value in list(store.items()):
        blob = str(key).encode() + bytes(value) if isinstance(value, bytes) else str(key).encode()
        hits += [
            f"cache {key} contains {n!r}" for n in needles if n.lower().encode() in blob.lower()
        ]
    return hits
