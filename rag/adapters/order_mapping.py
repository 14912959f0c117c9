"""What the storefront connectors share when they turn a platform's order into ours.

Each platform says where a parcel is in its own words (a Shopify event status, a TrackShip
status, a Magento shipment comment); the connector maps those onto a ParcelState, and
`order_status` folds the parcels and the order's payment and cancellation into one OrderStatus
with the same rules for every platform.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from rag.commerce.types import OrderStatus, TrackingEvent
from rag.errors import ConnectorUnavailable

# Where one parcel is. Carriers often file a customs hold as an exception or a delay, so
# `refine` lets the words of the latest scan turn either into customs_hold.
ParcelState = Literal[
    "in_transit", "customs_hold", "out_for_delivery", "delivery_exception", "delivered"
]

# The order's parcels, most urgent first: one parcel stuck at customs or undeliverable is what
# the shopper needs to hear about, and among moving parcels the least advanced one decides.
_PRECEDENCE: tuple[ParcelState, ...] = (
    "delivery_exception",
    "customs_hold",
    "in_transit",
    "out_for_delivery",
    "delivered",
)

# "Express" as a word or a word's start (DHL Express, SF Express, Expressversand), but not
# inside a brand name: YunExpress is an economy line.
_EXPRESS = re.compile(r"(?<![a-z])express", re.I)

_CUSTOMS = re.compile(r"customs|aduana|douane|\bzoll|dogana|alf[aâ]ndega|海关|清关|通关", re.I)
_RELEASED = re.compile(
    r"clear(?:ed|ance (?:complete|completed|finished))|releas|liberad|dédouan|freigegeben|"
    r"放行|清关完成",
    re.I,
)
_EXCEPTION = re.compile(
    r"not delivered|undeliver|could not be delivered|unable to deliver|delivery failed|"
    r"failed delivery|delivery attempt|attempted delivery|refused|return(?:ed|ing)? to sender|"
    r"address (?:problem|issue|incorrect|incomplete)|exception|no se pudo entregar|"
    r"zustellung nicht möglich|派送失败|退回",
    re.I,
)
_OUT_FOR_DELIVERY = re.compile(
    r"out for delivery|with (?:the )?courier for delivery|en reparto|en cours de livraison|"
    r"in zustellung|派送中|派件中",
    re.I,
)
_DELIVERED = re.compile(r"\bdelivered\b|entregado|livré|zugestellt|consegnato|已签收|妥投", re.I)


def service_for(*names: str | None) -> str:
    """'express' when a carrier or shipping-method name says express, else 'standard'."""
    return "express" if any(n and _EXPRESS.search(n) for n in names) else "standard"


def state_from_text(text: str) -> ParcelState | None:
    """A parcel state read from the words of one scan, or None when they say nothing special."""
    if _CUSTOMS.search(text):
        return "in_transit" if _RELEASED.search(text) else "customs_hold"
    if _EXCEPTION.search(text):
        return "delivery_exception"
    if _OUT_FOR_DELIVERY.search(text):
        return "out_for_delivery"
    if _DELIVERED.search(text):
        return "delivered"
    return None


def refine(state: ParcelState, events: Sequence[TrackingEvent]) -> ParcelState:
    """A platform's state, corrected by the latest scan when that scan reports a customs hold."""
    if state in ("in_transit", "delivery_exception") and events:
        latest = max(events, key=lambda e: e.at)
        if state_from_text(latest.description) == "customs_hold":
            return "customs_hold"
    return state


def order_status(
    *,
    cancelled: bool = False,
    returned: bool = False,
    paid: bool = True,
    parcels: Sequence[ParcelState] = (),
    all_shipped: bool = True,
    unshipped: OrderStatus | None = None,
) -> OrderStatus:
    """One status for the shopper: cancellation and returns first, then payment, then parcels.

    `unshipped` is the platform's own word for an order without parcel data (WooCommerce's
    "completed" says delivered even when no tracking was recorded)."""
    if cancelled:
        return "cancelled"
    if returned:
        return "returned"
    if not parcels:
        if unshipped is not None:
            return unshipped
        return "unfulfilled" if paid else "awaiting_payment"
    for urgent in _PRECEDENCE[:2]:
        if urgent in parcels:
            return urgent
    if not all_shipped:
        return "partially_shipped"
    for state in _PRECEDENCE[2:]:
        if state in parcels:
            return state
    return "in_transit"  # unreachable: every ParcelState is in _PRECEDENCE


def utc(value: str | int | float | None) -> datetime | None:
    """A timezone-aware UTC datetime from an ISO 8601 string ('Z', an offset, or none: UTC),
    a 'YYYY-MM-DD HH:MM:SS' string (Magento, WooCommerce *_gmt), or a Unix timestamp."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), UTC)
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def required_utc(value: str | int | float | None, platform: str) -> datetime:
    """`utc` for a date the order cannot do without (its creation)."""
    at = utc(value)
    if at is None:
        raise ConnectorUnavailable(f"{platform} sent an unreadable date: {value!r}")
    return at


def money(value: str | int | float | Decimal | None) -> str | None:
    """'129.9', 129.9 or '129.90' -> '129.90'; whole amounts keep two decimals too."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    cents = amount.quantize(Decimal("0.01"))
    return str(cents) if cents == amount else str(amount)


def location(*parts: str | None) -> str:
    """'Mexico City, MX' from the non-empty parts."""
    return ", ".join(p.strip() for p in parts if p and p.strip())


def sorted_events(events: Iterable[TrackingEvent]) -> tuple[TrackingEvent, ...]:
    """Oldest first, without the duplicates two tracking sources often share."""
    seen: set[tuple[datetime, str]] = set()
    out: list[TrackingEvent] = []
    for e in sorted(events, key=lambda e: e.at):
        if (e.at, e.description) not in seen:
            seen.add((e.at, e.description))
            out.append(e)
    return tuple(out)


def delivered_at(
    state: ParcelState, events: Sequence[TrackingEvent], stated: datetime | None
) -> datetime | None:
    """When a delivered parcel arrived: the platform's date, else its latest scan."""
    if stated is not None:
        return stated
    if state == "delivered" and events:
        return max(e.at for e in events)
    return None
