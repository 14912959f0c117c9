"""Conversations by session id, stored in SQLite: turns, their language, sources and cost."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import StoreUnavailable

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
"""


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant | agent
    content: str
    language: str | None = None
    created_at: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ConversationStore:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open conversations {db_path}: {exc}") from exc
        self._lock = threading.Lock()

    def append(
        self,
        session_id: str,
        turn: Turn,
        *,
        customer_id: str | None = None,
        country: str | None = None,
    ) -> None:
        now = _now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO sessions(session_id, customer_id, language, country, created_at, "
                    "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(session_id) DO UPDATE SET "
                    "updated_at=excluded.updated_at, "
                    "customer_id=COALESCE(excluded.customer_id, sessions.customer_id), "
                    "language=COALESCE(excluded.language, sessions.language), "
                    "country=COALESCE(excluded.country, sessions.country)",
                    (session_id, customer_id, turn.language, country, now, now),
                )
                self._db.execute(
                    "INSERT INTO turns(session_id, role, content, language, created_at, meta) "
                    "VALUES (?,?,?,?,?,?)",
                    (
                        session_id,
                        turn.role,
                        turn.content,
                        turn.language,
                        now,
                        json.dumps(turn.meta, ensure_ascii=False, default=str),
                    ),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def history(self, session_id: str, limit: int = 20) -> list[Turn]:
        rows = self._db.execute(
            "SELECT role, content, language, created_at, meta FROM turns WHERE session_id=? "
            "ORDER BY id DESC LIMIT ?",
            (session_id, limit),
        ).fetchall()
        return [
            Turn(role=r[0], content=r[1], language=r[2], created_at=r[3], meta=json.loads(r[4]))
            for r in reversed(rows)
        ]

    def session(self, session_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT session_id, customer_id, language, country, created_at, updated_at "
            "FROM sessions WHERE session_id=?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("session_id", "customer_id", "language", "country", "created_at", "updated_at")
        return dict(zip(keys, row, strict=True))

    def close(self) -> None:
        self._db.close()
