"""Update many rows, each with its own values, in one cheap statement.

Django's `bulk_update()` writes one `CASE WHEN pk = … THEN …` expression per row
and field and resolves each as a query expression: for the engine's flushes
(hundreds of targets a tenth of a second apart) building that statement cost more
CPU than running it. `update_rows()` sends the same update as

    WITH v(pk, f1, f2) AS (VALUES (%s, %s, %s), …)
    UPDATE table SET f1 = v.f1, f2 = v.f2 FROM v WHERE table.pk = v.pk

which PostgreSQL and SQLite (3.33 and later) both run. Values go through each
field's `get_db_prep_save()`, as in `save()` and `update()`: an encrypted field
refuses plaintext here too (pipetower/core/fields.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models

ROWS_PER_STATEMENT = 500


def update_rows(
    model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]
) -> None:
    """Write `fields` of each object (as they are on the instance) to its row. The
    caller holds whatever lock makes that safe."""
    if not objs or not fields:
        return
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns: list[models.Field[Any, Any]] = []
    for name in fields:
        field = meta.get_field(name)
        if not isinstance(field, models.Field) or field.many_to_many or not field.column:
            raise ValueError(f"{model.__name__}.{name} is not a column")
        columns.append(field)
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    key = f"{table}.{quote(str(pk.column))}"
    names = ["pk", *(f"f{i}" for i in range(len(columns)))]
    if connection.vendor == "postgresql":
        # VALUES has no column types of its own; NULLs would otherwise be text.
        row = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in (pk, *columns)) + ")"
    else:
        row = "(" + ", ".join(["%s"] * len(names)) + ")"
    assignments = ", ".join(
        f"{quote(str(field.column))} = v.{name}"
        for field, name in zip(columns, names[1:], strict=True)
    )
    with connection.cursor() as cursor:
        for start in range(0, len(objs), ROWS_PER_STATEMENT):
            batch = objs[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for obj in batch:
                params.append(pk.get_db_prep_save(obj.pk, connection))
                params += [
                    field.get_db_prep_save(getattr(obj, field.attname), connection)
                    for field in columns
                ]
            # Only names from the model's metadata are pasted in; every value is a parameter.
            sql = (
                f"WITH v({', '.join(names)}) AS (VALUES {', '.join([row] * len(batch))}) "  # noqa: S608
                f"UPDATE {table} SET {assignments} FROM v WHERE {key} = v.pk"
            )
            cursor.execute(sql, params)
