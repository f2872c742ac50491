"""Many rows changed, each in its own way, in one round trip.

Django's ``bulk_update`` writes one ``CASE WHEN pk = ...`` per field and row, and building
those expressions costs far more than the database's work (a batch of provider events spent
most of its time there). ``rows_update`` sends one plain parameterized ``UPDATE`` per row
through the driver's ``executemany`` instead: SQLite runs the prepared statement for each
row, psycopg pipelines them; values are prepared by the model's own fields, as the ORM does.
A condition per row (``where``) makes each update conditional; the count says how many
matched. It never bypasses tenant checks of its own: callers pass rows they have read in
the tenant's scope (or, for rows that are no tenant's yet, outside any).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def rows_update(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    where: Sequence[str] = ("pk",),
) -> int:
    """For each row (the values of ``fields``, then of ``where``), ``UPDATE`` the model's
    table ``SET`` those fields ``WHERE`` those columns equal those values. Returns how many
    rows matched in all."""
    if not rows:
        return 0
    meta = model._meta
    set_fields = [_field(model, name) for name in fields]
    where_fields = [_field(model, name) for name in where]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {}".format(  # noqa: S608 (names from the model, values as parameters)
        quote(meta.db_table),
        ", ".join(f"{quote(str(field.column))} = %s" for field in set_fields),
        " AND ".join(f"{quote(str(field.column))} = %s" for field in where_fields),
    )
    every = [*set_fields, *where_fields]
    params = [
        [field.get_db_prep_value(value, connection) for field, value in zip(every, row, strict=True)]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field
