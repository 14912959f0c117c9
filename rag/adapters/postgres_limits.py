"""Rate limits in PostgreSQL (schema kefu, table rate_hits): one sliding one-minute window per
key, counted by every worker and machine alike, on the database's clock."""

from __future__ import annotations

import itertools
import threading

from rag.adapters.postgres_db import SHARED_SCHEMA, PgSchema
from rag.settings import DatabaseSettings

WINDOW_S = 60.0
SWEEP_EVERY = 500  # checks between deletions of every key's expired hits (idle keys)


class PostgresRateWindow:
    def __init__(self, settings: DatabaseSettings) -> None:
        self._settings = settings
        self._pg: PgSchema | None = None
        self._opening = threading.Lock()
        self._checks = itertools.count(1)

    def _schema(self) -> PgSchema:
        """Connected on first use: a database that is down at start-up makes requests 503
        (StoreUnavailable) until it is back, instead of stopping the server."""
        with self._opening:
            if self._pg is None:
                self._pg = PgSchema(self._settings, SHARED_SCHEMA, "shared")
            return self._pg

    def check(self, key: str, per_minute: int, *, count: bool = True) -> float | None:
        with self._schema().transaction() as db:
            # one writer per key at a time, so concurrent workers cannot both take the last slot
            db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
            row = db.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
            now = float(row[0]) if row else 0.0
            db.execute("DELETE FROM rate_hits WHERE key=? AND at<=?", (key, now - WINDOW_S))
            row = db.execute(
                "SELECT COUNT(*), MIN(at) FROM rate_hits WHERE key=?", (key,)
            ).fetchone()
            if row is not None and int(row[0]) >= per_minute:  # at the limit: MIN(at) is set
                return max(0.0, WINDOW_S - (now - float(row[1])))
            if count:
                db.execute("INSERT INTO rate_hits(key, at) VALUES (?,?)", (key, now))
            if next(self._checks) % SWEEP_EVERY == 0:
                db.execute("DELETE FROM rate_hits WHERE at<=?", (now - WINDOW_S,))
        return None

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
