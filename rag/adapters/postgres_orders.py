"""The embedded order store in PostgreSQL (schema kefu), shared by every worker and machine.
The queries and the CSV import are rag/adapters/sql_orders.py's."""

from __future__ import annotations

from contextlib import AbstractContextManager

import psycopg

from rag.adapters.postgres_db import SHARED_SCHEMA, PgConnection, PgSchema
from rag.adapters.sql_orders import SqlOrders
from rag.settings import DatabaseSettings


class PostgresOrders(SqlOrders):
    name = "postgres"
    row_errors = (psycopg.DataError, psycopg.IntegrityError)

    def __init__(self, settings: DatabaseSettings) -> None:
        self._pg = PgSchema(settings, SHARED_SCHEMA, "shared")

    def _read(self) -> AbstractContextManager[PgConnection]:
        return self._pg.connection()

    def _tx(self) -> AbstractContextManager[PgConnection]:
        return self._pg.transaction()

    def _scrub(self) -> None:
        # see PostgresConversations._scrub
        with self._pg.connection() as db:
            for table in ("customers", "orders"):
                db.execute(f"VACUUM {table}")

    def close(self) -> None:
        self._pg.close()
