"""Opening a SQLite store the one way kefu does (write-ahead log, foreign keys, the schema),
its write transactions and the scrub after deletions, shared by every SQLite store."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import StoreUnavailable


def open_sqlite(path: Path, schema: str, *, what: str) -> sqlite3.Connection:
    """A connection shared by the threads of one process (writes hold the store's lock);
    autocommit, so transactions are explicit (`transaction`). Raises StoreUnavailable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {what} {path}: {exc}") from exc
    return db


@contextmanager
def transaction(
    db: sqlite3.Connection, lock: threading.Lock | threading.RLock
) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at the start (BEGIN IMMEDIATE) so that it never fails
    half-way on a lock; rolled back on any error."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def scrub(db: sqlite3.Connection, lock: threading.Lock | threading.RLock) -> None:
    """Deleted rows must not linger in free pages or the write-ahead log."""
    with lock:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
