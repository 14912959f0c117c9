"""Orders and customers as kefu sees them, whatever storefront they come from.

Connectors (rag/adapters/*_orders.py) map their platform's shapes onto these types; the order
assistant (rag/commerce/orders.py) and personalisation (rag/commerce/personalisation.py) only
read these.
Timestamps are timezone-aware UTC datetimes; amounts are decimal strings ("129.90").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# An order's state from the shopper's point of view.
OrderStatus = Literal[
    "awaiting_payment",  # placed, payment not received yet
    "unfulfilled",  # paid, being prepared in the warehouse
    "partially_shipped",  # some parcels left, others not yet
    "in_transit",
    "customs_hold",  # held at customs in the destination country
    "out_for_delivery",
    "delivery_exception",  # the carrier could not deliver (address problem, refused, ...)
    "delivered",
    "returned",  # returned to us / refunded after a return
    "cancelled",
]
ORDER_STATUSES: tuple[str, ...] = OrderStatus.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TrackingEvent:
    at: datetime
    description: str
    location: str = ""


@dataclass(frozen=True)
class Fulfilment:
    """One parcel: the carrier, its tracking number and its scans (oldest first)."""

    carrier: str
    tracking_number: str
    tracking_url: str | None = None
    service: str = "standard"  # standard | express
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    events: tuple[TrackingEvent, ...] = ()

    @property
    def last_event(self) -> TrackingEvent | None:
        return max(self.events, key=lambda e: e.at) if self.events else None


@dataclass(frozen=True)
class LineItem:
    title: str
    quantity: int = 1
    sku: str | None = None


@dataclass(frozen=True)
class Order:
    number: str  # what the shopper sees, without "#": "1042"
    id: str  # the platform's own id
    status: OrderStatus
    created_at: datetime
    email: str | None = None
    customer_id: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2 of the shipping address
    postcode: str | None = None
    currency: str = "USD"
    total: str | None = None
    line_items: tuple[LineItem, ...] = ()
    fulfilments: tuple[Fulfilment, ...] = ()
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class Customer:
    id: str
    email: str | None = None
    first_name: str | None = None
    tags: tuple[str, ...] = ()
    orders_count: int = 0
    total_spent: str = "0"
    currency: str = "USD"
    country: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def first_purchase(self) -> bool:
        """True before and right after the first order: the shopper has no history with us."""
        return self.orders_count <= 1


def normalise_order_number(text: str) -> str:
    """'#1042', ' 1042 ', 'No. 1042' -> '1042'; shop prefixes are kept ('JH-1042')."""
    t = text.strip().lstrip("#").strip()
    for prefix in ("no.", "nr.", "n°", "no"):
        if t.lower().startswith(prefix) and t[len(prefix) :].strip()[:1].isdigit():
            t = t[len(prefix) :].strip()
    return t.lstrip("#").upper()
