"""The conversation store in SQL, shared by the SQLite and PostgreSQL adapters.

The queries are written once, in the SQL both engines speak (`ON CONFLICT` upserts,
`RETURNING`, `lower()` for case-blind matches), with `?` placeholders; each adapter supplies
its connections and transactions (`_read`, `_tx`), its row lock (`FOR UPDATE` on PostgreSQL,
where several workers write at once) and how deleted rows are scrubbed from disk.

The same store keeps the failed order checks by order number, customer and client address
across sessions (hashed keys, never the values), so that a proof cannot be guessed by
starting a new chat for each try.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from rag.adapters.sql_common import Db, marks
from rag.conversations.erasure import mention_matcher, written_identifiers
from rag.conversations.types import UNHELPFUL_MODES, Turn, attempt_key, now_stamp
from rag.errors import NotFound

SESSION_KEYS = ("session_id", "customer_id", "language", "country", "created_at", "updated_at")
HANDOFF_KEYS = (
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


class SqlConversations(ABC):
    """Everything but the connections: see the module docstring."""

    for_update = ""  # the row lock a read-modify-write needs ("" where _tx already serialises)

    @abstractmethod
    def _read(self) -> AbstractContextManager[Db]:
        """A connection for reads."""

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Db]:
        """A connection in a write transaction: committed at the end, rolled back on error."""

    @abstractmethod
    def _scrub(self) -> None:
        """Make deleted rows unreadable from the database's files."""

    @abstractmethod
    def close(self) -> None: ...

    # -- turns and sessions ---------------------------------------------------------------------
    def append(
        self,
        session_id: str,
        turn: Turn,
        *,
        customer_id: str | None = None,
        country: str | None = None,
    ) -> None:
        now = now_stamp()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions(session_id, customer_id, language, country, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(session_id) DO UPDATE SET "
                "updated_at=excluded.updated_at, "
                "customer_id=COALESCE(excluded.customer_id, sessions.customer_id), "
                "language=COALESCE(excluded.language, sessions.language), "
                "country=COALESCE(excluded.country, sessions.country)",
                (session_id, customer_id, turn.language, country, now, now),
            )
            db.execute(
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

    def history(self, session_id: str, limit: int = 20) -> list[Turn]:
        with self._read() as db:
            rows = db.execute(
                "SELECT role, content, language, created_at, meta FROM turns WHERE session_id=? "
                "ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        return [
            Turn(role=r[0], content=r[1], language=r[2], created_at=r[3], meta=json.loads(r[4]))
            for r in reversed(rows)
        ]

    def session(self, session_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT {', '.join(SESSION_KEYS)} FROM sessions WHERE session_id=?",
                (session_id,),
            ).fetchone()
        return None if row is None else dict(zip(SESSION_KEYS, row, strict=True))

    def state(self, session_id: str) -> dict[str, Any]:
        """Small per-session state kept between turns (e.g. an order check in progress)."""
        with self._read() as db:
            row = db.execute(
                "SELECT state FROM session_state WHERE session_id=?", (session_id,)
            ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO session_state(session_id, state, updated_at) VALUES (?,?,?) "
                "ON CONFLICT(session_id) DO UPDATE SET state=excluded.state, "
                "updated_at=excluded.updated_at",
                (session_id, json.dumps(state, ensure_ascii=False), now_stamp()),
            )

    # -- failed order checks, across sessions ---------------------------------------------------
    def locked(self, keys: Iterable[str], now: datetime) -> bool:
        """Is any of these (hashed) keys locked out of order checks at `now`?"""
        keys = sorted(set(keys))
        if not keys:
            return False
        with self._read() as db:
            rows = db.execute(
                f"SELECT locked_until FROM verification_attempts WHERE key IN ({marks(keys)}) "
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
        with self._tx() as db:
            for key, limit in sorted(limits.items()):
                # the row exists first, so that concurrent writers queue on its lock
                db.execute(
                    "INSERT INTO verification_attempts(key, failures, lockouts, updated_at) "
                    "VALUES (?,0,0,?) ON CONFLICT(key) DO NOTHING",
                    (key, stamp),
                )
                row = db.execute(
                    "SELECT failures, lockouts, updated_at, locked_until FROM "
                    f"verification_attempts WHERE key=?{self.for_update}",
                    (key,),
                ).fetchone()
                failures, lockouts = int(row[0]), int(row[1])
                if row[2] < forget:  # a quiet day wipes the slate
                    failures, lockouts = 0, 0
                failures += 1
                until = row[3]
                if failures >= limit:
                    seconds = min(lock_s * 2**lockouts, max_lock_s)
                    until = (now + timedelta(seconds=seconds)).isoformat(timespec="seconds")
                    failures, lockouts, began = 0, lockouts + 1, True
                db.execute(
                    "UPDATE verification_attempts SET failures=?, lockouts=?, locked_until=?, "
                    "updated_at=? WHERE key=?",
                    (failures, lockouts, until, stamp, key),
                )
        return began

    # -- handoffs -------------------------------------------------------------------------------
    def open_handoff(
        self,
        session_id: str,
        *,
        reason: str,
        language: str | None,
        summary: str,
        customer_id: str | None = None,
    ) -> int:
        now = now_stamp()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions(session_id, customer_id, language, country, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(session_id) DO NOTHING",
                (session_id, customer_id, language, None, now, now),
            )
            row = db.execute(
                "INSERT INTO handoffs(session_id, customer_id, reason, language, summary, "
                "created_at) VALUES (?,?,?,?,?,?) RETURNING id",
                (session_id, customer_id, reason, language, summary, now),
            ).fetchone()
        return int(row[0])

    def active_handoff(self, session_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT {', '.join(HANDOFF_KEYS)} FROM handoffs WHERE session_id=? "
                "AND status!='resolved' ORDER BY id DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        return None if row is None else dict(zip(HANDOFF_KEYS, row, strict=True))

    def handoff(self, handoff_id: int) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT {', '.join(HANDOFF_KEYS)} FROM handoffs WHERE id=?", (handoff_id,)
            ).fetchone()
        return None if row is None else dict(zip(HANDOFF_KEYS, row, strict=True))

    def handoffs(self, status: str | None = None) -> list[dict[str, Any]]:
        where = " WHERE status=?" if status else ""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {', '.join(HANDOFF_KEYS)} FROM handoffs{where} ORDER BY id",
                (status,) if status else (),
            ).fetchall()
        return [dict(zip(HANDOFF_KEYS, r, strict=True)) for r in rows]

    def set_handoff_status(self, handoff_id: int, status: str, agent: str | None = None) -> None:
        resolved = status == "resolved"
        with self._tx() as db:
            changed = db.execute(
                "UPDATE handoffs SET status=?, agent=COALESCE(?, agent), resolved_at=?, "
                "resolved_after_turn=(SELECT MAX(t.id) FROM turns t "
                "WHERE t.session_id=handoffs.session_id AND ?) WHERE id=?",
                (status, agent, now_stamp() if resolved else None, resolved, handoff_id),
            ).rowcount
        if not changed:
            raise NotFound(f"no handoff {handoff_id}")

    def failures_since_handoff(self, session_id: str) -> int:
        """Assistant turns that could not help, since the last resolved handoff (so a session
        returned to the bot does not re-escalate on old context)."""
        with self._read() as db:
            row = db.execute(
                "SELECT MAX(resolved_after_turn) FROM handoffs WHERE session_id=? "
                "AND status='resolved'",
                (session_id,),
            ).fetchone()
            since = int(row[0]) if row and row[0] is not None else 0
            rows = db.execute(
                "SELECT meta FROM turns WHERE session_id=? AND role='assistant' AND id>?",
                (session_id, since),
            ).fetchall()
        return sum(1 for (meta,) in rows if json.loads(meta).get("mode") in UNHELPFUL_MODES)

    def add_feedback(self, session_id: str, rating: str, comment: str | None) -> None:
        if self.session(session_id) is None:
            raise NotFound(f"no session {session_id!r}")
        with self._tx() as db:
            db.execute(
                "INSERT INTO feedback(session_id, rating, comment, created_at) VALUES (?,?,?,?)",
                (session_id, rating, comment, now_stamp()),
            )

    def stats(self) -> dict[str, Any]:
        """Counts for the admin dashboard: conversations, escalation and resolution rates."""
        with self._read() as db:
            sessions = int(db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
            escalated = int(
                db.execute("SELECT COUNT(DISTINCT session_id) FROM handoffs").fetchone()[0]
            )
            rows = db.execute(
                "SELECT COALESCE(language, 'und'), COUNT(*) FROM sessions GROUP BY 1"
            ).fetchall()
            by_lang = {str(r[0]): int(r[1]) for r in rows}
            rows = db.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating").fetchall()
            ratings = {str(r[0]): int(r[1]) for r in rows}
            open_handoffs = int(
                db.execute("SELECT COUNT(*) FROM handoffs WHERE status='open'").fetchone()[0]
            )
        return {
            "conversations": sessions,
            "escalated_conversations": escalated,
            "escalation_rate": round(escalated / sessions, 4) if sessions else 0.0,
            "resolution_rate": round(1 - escalated / sessions, 4) if sessions else 0.0,
            "open_handoffs": open_handoffs,
            "by_language": by_lang,
            "feedback": ratings,
        }

    # -- privacy --------------------------------------------------------------------------------
    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete everything held about a shopper, found by any identifier (customer id,
        e-mail or phone number): sessions filed under it, and sessions where it was written,
        verified or not. The e-mails and phone numbers the shopper wrote in those sessions
        are searched for too, so a chat that never said who it was is found by what it said.
        Handoffs, feedback, session state and failed-check counters go with the sessions.
        Returns counts: the receipt."""
        key = customer_id.strip()
        with self._tx() as db:
            idents = {key} if key else set()
            sessions: set[str] = set()
            # what the shopper wrote about themself (an e-mail, a phone number) finds the
            # chats where they said only that; a few rounds reach a fixed point
            for _ in range(4):
                sessions |= _sessions_of(db, idents)
                more = _identifiers(db, sessions) - idents
                if not more:
                    break
                idents |= more
            found = idents - {key}
            ids = sorted(sessions)
            turns = 0
            if ids:
                m = marks(ids)
                turns = db.execute(f"DELETE FROM turns WHERE session_id IN ({m})", ids).rowcount
                db.execute(f"DELETE FROM feedback WHERE session_id IN ({m})", ids)
                db.execute(f"DELETE FROM session_state WHERE session_id IN ({m})", ids)
            handoffs = db.execute(
                f"DELETE FROM handoffs WHERE session_id IN ({marks(ids) or 'NULL'}) "
                "OR lower(customer_id)=lower(?)",
                [*ids, key],
            ).rowcount
            if ids:
                db.execute(f"DELETE FROM sessions WHERE session_id IN ({marks(ids)})", ids)
            hashed = [
                attempt_key(kind, v) for v in {key, *found} for kind in ("customer", "client")
            ]
            db.execute(f"DELETE FROM verification_attempts WHERE key IN ({marks(hashed)})", hashed)
        self._scrub()
        return {"sessions": len(sessions), "turns": turns, "handoffs": handoffs}

    def purge_older_than(self, days: int) -> dict[str, int]:
        """Retention: delete transcripts not updated for `days` days."""
        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with self._tx() as db:
            old = [
                r[0]
                for r in db.execute(
                    "SELECT session_id FROM sessions WHERE updated_at<?", (cutoff,)
                ).fetchall()
            ]
            for i in range(0, len(old), 500):  # engines cap the parameters of one statement
                batch = old[i : i + 500]
                for table in ("turns", "handoffs", "feedback", "session_state", "sessions"):
                    db.execute(f"DELETE FROM {table} WHERE session_id IN ({marks(batch)})", batch)
        if old:
            self._scrub()
        return {"sessions": len(old)}


def _sessions_of(db: Db, identifiers: set[str]) -> set[str]:
    """Sessions filed under, or mentioning, any of these identifiers."""
    idents = sorted(i for i in identifiers if i)
    out = {
        r[0]
        for r in db.execute(
            f"SELECT session_id FROM sessions WHERE customer_id IN ({marks(idents)}) "
            f"OR lower(customer_id) IN ({marks(idents)})",
            [*idents, *(i.casefold() for i in idents)],
        ).fetchall()
    }
    mentions = mention_matcher(idents)
    for table, col in (
        ("turns", "content"),
        ("handoffs", "summary"),
        ("feedback", "comment"),
        ("sessions", "customer_id"),
    ):
        for sid, text in db.execute(f"SELECT session_id, {col} FROM {table}"):
            if sid not in out and mentions(text):
                out.add(sid)
    return out


def _identifiers(db: Db, sessions: set[str]) -> set[str]:
    """E-mails and phone numbers the shopper wrote in these sessions."""
    ids = sorted(sessions)
    if not ids:
        return set()
    rows = db.execute(
        f"SELECT content FROM turns WHERE role='user' AND session_id IN ({marks(ids)})", ids
    )
    return written_identifiers(r[0] for r in rows)
