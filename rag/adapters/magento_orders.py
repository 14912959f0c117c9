"""OrderConnector on the Adobe Commerce / Magento 2 REST API, with an integration's bearer token.

Configure the REST base of the store view (https://shop.example/rest/default); a bare site
address gets /rest appended. Orders are searched by increment_id (shoppers often drop the
zero padding: "1042" also finds "000001042"); parcels are the tracks of the order's
shipments (`/V1/shipments`), paged by searchCriteria and total_count.

Core Magento keeps no carrier scans. Tracking modules (AfterShip, 17TRACK and the like) and
warehouse staff post them as shipment comments, so a shipment's comments visible on the
storefront are its parcels' events (the others are staff notes) and the latest one says
where they are (delivered, out for delivery, held by customs, failed delivery; in transit
otherwise).

Status mapping: canceled -> cancelled; closed (refunded by credit memo) -> returned when
something had shipped, else cancelled; pending_payment, payment_review and an unpaid new
order -> awaiting_payment; otherwise (processing, complete, holded) the shipments decide:
none -> unfulfilled (delivered when complete: virtual goods), some items unshipped ->
partially_shipped, else the parcels' state. "complete" only means invoiced and shipped, not
delivered. A custom order status whose code
names customs ("customs_hold") or is "delivered" overrides the parcels' state.

Customers: by id (`/V1/customers/{id}`) or e-mail (`/V1/customers/search`). Tags are the
customer group's code (`/V1/customerGroups/{id}`; the default groups NOT LOGGED IN and
General say nothing and are left out) plus the comma-separated values of a customer
attribute with the code `tags`, where the store defines one. Magento counts no orders per
customer: the count is the total_count of the customer's orders, the amount spent the sum of
the processing and complete ones.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx

# every connector maps into the same types with the same helpers: alike import lists, on purpose
from rag.adapters.http_retry import RetryingClient, json_body
from rag.adapters.order_mapping import (
    ParcelState,
    delivered_at,
    money,
    order_status,
    refine,
    required_utc,
    service_for,
    sorted_events,
    state_from_text,
    utc,
)
from rag.adapters.rest_orders import RestOrderConnector
from rag.commerce.types import (
    Customer,
    Fulfilment,
    LineItem,
    Order,
    TrackingEvent,
    normalise_order_number,
)
from rag.errors import ConnectorAuthError

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 10  # bound on the calls one lookup makes
_UNPAID_STATES = {"pending_payment", "payment_review"}
_PAID_STATES = {"processing", "complete"}
_SILENT_GROUPS = {0, 1}  # NOT LOGGED IN, General


def search_criteria(
    filters: Sequence[tuple[str, str, str]], *, page: int = 1, page_size: int = PAGE_SIZE
) -> list[tuple[str, str]]:
    """Query parameters for a Magento search; each (field, value, condition) is its own
    filter group, so they all have to match."""
    params: list[tuple[str, str]] = []
    for group, (field, value, condition) in enumerate(filters):
        prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
        params += [
            (f"{prefix}[field]", field),
            (f"{prefix}[value]", value),
            (f"{prefix}[condition_type]", condition),
        ]
    params += [
        ("searchCriteria[pageSize]", str(page_size)),
        ("searchCriteria[currentPage]", str(page)),
    ]
    return params


class MagentoOrders(RestOrderConnector):
    name = "magento"
    customers_path = "/V1/customers"
    no_route = ("message", "Request does not match any route.")
    route_hint = "is the address right?"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = 10,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        base = url.rstrip("/")
        if not re.search(r"/rest(/|$)", urlsplit(base).path):
            base += "/rest"
        http = RetryingClient(
            "magento",
            base,
            headers={"Authorization": f"Bearer {token}"},
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            error_message=_error_message,
        )
        super().__init__(base, http)
        self._groups: dict[int, str | None] = {}

    # --- OrderConnector (get_customer and close: RestOrderConnector) ----------------------

    def get_order(self, number: str) -> Order | None:
        wanted = normalise_order_number(number)
        if not wanted:
            return None
        candidates = [wanted]
        if wanted.isdigit():
            candidates += [wanted.zfill(9), wanted.lstrip("0") or "0"]
        candidates = list(dict.fromkeys(candidates))
        orders, _ = self._search("/V1/orders", [("increment_id", ",".join(candidates), "in")])
        found = [o for o in orders if str(o.get("increment_id", "")).upper() in candidates]
        if not found:
            return None
        # "1042" and "000001042" in two store views: the exact one wins
        found.sort(key=lambda o: str(o["increment_id"]).upper() != wanted)
        order = found[0]
        shipments, _ = self._search("/V1/shipments", [("order_id", str(order["entity_id"]), "eq")])
        return _order(order, shipments)

    def _customers_by_email(self, email: str) -> list[dict[str, Any]]:
        customers, _ = self._search("/V1/customers/search", [("email", email, "eq")])
        return customers

    # --- helpers -------------------------------------------------------------------------

    def _search(
        self, path: str, filters: Sequence[tuple[str, str, str]], *, fields: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Every item a search finds, page by page, and its total_count. Magento answers a page
        past the end with the last page again, so paging stops at total_count or when a page
        brings nothing new."""
        seen: set[str] = set()
        found: list[dict[str, Any]] = []
        total = 0
        for page in range(1, MAX_PAGES + 1):
            params = search_criteria(filters, page=page)
            if fields:
                params.append(("fields", fields))
            response = self._get(path, params=params)
            if response.status_code == 404:
                break
            body = json_body(response, self.name)
            total = int(body.get("total_count") or 0)
            fresh = 0
            for item in body.get("items") or []:
                key = str(item.get("entity_id") or item.get("id") or item)
                if key not in seen:
                    seen.add(key)
                    found.append(item)
                    fresh += 1
            if len(found) >= total or fresh == 0:
                return found, total
        log.warning("magento: stopped after %d pages of %s", MAX_PAGES, path)
        return found, total

    def _customer(self, c: dict[str, Any]) -> Customer:
        tags: list[str] = []
        group = self._group(int(c.get("group_id") or 0))
        if group:
            tags.append(group)
        for attribute in c.get("custom_attributes") or []:
            if attribute.get("attribute_code") == "tags" and attribute.get("value"):
                tags += [t.strip() for t in str(attribute["value"]).split(",") if t.strip()]
        count, spent, currency = self._order_totals(str(c["id"]))
        addresses = c.get("addresses") or []
        home: dict[str, Any] = next(
            (a for a in addresses if a.get("default_shipping")), addresses[0] if addresses else {}
        )
        return Customer(
            id=str(c["id"]),
            email=c.get("email"),
            first_name=c.get("firstname"),
            tags=tuple(dict.fromkeys(tags)),
            orders_count=count,
            total_spent=spent,
            currency=currency,
            country=home.get("country_id"),
            extra={"group": group} if group else {},
        )

    def _group(self, group_id: int) -> str | None:
        """The customer group's code, cached; None for the default groups."""
        if group_id in _SILENT_GROUPS:
            return None
        if group_id not in self._groups:
            try:
                response = self._get(f"/V1/customerGroups/{group_id}")
            except ConnectorAuthError:
                # the integration may lack Magento_Customer::group; tags are not worth failing
                log.warning("magento: no access to customer groups; customers get no group tag")
                self._groups[group_id] = None
            else:
                found = response.status_code == 200
                self._groups[group_id] = (
                    json_body(response, self.name).get("code") if found else None
                )
        return self._groups[group_id]

    def _order_totals(self, customer_id: str) -> tuple[int, str, str]:
        orders, count = self._search(
            "/V1/orders",
            [("customer_id", customer_id, "eq")],
            fields="items[entity_id,state,grand_total,order_currency_code],total_count",
        )
        spent = sum(
            (
                Decimal(str(o.get("grand_total") or 0))
                for o in orders
                if o.get("state") in _PAID_STATES
            ),
            Decimal(0),
        )
        currency = next(
            (o["order_currency_code"] for o in orders if o.get("order_currency_code")), None
        )
        return count, money(spent) or "0", currency or "USD"


