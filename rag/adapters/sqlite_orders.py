"""The embedded order store in one SQLite file (KEFU_COMMERCE__SQLITE_PATH): for one machine.
The queries and the CSV import are rag/adapters/sql_orders.py's."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from rag.adapters.sql_orders import SqlOrders
from rag.sqlite_db import open_sqlite, scrub, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    email TEXT,
    first_name TEXT,
    tags TEXT NOT NULL DEFAULT '',        -- comma separated
    orders_count INTEGER NOT NULL DEFAULT 0,
    total_spent TEXT NOT NULL DEFAULT '0',
    currency TEXT NOT NULL DEFAULT 'USD',
    country TEXT
);
CREATE INDEX IF NOT EXISTS customers_email_lower ON customers(lower(email));
CREATE TABLE IF NOT EXISTS orders (
    order_number TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    email TEXT,
    customer_id TEXT,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    country TEXT,
    postcode TEXT,
    currency TEXT NOT NULL DEFAULT 'USD',
    total TEXT,
    items TEXT NOT NULL DEFAULT '',       -- "2x Travel adapter [TA-100]; 1x Power bank"
    cancelled_at TEXT
);
CREATE TABLE IF NOT EXISTS parcels (
    order_number TEXT NOT NULL REFERENCES orders(order_number) ON DELETE CASCADE,
    tracking_number TEXT NOT NULL,
    carrier TEXT NOT NULL,
    tracking_url TEXT,
    service TEXT NOT NULL DEFAULT 'standard',
    shipped_at TEXT,
    delivered_at TEXT,
    PRIMARY KEY (order_number, tracking_number)
);
CREATE TABLE IF NOT EXISTS tracking_events (
    tracking_number TEXT NOT NULL,
    at TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL,
    PRIMARY KEY (tracking_number, at, description)
);
"""


class SqliteOrders(SqlOrders):
    name = "sqlite"
    row_errors = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path, SCHEMA, what="the order store")
        self._lock = threading.Lock()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._db

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def _scrub(self) -> None:
        scrub(self._db, self._lock)

    def close(self) -> None:
        self._db.close()
