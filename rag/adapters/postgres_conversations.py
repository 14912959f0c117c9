"""The conversation store in PostgreSQL: one schema per store, shared by every worker and
machine that serves it. The queries are rag/adapters/sql_conversations.py's."""

from __future__ import annotations

from contextlib import AbstractContextManager

from rag.adapters.postgres_db import PgConnection, PgSchema, store_schema
from rag.adapters.sql_conversations import SqlConversations
from rag.settings import DatabaseSettings


class PostgresConversations(SqlConversations):
    # several workers count failed order checks at once: each read-modify-write locks its row
    for_update = " FOR UPDATE"

    def __init__(self, settings: DatabaseSettings, *, store: str) -> None:
        self._pg = PgSchema(settings, store_schema(store), "conversations")

    def _read(self) -> AbstractContextManager[PgConnection]:
        return self._pg.connection()

    def _tx(self) -> AbstractContextManager[PgConnection]:
        return self._pg.transaction()

    def _scrub(self) -> None:
        # VACUUM makes the deleted rows' space reusable and drops them from the indexes; the
        # bytes go when the pages are reused (encrypt the disk where that is not enough)
        with self._pg.connection() as db:
            for table in ("turns", "handoffs", "feedback", "session_state", "sessions"):
                db.execute(f"VACUUM {table}")

    def close(self) -> None:
        self._pg.close()
