"""What the SQL shared by the SQLite and PostgreSQL stores needs of a connection: `execute`
with `?` placeholders, returning a cursor (sqlite3's as it is, psycopg's through
rag.adapters.postgres_db.PgConnection)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """One connection, as the shared queries use it (`?` placeholders)."""

    def execute(self, sql: str, params: Any = (), /) -> Cursor: ...


def marks(values: Iterable[object]) -> str:
    return ",".join("?" for _ in values)
