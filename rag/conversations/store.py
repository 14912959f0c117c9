"""Conversations by session id, stored in SQLite: turns, their language, sources and cost.

The same file keeps the failed order checks by order number, customer and client address
across sessions (hashed keys, never the values), so that a proof cannot be guessed by
starting a new chat for each try.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rag.errors import NotFound, StoreUnavailable
from rag.guardrails.pii import redact

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


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant | agent
    content: str
    language: str | None = None
    created_at: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def attempt_key(kind: str, value: str) -> str:
    """The stored form of a verification key: a hash, so the table holds no e-mail or address."""
    return hashlib.sha256(f"{kind}:{value.strip().casefold()}".encode()).hexdigest()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


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

    # -- failed order checks, across sessions ------------------------------------------------
    def locked(self, keys: Iterable[str], now: datetime) -> bool:
        """Is any of these (hashed) keys locked out of order checks at `now`?"""
        keys = sorted(set(keys))
        if not keys:
            return False
        rows = self._db.execute(
            f"SELECT locked_until FROM verification_attempts WHERE key IN ({_marks(keys)}) "
            "AND locked_until IS NOT NULL",
            keys,
        ).fetchall()
        stamp = now.isoformat(timespec="seconds")
        return any(r[0] > stamp for r in rows)

    def record_failure(
        self,
        limits: dict[str, int],
        *,
        now: datetime,
        lock_s: float,
        max_lock_s: float,
        window_s: float,
    ) -> bool:
        """Count one failed check against each key (hashed key -> its limit). A key that
        reaches its limit is locked for lock_s, doubled at every further lock-out up to
        max_lock_s. Failures older than window_s are forgotten. True when a lock began."""
        stamp = now.isoformat(timespec="seconds")
        forget = (now - timedelta(seconds=window_s)).isoformat(timespec="seconds")
        began = False
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, limit in sorted(limits.items()):
                    row = self._db.execute(
                        "SELECT failures, lockouts, updated_at FROM verification_attempts "
                        "WHERE key=?",
                        (key,),
                    ).fetchone()
                    failures, lockouts = (0, 0) if row is None else (int(row[0]), int(row[1]))
                    if row is not None and row[2] < forget:  # a quiet day wipes the slate
                        failures, lockouts = 0, 0
                    failures += 1
                    until = None
                    if failures >= limit:
                        seconds = min(lock_s * 2**lockouts, max_lock_s)
                        until = (now + timedelta(seconds=seconds)).isoformat(timespec="seconds")
                        failures, lockouts, began = 0, lockouts + 1, True
                    self._db.execute(
                        "INSERT INTO verification_attempts(key, failures, lockouts, "
                        "locked_until, updated_at) VALUES (?,?,?,?,?) ON CONFLICT(key) DO UPDATE "
                        "SET failures=excluded.failures, lockouts=excluded.lockouts, "
                        "locked_until=COALESCE(excluded.locked_until, "
                        "verification_attempts.locked_until), updated_at=excluded.updated_at",
                        (key, failures, lockouts, until, stamp),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return began

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
        """Delete everything held about a shopper, found by any identifier (customer id,
        e-mail or phone number): sessions filed under it, and sessions where it was written,
        verified or not. The e-mails and phone numbers the shopper wrote in those sessions
        are searched for too, so a chat that never said who it was is found by what it said.
        Handoffs, feedback, session state and failed-check counters go with the sessions.
        Returns counts: the receipt."""
        key = customer_id.strip()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                idents = {key} if key else set()
                sessions: set[str] = set()
                # what the shopper wrote about themself (an e-mail, a phone number) finds the
                # chats where they said only that; a few rounds reach a fixed point
                for _ in range(4):
                    sessions |= self._sessions_of(idents)
                    more = self._identifiers(sessions) - idents
                    if not more:
                        break
                    idents |= more
                found = idents - {key}
                ids = sorted(sessions)
                turns = handoffs = 0
                if ids:
                    m = _marks(ids)
                    turns = self._db.execute(
                        f"DELETE FROM turns WHERE session_id IN ({m})", ids
                    ).rowcount
                    self._db.execute(f"DELETE FROM feedback WHERE session_id IN ({m})", ids)
                    self._db.execute(f"DELETE FROM session_state WHERE session_id IN ({m})", ids)
                handoffs = self._db.execute(
                    f"DELETE FROM handoffs WHERE session_id IN ({_marks(ids) or 'NULL'}) "
                    "OR customer_id=? COLLATE NOCASE",
                    [*ids, key],
                ).rowcount
                if ids:
                    self._db.execute(f"DELETE FROM sessions WHERE session_id IN ({m})", ids)
                hashed = [
                    attempt_key(kind, v) for v in {key, *found} for kind in ("customer", "client")
                ]
                self._db.execute(
                    f"DELETE FROM verification_attempts WHERE key IN ({_marks(hashed)})", hashed
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._scrub()
        return {"sessions": len(sessions), "turns": turns, "handoffs": handoffs}

    def _sessions_of(self, identifiers: set[str]) -> set[str]:
        """Sessions filed under, or mentioning, any of these identifiers."""
        idents = sorted(i for i in identifiers if i)
        out = {
            r[0]
            for r in self._db.execute(
                f"SELECT session_id FROM sessions WHERE customer_id IN ({_marks(idents)}) "
                f"OR lower(customer_id) IN ({_marks(idents)})",
                [*idents, *(i.casefold() for i in idents)],
            ).fetchall()
        }
        texts = [i.casefold() for i in idents if len(i) >= 4]
        phones = [d for i in idents if len(d := _digits(i)) >= 7 and "@" not in i]
        # phone numbers are written in many ways: compare the digits, national part included
        nationals = {p[-9:] for p in phones}

        def mentions(text: str | None) -> bool:
            if not text:
                return False
            low = text.casefold()
            if any(t in low for t in texts):
                return True
            if nationals:
                d = _digits(text)
                return any(n in d for n in nationals)
            return False

        for table, col in (
            ("turns", "content"),
            ("handoffs", "summary"),
            ("feedback", "comment"),
            ("sessions", "customer_id"),
        ):
            for sid, text in self._db.execute(f"SELECT session_id, {col} FROM {table}"):
                if sid not in out and mentions(text):
                    out.add(sid)
        return out

    def _identifiers(self, sessions: set[str]) -> set[str]:
        """E-mails and phone numbers the shopper wrote in these sessions."""
        ids = sorted(sessions)
        if not ids:
            return set()
        found: set[str] = set()
        for (text,) in self._db.execute(
            f"SELECT content FROM turns WHERE role='user' AND session_id IN ({_marks(ids)})", ids
        ):
            for placeholder, value in redact(text).mapping.items():
                if placeholder.startswith(("[EMAIL", "[PHONE")):
                    found.add(value)
        return found

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


def _marks(values: Iterable[object]) -> str:
    return ",".join("?" for _ in values)
