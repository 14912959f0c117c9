"""Conversations by session id, stored in SQLite: turns, their language, sources and cost."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import NotFound, StoreUnavailable

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
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    rating TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL
);
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
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(handoffs)").fetchall()}
            if "resolved_after_turn" not in cols:  # databases made before the column existed
                self._db.execute("ALTER TABLE handoffs ADD COLUMN resolved_after_turn INTEGER")
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

    def state(self, session_id: str) -> dict[str, Any]:
        """Small per-session state kept between turns (e.g. an order check in progress)."""
        row = self._db.execute(
            "SELECT state FROM session_state WHERE session_id=?", (session_id,)
        ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO session_state(session_id, state, updated_at) VALUES (?,?,?) "
                "ON CONFLICT(session_id) DO UPDATE SET state=excluded.state, "
                "updated_at=excluded.updated_at",
                (session_id, json.dumps(state, ensure_ascii=False), _now()),
            )

    # -- handoffs -----------------------------------------------------------------------------
    def open_handoff(
        self,
        session_id: str,
        *,
        reason: str,
        language: str | None,
        summary: str,
        customer_id: str | None = None,
    ) -> int:
        now = _now()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO sessions(session_id, customer_id, language, country, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?)",
                (session_id, customer_id, language, None, now, now),
            )
            cur = self._db.execute(
                "INSERT INTO handoffs(session_id, customer_id, reason, language, summary, "
                "created_at) VALUES (?,?,?,?,?,?)",
                (session_id, customer_id, reason, language, summary, now),
            )
            return int(cur.lastrowid or 0)

    def active_handoff(self, session_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id FROM handoffs WHERE session_id=? AND status!='resolved' "
            "ORDER BY id DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        return None if row is None else self.handoff(int(row[0]))

    def handoff(self, handoff_id: int) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id, session_id, customer_id, reason, language, summary, status, agent, "
            "created_at, resolved_at FROM handoffs WHERE id=?",
            (handoff_id,),
        ).fetchone()
        if row is None:
            return None
        keys = (
            "id",
            "session_id",
            "customer_id",
            "reason",
            "language",
            "summary",
            "status",
            "agent",
            "created_at",
            "resolved_at",
        )
        return dict(zip(keys, row, strict=True))

    def handoffs(self, status: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id FROM handoffs" + (" WHERE status=?" if status else "") + " ORDER BY id"
        rows = self._db.execute(sql, (status,) if status else ()).fetchall()
        return [h for r in rows if (h := self.handoff(int(r[0]))) is not None]

    def set_handoff_status(self, handoff_id: int, status: str, agent: str | None = None) -> None:
        if self.handoff(handoff_id) is None:
            raise NotFound(f"no handoff {handoff_id}")
        resolved = status == "resolved"
        with self._lock:
            self._db.execute(
                "UPDATE handoffs SET status=?, agent=COALESCE(?, agent), resolved_at=?, "
                "resolved_after_turn=(SELECT MAX(t.id) FROM turns t "
                "WHERE t.session_id=handoffs.session_id AND ?) WHERE id=?",
                (status, agent, _now() if resolved else None, int(resolved), handoff_id),
            )

    def failures_since_handoff(self, session_id: str) -> int:
        """Assistant turns that could not help, since the last resolved handoff (so a session
        returned to the bot does not re-escalate on old context)."""
        row = self._db.execute(
            "SELECT MAX(resolved_after_turn) FROM handoffs WHERE session_id=? "
            "AND status='resolved'",
            (session_id,),
        ).fetchone()
        since = int(row[0]) if row and row[0] is not None else 0
        rows = self._db.execute(
            "SELECT meta FROM turns WHERE session_id=? AND role='assistant' AND id>?",
            (session_id, since),
        ).fetchall()
        return sum(
            1 for (meta,) in rows if json.loads(meta).get("mode") in {"dont_know", "fallback"}
        )

    def add_feedback(self, session_id: str, rating: str, comment: str | None) -> None:
        if self.session(session_id) is None:
            raise NotFound(f"no session {session_id!r}")
        with self._lock:
            self._db.execute(
                "INSERT INTO feedback(session_id, rating, comment, created_at) VALUES (?,?,?,?)",
                (session_id, rating, comment, _now()),
            )

    def stats(self) -> dict[str, Any]:
        """Counts for the admin dashboard: conversations, escalation and resolution rates."""
        sessions = int(self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
        escalated = int(
            self._db.execute("SELECT COUNT(DISTINCT session_id) FROM handoffs").fetchone()[0]
        )
        by_lang = dict(
            self._db.execute(
                "SELECT COALESCE(language, 'und'), COUNT(*) FROM sessions GROUP BY 1"
            ).fetchall()
        )
        ratings = dict(
            self._db.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating").fetchall()
        )
        return {
            "conversations": sessions,
            "escalated_conversations": escalated,
            "escalation_rate": round(escalated / sessions, 4) if sessions else 0.0,
            "resolution_rate": round(1 - escalated / sessions, 4) if sessions else 0.0,
            "open_handoffs": len(self.handoffs("open")),
            "by_language": by_lang,
            "feedback": ratings,
        }

    # -- privacy ------------------------------------------------------------------------------
    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete every session, turn and handoff of a customer; returns counts (a receipt)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                sessions = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT session_id FROM sessions WHERE customer_id=?", (customer_id,)
                    ).fetchall()
                ]
                marks = ",".join("?" * len(sessions))
                turns = handoffs = 0
                if sessions:
                    turns = self._db.execute(
                        f"DELETE FROM turns WHERE session_id IN ({marks})", sessions
                    ).rowcount
                    handoffs = self._db.execute(
                        f"DELETE FROM handoffs WHERE session_id IN ({marks}) OR customer_id=?",
                        [*sessions, customer_id],
                    ).rowcount
                    self._db.execute(
                        f"DELETE FROM feedback WHERE session_id IN ({marks})", sessions
                    )
                    self._db.execute(
                        f"DELETE FROM session_state WHERE session_id IN ({marks})", sessions
                    )
                    self._db.execute(
                        f"DELETE FROM sessions WHERE session_id IN ({marks})", sessions
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._scrub()
        return {"sessions": len(sessions), "turns": turns, "handoffs": handoffs}

    def purge_older_than(self, days: int) -> dict[str, int]:
        """Retention: delete transcripts not updated for `days` days."""
        from datetime import timedelta

        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with self._lock:
            old = [
                r[0]
                for r in self._db.execute(
                    "SELECT session_id FROM sessions WHERE updated_at<?", (cutoff,)
                ).fetchall()
            ]
            for sid in old:
                self._db.execute("DELETE FROM turns WHERE session_id=?", (sid,))
                self._db.execute("DELETE FROM handoffs WHERE session_id=?", (sid,))
                self._db.execute("DELETE FROM feedback WHERE session_id=?", (sid,))
                self._db.execute("DELETE FROM session_state WHERE session_id=?", (sid,))
                self._db.execute("DELETE FROM sessions WHERE session_id=?", (sid,))
        if old:
            self._scrub()
        return {"sessions": len(old)}

    def _scrub(self) -> None:
        """Deleted rows must not linger in free pages or the write-ahead log."""
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()
