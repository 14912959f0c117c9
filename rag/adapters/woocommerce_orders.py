"""OrderConnector on the WooCommerce REST API v3 (/wp-json/wc/v3), with a consumer key/secret.

Authentication is HTTP Basic with the consumer key and secret, which WooCommerce accepts over
HTTPS only: configure the https:// address of the shop.

Order numbers: the number is the post id unless a sequential-numbers plugin renumbers orders,
so `GET /orders/{n}` is tried first and kept only when its `number` matches; otherwise the
orders are searched (`?search=n`, paged by X-WP-TotalPages) for the matching `number`.

Parcels come from the Shipment Tracking extension's `_wc_shipment_tracking_items` order meta
(Advanced Shipment Tracking writes the same key); carrier scans and per-parcel states from
TrackShip's `shipment_status` meta when that plugin is installed.

Status mapping: pending/failed -> awaiting_payment; on-hold -> awaiting_payment while unpaid
(bank transfer, cheque), else like processing; processing -> unfulfilled, or the parcels'
state once tracking is recorded; completed -> delivered unless TrackShip reports otherwise;
cancelled -> cancelled; refunded -> returned (cancelled when nothing had shipped). The
Advanced Shipment Tracking statuses shipped / partial-shipped / delivered are understood.
WooCommerce keeps no cancellation date, so cancelled_at stays empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx

# every connector maps into the same types with the same helpers: alike import lists, on purpose
from rag.adapters.http_retry import RetryingClient, json_body
from rag.adapters.order_mapping import (
    ParcelState,
    delivered_at,
    location,
    money,
    order_status,
    refine,
    required_utc,
    service_for,
    sorted_events,
    utc,
)
from rag.adapters.rest_orders import RestOrderConnector
from rag.commerce.types import (
    Customer,
    Fulfilment,
    LineItem,
    Order,
    OrderStatus,
    TrackingEvent,
    normalise_order_number,
)

log = logging.getLogger(__name__)

PER_PAGE = 100  # the API's maximum
MAX_PAGES = 10  # bound on the calls one lookup makes

_TRACKSHIP_STATES: dict[str, ParcelState] = {
    "pre_transit": "in_transit",
    "in_transit": "in_transit",
    "on_hold": "in_transit",
    "available_for_pickup": "out_for_delivery",
    "out_for_delivery": "out_for_delivery",
    "delivered": "delivered",
    "return_to_sender": "delivery_exception",
    "exception": "delivery_exception",
    "failure": "delivery_exception",
    "failed_attempt": "delivery_exception",
}
# wc_get_is_paid_statuses(), plus the statuses Advanced Shipment Tracking adds
_PAID = {"processing", "completed", "shipped", "partial-shipped", "delivered"}
_UNPAID = {"pending", "failed", "checkout-draft"}
_DEFAULT_STATE: dict[str, ParcelState] = {"completed": "delivered", "delivered": "delivered"}
_UNSHIPPED: dict[str, OrderStatus] = {
    "completed": "delivered",
    "delivered": "delivered",
    "shipped": "in_transit",
    "partial-shipped": "partially_shipped",
}


class WooCommerceOrders(RestOrderConnector):
    name = "woocommerce"
    customers_path = "/customers"
    no_route = ("code", "rest_no_route")
    route_hint = "is the address right and WooCommerce active?"

    def __init__(
        self,
        url: str,
        key: str,
        secret: str,
        *,  # the retry knobs every connector takes alike (rag/container.py passes them)
        timeout_s: float = 10,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        base = url.rstrip("/")
        if not base.endswith("/wp-json/wc/v3"):
            base += "/wp-json/wc/v3"
        http = RetryingClient(
            "woocommerce",
            base,
            auth=(key, secret),
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            error_message=_error_message,
        )
        super().__init__(base, http)
        self._currency: str | None = None  # the store's currency, asked once

    # --- OrderConnector (get_customer and close: RestOrderConnector) ----------------------

    def get_order(self, number: str) -> Order | None:
        wanted = normalise_order_number(number)
        if not wanted:
            return None
        if wanted.isdigit():
            response = self._get(f"/orders/{wanted}")
            if response.status_code == 200:
                order = json_body(response, self.name)
                if normalise_order_number(str(order.get("number", ""))) == wanted:
                    return _order(order)
        # a sequential-numbers plugin: the number is not the id, search for it
        for page in self._pages("/orders", {"search": wanted}):
            for order in page:
                if normalise_order_number(str(order.get("number", ""))) == wanted:
                    return _order(order)
        return None

    def _customers_by_email(self, email: str) -> list[dict[str, Any]]:
        # role=all: the default lists only the "customer" role, not wholesale buyers
        response = self._get("/customers", params={"email": email, "role": "all"})
        found: list[dict[str, Any]] = json_body(response, self.name)
        return found

    # --- helpers -------------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Yield each page of a list endpoint, following X-WP-TotalPages."""
        page = 1
        while page <= MAX_PAGES:
            response = self._get(path, params={**params, "per_page": PER_PAGE, "page": page})
            if response.status_code == 404:
                return
            yield json_body(response, self.name)
            total_pages = int(response.headers.get("X-WP-TotalPages") or 1)
            if page >= total_pages:
                return
            page += 1
        log.warning("woocommerce: stopped after %d pages of %s", MAX_PAGES, path)

    def _customer(self, c: dict[str, Any]) -> Customer:
        role = c.get("role") or ""
        address = c.get("shipping") or {}
        billing = c.get("billing") or {}
        if "orders_count" in c and "total_spent" in c:
            # older WooCommerce versions still report these, in the store's currency
            count, spent = int(c["orders_count"]), money(c["total_spent"]) or "0"
            currency = self._store_currency()
        else:
            count, spent, currency = self._order_totals(int(c["id"]))
        return Customer(
            id=str(c["id"]),
            email=c.get("email") or None,
            first_name=c.get("first_name") or None,
            tags=(role,) if role and role != "customer" else (),
            orders_count=count,
            total_spent=spent,
            currency=currency,
            country=address.get("country") or billing.get("country") or None,
            extra={"role": role} if role else {},
        )

    def _order_totals(self, customer_id: int) -> tuple[int, str, str]:
        """(orders placed, amount spent on paid orders, currency) from the customer's orders:
        the count is the X-WP-Total header, the amount the paid orders' totals."""
        count = 0
        spent = Decimal(0)
        currency: str | None = None
        page = 1
        while page <= MAX_PAGES:
            response = self._get(
                "/orders", params={"customer": customer_id, "per_page": PER_PAGE, "page": page}
            )
            orders = json_body(response, self.name)
            count = int(response.headers.get("X-WP-Total") or len(orders))
            for o in orders:
                currency = currency or o.get("currency")
                if o.get("status") in _PAID:
                    spent += Decimal(str(o.get("total") or 0))
            if page >= int(response.headers.get("X-WP-TotalPages") or 1):
                break
            page += 1
        return count, money(spent) or "0", currency or self._store_currency()

    def _store_currency(self) -> str:
        if self._currency is None:
            response = self._http.get("/data/currencies/current")
            code = (
                json_body(response, self.name).get("code") if response.status_code == 200 else None
            )
            self._currency = str(code or "USD")
        return self._currency