def _order(o: dict[str, Any], shipments: list[dict[str, Any]]) -> Order:
    state = o.get("state") or ""
    status_code = (o.get("status") or "").lower()
    method = o.get("shipping_description")
    fulfilments: list[Fulfilment] = []
    states: list[ParcelState] = []
    for shipment in sorted(shipments, key=lambda s: s.get("created_at") or ""):
        events = _events(shipment)
        latest = events[-1].description if events else ""
        parcel = refine(state_from_text(latest) or "in_transit", events)
        if "customs" in status_code and parcel != "delivered":
            parcel = "customs_hold"
        elif status_code == "delivered":
            parcel = "delivered"
        for track in shipment.get("tracks") or []:
            states.append(parcel)
            carrier = track.get("title") or track.get("carrier_code") or ""
            fulfilments.append(
                Fulfilment(
                    carrier=carrier,
                    tracking_number=str(track.get("track_number") or ""),
                    service=service_for(carrier, track.get("carrier_code"), method),
                    shipped_at=utc(track.get("created_at")) or utc(shipment.get("created_at")),
                    delivered_at=delivered_at(parcel, events, None),
                    events=events,
                )
            )
    items = [i for i in o.get("items") or [] if not i.get("parent_item_id")]
    all_shipped = all(
        float(i.get("qty_shipped") or 0)
        >= float(i.get("qty_ordered") or 0)
        - float(i.get("qty_canceled") or 0)
        - float(i.get("qty_refunded") or 0)
        for i in items
    )
    unpaid = state in _UNPAID_STATES or (state == "new" and not o.get("total_paid"))
    address = _shipping_address(o)
    return Order(
        number=str(o["increment_id"]),
        id=str(o["entity_id"]),
        status=order_status(
            cancelled=state == "canceled" or (state == "closed" and not states),
            returned=state == "closed" and bool(states),
            paid=not unpaid,
            parcels=states,
            all_shipped=all_shipped,
            # complete without a shipment: virtual or downloadable goods, already handed over
            unshipped="delivered" if state == "complete" else None,
        ),
        created_at=required_utc(o.get("created_at"), "magento"),
        email=o.get("customer_email"),
        customer_id=str(o["customer_id"]) if o.get("customer_id") else None,
        country=address.get("country_id"),
        postcode=address.get("postcode"),
        currency=o.get("order_currency_code") or "USD",
        total=money(o.get("grand_total")),
        line_items=tuple(
            LineItem(
                title=i.get("name") or i.get("sku") or "",
                quantity=int(float(i.get("qty_ordered") or 1)),
                sku=i.get("sku") or None,
            )
            for i in items
        ),
        fulfilments=tuple(fulfilments),
        cancelled_at=_cancelled_at(o) if state == "canceled" else None,
    )


