"""PostgreSQL plumbing for the stores several workers share: a connection pool per schema,
the schema's migrations, and connections that take the `?` placeholders the shared SQL uses.

Migrations are plain SQL files (rag/adapters/migrations/<set>/NNNN.name.sql) applied by
yoyo-migrations: SQL-first, so the files are the schema as a DBA reads it, with no ORM or
models to keep in step (kefu's queries are hand-written SQL shared with SQLite); it records
what was applied in the schema itself and locks while migrating. Several workers start at
once, so a PostgreSQL advisory lock around it makes them migrate one at a time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from rag.errors import ConfigError, StoreUnavailable
from rag.settings import DatabaseSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SHARED_SCHEMA = "kefu"  # the embedded order store and the rate limits: one per database


def store_schema(store: str) -> str:
    """The schema of one store's conversations (store names are identifiers already)."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,40}", store):
        raise ConfigError(f"store name {store!r} cannot name a PostgreSQL schema")
    return f"kefu_store_{store.lower()}"


def _check_url(url: str) -> str:
    if urlsplit(url).scheme not in {"postgresql", "postgres"}:
        raise ConfigError(
            "KEFU_DATABASE__URL must be a URL like postgresql://user:password@host:5432/kefu"
        )
    return url


class PgConnection:
    """A pooled connection as the shared SQL uses it: `?` placeholders (the SQL holds no
    literal `?` or `%`), engine errors raised as StoreUnavailable."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = (), /) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(sql.replace("?", "%s"), params)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"database error: {exc}") from exc


class PgSchema:
    """A connection pool whose connections work in one schema, migrated on open."""

    def __init__(self, settings: DatabaseSettings, schema: str, migrations: str) -> None:
        if settings.url is None:
            raise ConfigError("KEFU_DATABASE__URL is not set")
        self.url = _check_url(settings.url.get_secret_value())
        self.schema = schema
        migrate(self.url, schema, MIGRATIONS / migrations)
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.url,
            min_size=settings.pool_min,
            max_size=max(settings.pool_min, settings.pool_max),
            timeout=settings.pool_timeout_s,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            name=schema,
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=settings.pool_timeout_s)
        except psycopg.Error as exc:
            self.pool.close()
            raise StoreUnavailable(f"cannot connect to the database: {exc}") from exc

    @contextmanager
    def connection(self) -> Iterator[PgConnection]:
        """A connection in autocommit mode: each statement commits on its own."""
        try:
            with self.pool.connection() as conn:
                yield PgConnection(conn)
        except psycopg.OperationalError as exc:  # includes the pool's timeout
            raise StoreUnavailable(f"database unavailable: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """A connection in one transaction: committed at the end, rolled back on error."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield PgConnection(conn)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"database unavailable: {exc}") from exc

    def close(self) -> None:
        self.pool.close()


def migrate(url: str, schema: str, folder: Path) -> None:
    """Create the schema and apply the folder's migrations not applied yet."""
    from yoyo import get_backend, read_migrations

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (schema,))
            try:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                parts = urlsplit(url)
                sep = "&" if parts.query else ""
                yoyo_url = urlunsplit(
                    parts._replace(
                        scheme="postgresql+psycopg", query=f"{parts.query}{sep}schema={schema}"
                    )
                )
                backend = get_backend(yoyo_url)
                try:
                    migrations = read_migrations(str(folder))
                    with backend.lock():
                        pending = backend.to_apply(migrations)
                        if pending:
                            log.info("migrating %s: %d migrations", schema, len(pending))
                        backend.apply_migrations(pending)
                finally:
                    backend.connection.close()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (schema,))
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot migrate the database schema {schema}: {exc}") from exc
