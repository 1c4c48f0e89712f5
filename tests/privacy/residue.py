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


def _cache_entries() -> list[tuple[bytes, bytes]]:
    """Every (key, raw value) in the default cache: the in-memory one or Redis."""
    store = getattr(cache, "_cache", None)
    if store is None:
        return []
    if hasattr(store, "get_client"):  # Redis: list the keys and read the plain ones
        client = store.get_client(write=False)
        entries = []
        for key in client.scan_iter(count=500):
            if client.type(key) == b"string":
                value = client.get(key)
                entries.append((bytes(key), bytes(value) if value is not None else b""))
        return entries
    return [
        (str(key).encode(), bytes(value) if isinstance(value, bytes) else b"")
        for key, value in list(store.items())
    ]


def scan_cache(needles: list[str]) -> list[str]:
    hits = []
    for key, value in _cache_entries():
        blob = (key + value).lower()
        hits += [f"cache {key!r} contains {n!r}" for n in needles if n.lower().encode() in blob]
    return hits
