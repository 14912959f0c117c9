"""The conversation store in one SQLite file per store: for one machine (one or more workers
of one server). The queries are rag/adapters/sql_conversations.py's."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from rag.adapters.sql_conversations import SqlConversations
from rag.errors import StoreUnavailable
from rag.sqlite_db import open_sqlite, scrub, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    customer_id TEXT,
    language TEXT,
    country TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    language TEXT,
    created_at TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS turns_session ON turns(session_id, id);
CREATE INDEX IF NOT EXISTS sessions_customer ON sessions(customer_id);
CREATE TABLE IF NOT EXISTS handoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    customer_id TEXT,
    reason TEXT NOT NULL,
    language TEXT,
    summary TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',   -- open | claimed | resolved
    agent TEXT,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_after_turn INTEGER  -- the session's last turn id when resolved
);
CREATE INDEX IF NOT EXISTS handoffs_session ON handoffs(session_id, status);
CREATE TABLE IF NOT EXISTS session_state (
    session_id TEXT PRIMARY KEY,  -- no foreign key: state may be written before the first turn
    state TEXT NOT NULL DEFAULT '{}',  -- small JSON: pending order checks, never PII
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verification_attempts (
    key TEXT PRIMARY KEY,        -- sha256 of "order:1042", "customer:c-1", "client:10.0.0.1"
    failures INTEGER NOT NULL DEFAULT 0,
    lockouts INTEGER NOT NULL DEFAULT 0,   -- each lock-out doubles the next one
    locked_until TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    rating TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL
);
"""


class SqliteConversations(SqlConversations):
    def __init__(self, db_path: Path) -> None:
        self._db = open_sqlite(db_path, SCHEMA, what="conversations")
        try:
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(handoffs)").fetchall()}
            if "resolved_after_turn" not in cols:  # databases made before the column existed
                self._db.execute("ALTER TABLE handoffs ADD COLUMN resolved_after_turn INTEGER")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open conversations {db_path}: {exc}") from exc
        self._lock = threading.Lock()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._db  # readers see the last commit (WAL); only writers take the lock

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def _scrub(self) -> None:
        scrub(self._db, self._lock)

    def close(self) -> None:
        self._db.close()
