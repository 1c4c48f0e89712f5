"""A scanner for what is left of a person: every table and text-ish column, files, cache.

Used by the tests and by operators (`pipetower privacy scan`): it reads the
database, the data directory (uploads, exports, the mail folder, log files)
and the configured cache, and names every place that holds one of the
needles, case-insensitively. It never prints the matching values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection

TEXTISH = ("char", "text", "json", "clob", "inet", "varchar", "uuid")


SQLITE_SUFFIXES = (".sqlite3", ".sqlite", ".db", "-wal", "-shm", "-journal")
_READER = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"


def _open_in_this_process(path: Path) -> bool:
    """Whether this process holds a descriptor of `path` (True when it cannot tell)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return True
    target = os.path.realpath(path)
    for fd in os.listdir(fds):
        try:
            if os.readlink(fds / fd) == target:
                return True
        except OSError:
            continue
    return False


def read_bytes(path: Path) -> bytes:
    """The bytes of `path`, read without disturbing SQLite.

    Closing any descriptor of a file drops every POSIX lock this process holds
    on it, SQLite's included. A database file read with a plain open/close by a
    process that also has the database open (this scanner reads the database
    through Django and then its files) loses its locks; another process then
    believes it is the last user and deletes the write-ahead log in use, and
    every connection answers "disk I/O error". Database files, and any file
    this process has open, are therefore read by a short child process.
    """
    if not (path.name.endswith(SQLITE_SUFFIXES) or _open_in_this_process(path)):
        return path.read_bytes()
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed program, one path
        [sys.executable, "-c", _READER, str(path)], capture_output=True, timeout=300
    )
    if done.returncode != 0:
        raise OSError(f"could not read {path}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


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
                # Table and column names come from introspection, quoted.
                query = (
                    f"SELECT COUNT(*) FROM {quoted_table} "  # noqa: S608
                    f"WHERE LOWER(CAST({quoted_col} AS TEXT)) LIKE %s"
                )
                for needle in needles:
                    cursor.execute(query, [f"%{needle.lower()}%"])
                    if cursor.fetchone()[0]:
                        hits.append(f"{table}.{column.name} contains {needle!r}")
    return hits


def _scan_folder(root: Path, needles: list[str], *, skip: set[Path] = frozenset()) -> list[str]:  # type: ignore[assignment]
    hits: list[str] = []
    if not root.exists():
        return hits
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip:
            try:
                data = read_bytes(path).lower()
            except OSError:
                continue
            hits += [f"{path} contains {n!r}" for n in needles if n.lower().encode() in data]
    return hits


def scan_paths(paths: list[Path], needles: list[str]) -> list[str]:
    """Named files (log files kept elsewhere)."""
    hits: list[str] = []
    for path in paths:
        data = read_bytes(path).lower()
        hits += [f"{path} contains {n!r}" for n in needles if n.lower().encode() in data]
    return hits


def scan_files(needles: list[str]) -> list[str]:
    """Uploaded and generated files (pictures, exports)."""
    return _scan_folder(Path(settings.MEDIA_ROOT), needles)


def scan_mail(needles: list[str]) -> list[str]:
    """The mail folder of the embedded mail backend."""
    return _scan_folder(Path(settings.MAIL_DIR), needles)


def scan_data_dir(needles: list[str]) -> list[str]:
    """Everything in the data directory: media, mail, log files, the database files.

    The SQLite database and its write-ahead log are read as bytes, so deleted
    rows still on free pages or in the log are found too.
    """
    return _scan_folder(Path(settings.DATA_DIR), needles)


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
