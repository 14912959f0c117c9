"""The embedded order store on every engine (a SQLite file, a real PostgreSQL server): the same
CSV import, lookups, date rebasing and erasure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rag.adapters.sql_orders import SqlOrders
from rag.errors import InvalidInput
from rag.settings import DatabaseSettings
from tests.conftest import SAMPLE_STORE

COMMERCE = SAMPLE_STORE / "commerce"


@pytest.fixture(params=["sqlite", "postgres"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlOrders]:
    db: SqlOrders
    if request.param == "sqlite":
        from rag.adapters.sqlite_orders import SqliteOrders

        db = SqliteOrders(tmp_path / "commerce.sqlite3")
    else:
        from pydantic import SecretStr

        from rag.adapters.postgres_orders import PostgresOrders

        db = PostgresOrders(DatabaseSettings(url=SecretStr(request.getfixturevalue("pg_dsn"))))
    yield db
    db.close()


@pytest.fixture
def orders(empty: SqlOrders) -> SqlOrders:
    for name in ("customers.csv", "orders.csv", "tracking.csv"):
        empty.import_csv(COMMERCE / name)
    return empty


def test_import_and_lookup(orders: SqlOrders) -> None:
    assert orders.counts() == {
        "orders": 14,
        "parcels": 11,
        "tracking_events": 40,
        "customers": 13,
    }
    order = orders.get_order("#1042")
    assert order is not None
    assert (order.status, order.country, order.postcode) == ("in_transit", "MX", "06700")
    assert order.fulfilments[0].carrier == "4PX"
    assert order.fulfilments[0].last_event is not None
    assert order.fulfilments[0].last_event.description.startswith("Handed to local carrier")
    assert [i.quantity for i in order.line_items] == [2, 1]
    assert orders.get_order("9999") is None
    vip = orders.get_customer("JAMES.WALKER@example.co.uk")  # e-mails match in any case
    assert vip is not None
    assert vip.id == "C-2002"
    assert "VIP" in vip.tags
    first = orders.get_customer("C-2001")
    assert first is not None
    assert first.first_purchase
    assert orders.get_customer("c-2001") is None  # ids are exact


def test_importing_again_updates_rows(orders: SqlOrders, tmp_path: Path) -> None:
    newer = tmp_path / "orders.csv"
    newer.write_text(
        "order_number,email,created_at,status,tracking_number,carrier\n"
        "1042,maria@example.com,2026-11-01T00:00:00Z,delivered,NEWTRACK1,DHL\n"
    )
    assert orders.import_csv(newer) == ("orders", 1)
    order = orders.get_order("1042")
    assert order is not None
    assert order.status == "delivered"
    assert "NEWTRACK1" in {f.tracking_number for f in order.fulfilments}
    assert orders.counts()["orders"] == 14


def test_a_bad_csv_changes_nothing(empty: SqlOrders, tmp_path: Path) -> None:
    bad = tmp_path / "orders.csv"
    good_row = "1,a@example.com,2026-11-01T00:00:00Z,unfulfilled"
    bad.write_text(
        f"order_number,email,created_at,status\n{good_row}\n2,b@example.com,2026-11-01,lost\n"
    )
    with pytest.raises(InvalidInput, match="line 3"):
        empty.import_csv(bad)
    assert empty.counts()["orders"] == 0
    no_date = tmp_path / "no_date.csv"
    no_date.write_text(f"order_number,email,created_at,status\n{good_row}\n3,c@example.com,,paid\n")
    with pytest.raises(InvalidInput, match="line 3"):
        empty.import_csv(no_date)
    assert empty.counts()["orders"] == 0
    other = tmp_path / "other.csv"
    other.write_text("sku,price\nA,1\n")
    with pytest.raises(InvalidInput, match="not an orders, customers or tracking CSV"):
        empty.import_csv(other)


def test_rebase_moves_every_date_alike(orders: SqlOrders) -> None:
    before = orders.get_order("1042")
    assert before is not None
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    shift = orders.rebase_dates(now)
    assert shift.days > 1000
    after = orders.get_order("1042")
    assert after is not None
    assert after.created_at - before.created_at == shift
    newest = max(
        e.at
        for n in ("1042", "1043", "1044")
        if (o := orders.get_order(n)) is not None
        for f in o.fulfilments
        for e in f.events
    )
    assert newest <= now - timedelta(days=1)
    assert [e.at - shift for e in after.fulfilments[0].events] == [
        e.at for e in before.fulfilments[0].events
    ]
    assert orders.rebase_dates(now) == timedelta(0)  # already there


def test_erasure_unlinks_the_orders(orders: SqlOrders) -> None:
    receipt = orders.erase_customer("james.walker@example.co.uk")
    assert receipt == {"profiles": 1, "orders_anonymised": 1}
    assert orders.get_customer("C-2002") is None
    order = orders.get_order("1043")
    assert order is not None  # the seller's record stays...
    assert (order.email, order.postcode, order.customer_id) == (None, None, None)  # ...unlinked
    assert orders.erase_customer("nobody@example.com") == {"profiles": 0, "orders_anonymised": 0}