def _events(shipment: dict[str, Any]) -> tuple[TrackingEvent, ...]:
    events = []
    for c in shipment.get("comments") or []:
        if not c.get("is_visible_on_front"):
            continue  # a staff note, not for the shopper
        at = utc(c.get("created_at"))
        if at is not None and c.get("comment"):
            events.append(TrackingEvent(at=at, description=str(c["comment"]).strip()))
    return sorted_events(events)


def _shipping_address(o: dict[str, Any]) -> dict[str, Any]:
    for assignment in (o.get("extension_attributes") or {}).get("shipping_assignments") or []:
        address = ((assignment.get("shipping") or {}).get("address")) or {}
        if address:
            return dict(address)
    return dict(o.get("billing_address") or {})


def _cancelled_at(o: dict[str, Any]) -> datetime | None:
    moments = [
        utc(h.get("created_at"))
        for h in o.get("status_histories") or []
        if h.get("status") == "canceled"
    ]
    dated = [m for m in moments if m is not None]
    return min(dated) if dated else utc(o.get("updated_at"))


def _error_message(response: httpx.Response) -> str:
    """Magento's {"message": "... %fieldName ...", "parameters": {...}}, filled in."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict) or "message" not in body:
        return response.text[:200]
    message = str(body["message"])
    parameters = body.get("parameters") or {}
    if isinstance(parameters, list):
        parameters = {str(i + 1): v for i, v in enumerate(parameters)}
    for name, value in parameters.items():
        message = message.replace(f"%{name}", str(value))
    return message
