"""The embedded order store in SQL, shared by the SQLite and PostgreSQL adapters: orders,
parcels, tracking scans and customers.

Sellers without a Shopify/WooCommerce/Magento connection (and the demo) load their data with
`kefu store import orders.csv customers.csv tracking.csv`. The CSV formats are documented in
examples/sample_store/commerce/README.md; each file is recognised by its header.

The queries are written once, in the SQL both engines speak, with `?` placeholders (see
rag/adapters/sql_conversations.py); each adapter supplies connections, transactions and the
scrub after an erasure.
"""

from __future__ import annotations

import csv
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rag.adapters.order_mapping import service_for
from rag.adapters.sql_common import Db, marks
from rag.commerce.types import (
    ORDER_STATUSES,
    Customer,
    Fulfilment,
    LineItem,
    Order,
    OrderStatus,
    TrackingEvent,
    normalise_order_number,
)
from rag.errors import InvalidInput

ORDER_COLUMNS = {"order_number", "email", "created_at", "status"}
CUSTOMER_COLUMNS = {"customer_id", "email", "tags"}
EVENT_COLUMNS = {"tracking_number", "at", "description"}
_ITEM = re.compile(r"^\s*(?:(\d+)\s*[x×]\s*)?(.+?)\s*(?:\[([^\]]+)\])?\s*$")
_DATE_FIELDS = ("created_at", "shipped_at", "delivered_at", "cancelled_at", "at")
_DATE_COLUMNS = (
    ("orders", "created_at"),
    ("orders", "cancelled_at"),
    ("parcels", "shipped_at"),
    ("parcels", "delivered_at"),
    ("tracking_events", "at"),
)


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


