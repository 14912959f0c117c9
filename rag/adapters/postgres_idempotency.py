"""Idempotency keys in PostgreSQL (schema kefu, table idempotency_keys, beside the rate
limits), shared by every worker and machine, on the database's clock. The queries are
rag/adapters/sql_idempotency.py's."""

from __future__ import annotations

from contextlib import AbstractContextManager

from rag.adapters.postgres_db import SHARED_SCHEMA, PgConnection, PgSchema
from rag.adapters.sql_common import Db
from rag.adapters.sql_idempotency import SqlIdempotency
from rag.settings import DatabaseSettings


class PostgresIdempotency(SqlIdempotency):
    def __init__(self, settings: DatabaseSettings) -> None:
        super().__init__()
        self._pg = PgSchema(settings, SHARED_SCHEMA, "shared")

    def _tx(self) -> AbstractContextManager[PgConnection]:
        return self._pg.transaction()

    def _now(self, db: Db) -> float:
        row = db.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        return float(row[0])

    def close(self) -> None:
        self._pg.close()
