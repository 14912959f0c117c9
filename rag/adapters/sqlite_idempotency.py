"""Idempotency keys in a SQLite file: one machine (its workers share the file). The queries
are rag/adapters/sql_idempotency.py's."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

from rag.adapters.sql_common import Db
from rag.adapters.sql_idempotency import SqlIdempotency
from rag.sqlite_db import open_sqlite, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    token TEXT,
    status INTEGER,
    body TEXT,
    headers TEXT,
    started_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expires ON idempotency_keys(expires_at);
"""


class SqliteIdempotency(SqlIdempotency):
    def __init__(self, db_path: Path) -> None:
        super().__init__()
        self._db = open_sqlite(db_path, SCHEMA, what="idempotency keys")
        self._lock = threading.Lock()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def _now(self, db: Db) -> float:
        return time.time()

    def close(self) -> None:
        self._db.close()