class SqlOrders(ABC):
    name = "sqlite"
    # the engine's errors a bad CSV row can raise (reported with its line number)
    row_errors: tuple[type[Exception], ...] = ()

    @abstractmethod
    def _read(self) -> AbstractContextManager[Db]: ...

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Db]: ...

    @abstractmethod
    def _scrub(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- OrderConnector -------------------------------------------------------------------------
    def get_order(self, number: str) -> Order | None:
        with self._read() as db:
            row = db.execute(
                "SELECT order_number, order_id, email, customer_id, created_at, status, country, "
                "postcode, currency, total, items, cancelled_at FROM orders WHERE order_number=?",
                (normalise_order_number(number),),
            ).fetchone()
            if row is None:
                return None
            parcels = db.execute(
                "SELECT tracking_number, carrier, tracking_url, service, shipped_at, "
                "delivered_at FROM parcels WHERE order_number=? "
                "ORDER BY shipped_at, tracking_number",
                (row[0],),
            ).fetchall()
            fulfilments = []
            for p in parcels:
                events = db.execute(
                    "SELECT at, location, description FROM tracking_events "
                    "WHERE tracking_number=? ORDER BY at",
                    (p[0],),
                ).fetchall()
                fulfilments.append(
                    Fulfilment(
                        carrier=p[1],
                        tracking_number=p[0],
                        tracking_url=p[2] or None,
                        service=p[3],
                        shipped_at=_dt(p[4]),
                        delivered_at=_dt(p[5]),
                        events=tuple(
                            TrackingEvent(
                                at=_dt(e[0]) or datetime.now(UTC), location=e[1], description=e[2]
                            )
                            for e in events
                        ),
                    )
                )
        status: OrderStatus = row[5]
        return Order(
            number=row[0],
            id=row[1],
            status=status,
            created_at=_dt(row[4]) or datetime.now(UTC),
            email=row[2] or None,
            customer_id=row[3] or None,
            country=row[6] or None,
            postcode=row[7] or None,
            currency=row[8],
            total=row[9] or None,
            line_items=tuple(_items(row[10])),
            fulfilments=tuple(fulfilments),
            cancelled_at=_dt(row[11]),
        )

    def get_customer(self, key: str) -> Customer | None:
        with self._read() as db:
            row = db.execute(
                "SELECT customer_id, email, first_name, tags, orders_count, total_spent, "
                "currency, country FROM customers WHERE customer_id=? OR lower(email)=lower(?) "
                "ORDER BY customer_id<>? LIMIT 1",
                (key.strip(), key.strip(), key.strip()),
            ).fetchone()
        if row is None:
            return None
        return Customer(
            id=row[0],
            email=row[1] or None,
            first_name=row[2] or None,
            tags=tuple(t.strip() for t in row[3].split(",") if t.strip()),
            orders_count=int(row[4]),
            total_spent=row[5],
            currency=row[6],
            country=row[7] or None,
        )

    # -- import ---------------------------------------------------------------------------------
    def import_csv(self, path: Path) -> tuple[str, int]:
        """Load one CSV (orders, customers or tracking events, told apart by the header) in
        one transaction: a file with a bad row changes nothing. Rows replace rows with the
        same key, so importing a newer export again updates the store."""
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInput(f"{path}: cannot read CSV ({exc})") from exc
        header = set(rows[0]) if rows else set()
        apply: Callable[[Db, dict[str, str]], None]
        if header >= ORDER_COLUMNS:
            kind, apply = "orders", _import_order
        elif header >= EVENT_COLUMNS:
            kind, apply = "tracking events", _import_event
        elif header >= CUSTOMER_COLUMNS:
            kind, apply = "customers", _import_customer
        else:
            raise InvalidInput(
                f"{path}: not an orders, customers or tracking CSV (expected the columns "
                f"{sorted(ORDER_COLUMNS)}, {sorted(CUSTOMER_COLUMNS)} or {sorted(EVENT_COLUMNS)})"
            )
        bad_row: tuple[type[Exception], ...] = (ValueError, KeyError, *self.row_errors)
        with self._tx() as db:
            for i, row in enumerate(rows, start=2):
                try:
                    apply(db, {k: (v or "").strip() for k, v in row.items() if k})
                except bad_row as exc:
                    raise InvalidInput(f"{path}, line {i}: {exc}") from exc
        return kind, len(rows)

    def rebase_dates(self, now: datetime | None = None) -> timedelta:
        """Shift every date so that the newest tracking scan was a day ago: sample data stays
        realistic ("in transit", "late") whenever the demo runs."""
        with self._tx() as db:
            values = {
                (table, col): [v for (v,) in db.execute(f"SELECT DISTINCT {col} FROM {table}")]
                for table, col in _DATE_COLUMNS
            }
            newest = max(
                (d for vs in values.values() for v in vs if (d := _dt(v)) is not None),
                default=None,
            )
            if newest is None:
                return timedelta(0)
            target = (now or datetime.now(UTC)) - timedelta(days=1)
            shift = timedelta(days=(target - newest).days)
            for (table, col), vs in values.items():
                # latest first when moving forward (earliest first back): a value never lands
                # on one not moved yet, which would break a key holding the date
                for v in sorted((v for v in vs if v), reverse=shift > timedelta(0)):
                    d = _dt(v)
                    if d is not None:
                        db.execute(
                            f"UPDATE {table} SET {col}=? WHERE {col}=?", (_iso(d + shift), v)
                        )
        return shift

    def erase_customer(self, key: str) -> dict[str, int]:
        """GDPR erasure: delete the customer's profile and strip their e-mail, postcode and
        customer id from their orders. The orders themselves stay (the seller's accounting
        records), but can no longer be linked to the person or opened with their proof."""
        key = key.strip()
        with self._tx() as db:
            rows = db.execute(
                "SELECT customer_id, email FROM customers WHERE customer_id=? "
                "OR lower(email)=lower(?)",
                (key, key),
            ).fetchall()
            ids = sorted({key} | {r[0] for r in rows})
            emails = sorted({key.casefold()} | {r[1].casefold() for r in rows if r[1]})
            profiles = db.execute(
                f"DELETE FROM customers WHERE customer_id IN ({marks(ids)})", ids
            ).rowcount
            orders = db.execute(
                "UPDATE orders SET email=NULL, postcode=NULL, customer_id=NULL "
                f"WHERE customer_id IN ({marks(ids)}) OR lower(email) IN ({marks(emails)})",
                [*ids, *emails],
            ).rowcount
        self._scrub()
        return {"profiles": profiles, "orders_anonymised": orders}

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            return {
                t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in ("orders", "parcels", "tracking_events", "customers")
            }


def _import_order(db: Db, r: dict[str, str]) -> None:
    number = normalise_order_number(r["order_number"])
    if not number:
        raise ValueError("order_number is empty")
    if r["status"] not in ORDER_STATUSES:
        raise ValueError(f"status {r['status']!r} is not one of {', '.join(ORDER_STATUSES)}")
    dates = {k: _iso(_dt(r.get(k))) for k in _DATE_FIELDS}
    if dates["created_at"] is None:
        raise ValueError("created_at is empty")
    db.execute(
        "INSERT INTO orders(order_number, order_id, email, customer_id, created_at, status, "
        "country, postcode, currency, total, items, cancelled_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(order_number) DO UPDATE SET "
        "order_id=excluded.order_id, email=excluded.email, customer_id=excluded.customer_id, "
        "created_at=excluded.created_at, status=excluded.status, country=excluded.country, "
        "postcode=excluded.postcode, currency=excluded.currency, total=excluded.total, "
        "items=excluded.items, cancelled_at=excluded.cancelled_at",
        (
            number,
            r.get("order_id") or number,
            r.get("email") or None,
            r.get("customer_id") or None,
            dates["created_at"],
            r["status"],
            (r.get("country") or "").upper() or None,
            r.get("postcode") or None,
            r.get("currency") or "USD",
            r.get("total") or None,
            r.get("items", ""),
            dates["cancelled_at"],
        ),
    )
    # one row per parcel: rows of the same order with other tracking numbers add parcels
    if r.get("tracking_number"):
        service = r.get("service") or service_for(r.get("carrier"))
        db.execute(
            "INSERT INTO parcels(order_number, tracking_number, carrier, tracking_url, service, "
            "shipped_at, delivered_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(order_number, tracking_number) DO UPDATE SET carrier=excluded.carrier, "
            "tracking_url=excluded.tracking_url, service=excluded.service, "
            "shipped_at=excluded.shipped_at, delivered_at=excluded.delivered_at",
            (
                number,
                r["tracking_number"],
                r.get("carrier") or "",
                r.get("tracking_url") or None,
                service,
                dates["shipped_at"],
                dates["delivered_at"],
            ),
        )


def _import_customer(db: Db, r: dict[str, str]) -> None:
    db.execute(
        "INSERT INTO customers(customer_id, email, first_name, tags, orders_count, total_spent, "
        "currency, country) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(customer_id) DO UPDATE SET "
        "email=excluded.email, first_name=excluded.first_name, tags=excluded.tags, "
        "orders_count=excluded.orders_count, total_spent=excluded.total_spent, "
        "currency=excluded.currency, country=excluded.country",
        (
            r["customer_id"],
            r.get("email") or None,
            r.get("first_name") or None,
            ",".join(t.strip() for t in re.split(r"[,;]", r.get("tags", "")) if t.strip()),
            int(r.get("orders_count") or 0),
            r.get("total_spent") or "0",
            r.get("currency") or "USD",
            (r.get("country") or "").upper() or None,
        ),
    )


def _import_event(db: Db, r: dict[str, str]) -> None:
    at = _iso(_dt(r["at"]))
    if at is None:
        raise ValueError("at is empty")
    db.execute(
        "INSERT INTO tracking_events(tracking_number, at, location, description) "
        "VALUES (?,?,?,?) ON CONFLICT(tracking_number, at, description) DO UPDATE SET "
        "location=excluded.location",
        (r["tracking_number"], at, r.get("location", ""), r["description"]),
    )


def _items(text: str) -> Iterable[LineItem]:
    for part in text.split(";"):
        m = _ITEM.match(part)
        if part.strip() and m:
            yield LineItem(title=m.group(2), quantity=int(m.group(1) or 1), sku=m.group(3))
