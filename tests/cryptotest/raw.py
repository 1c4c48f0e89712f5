"""Read and write stored columns with raw SQL, below the ORM and its field."""

from __future__ import annotations

from django.db import connection, models


def _where(obj: models.Model, field: str) -> tuple[str, str]:
    quote = connection.ops.quote_name
    column = obj._meta.get_field(field).column  # type: ignore[union-attr]
    return quote(obj._meta.db_table), quote(column)


def stored(obj: models.Model, field: str) -> str | None:
    """What the database holds in `field` of `obj`'s row."""
    table, column = _where(obj, field)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [obj.pk])
        row = cursor.fetchone()
    assert row is not None, f"no row {obj.pk} in {table}"
    return row[0]


def store(obj: models.Model, field: str, raw: str | None) -> None:
    """Overwrite `field` of `obj`'s row with `raw`, as someone with database access could."""
    table, column = _where(obj, field)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [raw, obj.pk])