def _order(o: dict[str, Any]) -> Order:
    status = o["status"]
    method = next((s.get("method_title") for s in o.get("shipping_lines") or []), None)
    trackers = _meta_list(o, "shipment_status")
    fulfilments: list[Fulfilment] = []
    states: list[ParcelState] = []
    for i, item in enumerate(_meta_list(o, "_wc_shipment_tracking_items")):
        tracker = trackers[i] if i < len(trackers) and isinstance(trackers[i], dict) else {}
        events = _events(tracker)
        state = refine(
            _TRACKSHIP_STATES.get(
                tracker.get("status") or "", _DEFAULT_STATE.get(status, "in_transit")
            ),
            events,
        )
        states.append(state)
        carrier = item.get("custom_tracking_provider") or _provider_name(
            item.get("tracking_provider") or ""
        )
        fulfilments.append(
            Fulfilment(
                carrier=carrier,
                tracking_number=str(item.get("tracking_number") or ""),
                tracking_url=item.get("custom_tracking_link") or None,
                service=service_for(carrier, method),
                shipped_at=utc(item.get("date_shipped")),
                delivered_at=delivered_at(state, events, None),
                events=events,
            )
        )
    refunded = status == "refunded"
    unpaid = status in _UNPAID or (status == "on-hold" and not o.get("date_paid_gmt"))
    shipping = o.get("shipping") or {}
    billing = o.get("billing") or {}
    return Order(
        number=normalise_order_number(str(o["number"])),
        id=str(o["id"]),
        status=order_status(
            cancelled=status == "cancelled" or (refunded and not states),
            returned=refunded and bool(states),
            paid=not unpaid,
            parcels=() if status in _UNPAID else states,
            all_shipped=status != "partial-shipped",
            unshipped=_UNSHIPPED.get(status),
        ),
        created_at=required_utc(o.get("date_created_gmt") or o.get("date_created"), "woocommerce"),
        email=billing.get("email") or None,
        customer_id=str(o["customer_id"]) if o.get("customer_id") else None,
        country=shipping.get("country") or billing.get("country") or None,
        postcode=shipping.get("postcode") or billing.get("postcode") or None,
        currency=o.get("currency") or "USD",
        total=money(o.get("total")),
        line_items=tuple(
            LineItem(title=i["name"], quantity=int(i["quantity"]), sku=i.get("sku") or None)
            for i in o.get("line_items") or []
        ),
        fulfilments=tuple(fulfilments),
    )


