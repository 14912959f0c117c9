"""Idempotency keys in SQL, shared by the SQLite and PostgreSQL adapters.

One row per key: claimed by the request that runs it (a random token), then holding the
response it got until the key expires. A key is stored as a digest of its scope and itself, so
the table holds no session ids or client addresses. Each adapter supplies its write
transactions and its clock (the database's, where several machines share it).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from rag.adapters.sql_common import Db
from rag.ports import KeyClaim, StoredResponse

SWEEP_EVERY = 200  # claims between deletions of every expired key


def key_id(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


class SqlIdempotency(ABC):
    """Everything but the connections: see the module docstring."""

    def __init__(self) -> None:
        self._claims = itertools.count(1)

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Db]:
        """A connection in a write transaction: committed at the end, rolled back on error."""

    @abstractmethod
    def _now(self, db: Db) -> float:
        """Epoch seconds."""

    @abstractmethod
    def close(self) -> None: ...

    def begin(
        self, scope: str, key: str, fingerprint: str, *, ttl_s: float, lease_s: float
    ) -> KeyClaim:
        kid = key_id(scope, key)
        token = secrets.token_hex(16)
        with self._tx() as db:
            now = self._now(db)
            # an expired key, or a claim whose request died before finishing, is free again
            db.execute(
                "DELETE FROM idempotency_keys WHERE id=? AND "
                "(expires_at<=? OR (status IS NULL AND started_at<=?))",
                (kid, now, now - lease_s),
            )
            if next(self._claims) % SWEEP_EVERY == 0:
                db.execute("DELETE FROM idempotency_keys WHERE expires_at<=?", (now,))
            # concurrent claims of one key: the primary key lets one insert through, the
            # others wait for its commit and insert nothing
            inserted = db.execute(
                "INSERT INTO idempotency_keys(id, fingerprint, token, started_at, expires_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
                (kid, fingerprint, token, now, now + ttl_s),
            ).rowcount
            if inserted == 1:
                return KeyClaim("run", token=token)
            row = db.execute(
                "SELECT fingerprint, status, body, headers FROM idempotency_keys WHERE id=?",
                (kid,),
            ).fetchone()
        if row is None:  # deleted between the two statements (SQLite cannot; kept safe)
            return KeyClaim("in_flight")
        if str(row[0]) != fingerprint:
            return KeyClaim("mismatch")
        if row[1] is None:
            return KeyClaim("in_flight")
        headers = json.loads(str(row[3])) if row[3] else {}
        return KeyClaim("replay", response=StoredResponse(int(row[1]), str(row[2] or ""), headers))

    def finish(self, scope: str, key: str, token: str, response: StoredResponse) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE idempotency_keys SET status=?, body=?, headers=?, token=NULL "
                "WHERE id=? AND token=?",
                (
                    response.status,
                    response.body,
                    json.dumps(dict(response.headers)),
                    key_id(scope, key),
                    token,
                ),
            )

    def release(self, scope: str, key: str, token: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM idempotency_keys WHERE id=? AND token=?", (key_id(scope, key), token)
            )