def _meta_list(o: dict[str, Any], key: str) -> list[Any]:
    """A list-valued order meta. PHP arrays with gaps in their keys arrive as JSON objects."""
    for meta in o.get("meta_data") or []:
        if meta.get("key") == key:
            value = meta.get("value")
            if isinstance(value, dict):
                return [value[k] for k in sorted(value, key=lambda k: int(k))]
            return list(value) if isinstance(value, list) else []
    return []


def _events(tracker: dict[str, Any]) -> tuple[TrackingEvent, ...]:
    """TrackShip's scans: the origin carrier's and, for international parcels, the
    destination carrier's."""
    events = []
    raw = list(tracker.get("tracking_events") or []) + list(
        tracker.get("tracking_destination_events") or []
    )
    for e in raw:
        at = utc(e.get("datetime")) if isinstance(e, dict) else None
        if at is None:
            continue
        where = e.get("tracking_location") or {}
        events.append(
            TrackingEvent(
                at=at,
                description=e.get("message") or e.get("description") or e.get("status") or "",
                location=location(where.get("city"), where.get("state"), where.get("country")),
            )
        )
    return sorted_events(events)


_PROVIDER_NAMES = {
    "usps": "USPS",
    "fedex": "FedEx",
    "yunexpress": "YunExpress",
    "4px": "4PX",
    "yanwen": "Yanwen",
    "cainiao": "Cainiao",
}


def _provider_name(slug: str) -> str:
    """Shipment Tracking stores a provider's name ("DHL Express"), AST a slug ("dhl-express")."""
    if slug in _PROVIDER_NAMES:
        return _PROVIDER_NAMES[slug]
    if "-" in slug or slug.islower():
        return " ".join(w.upper() if len(w) <= 3 else w.capitalize() for w in slug.split("-"))
    return slug


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "message" in body:
        return f"{body.get('code', '')}: {body['message']}"
    return response.text[:200]
