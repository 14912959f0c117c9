"""OrderConnector on the Shopify Admin GraphQL API.

Orders are found by name (`orders(query: "name:#1042")`), with their fulfilments, tracking
info and fulfilment events; customers by id or by e-mail. Shopify meters GraphQL by query
cost in a leaky bucket: every answer reports `extensions.cost.throttleStatus`, and the next
call waits when the bucket would not cover what the same query cost last time. A THROTTLED
answer (or HTTP 429) is retried after the time the bucket needs to refill.

Status mapping: a cancelled order is cancelled; refunded or voided is returned when parcels
left, else cancelled; a return marked RETURNED/INSPECTION_COMPLETE is returned; PENDING or
EXPIRED payment without parcels is awaiting_payment. Each fulfilment's state comes from its
latest event status (else its displayStatus, else deliveredAt), refined by the event message
for customs holds (Shopify has no customs status: carriers report DELAYED or FAILURE with a
message). PARTIALLY_FULFILLED makes partially_shipped.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

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
from rag.commerce.types import (
    Customer,
    Fulfilment,
    LineItem,
    Order,
    TrackingEvent,
    normalise_order_number,
)
from rag.errors import ConnectorAuthError, ConnectorUnavailable

log = logging.getLogger(__name__)

EVENTS_PAGE = 10
LINE_ITEMS_PAGE = 30
CUSTOMERS_PAGE = 25
MAX_PAGES = 20  # of events or customers; a bound on calls made for one shopper question

_EVENT_FIELDS = (
    "pageInfo { hasNextPage endCursor } nodes { happenedAt status message city province country }"
)

_LINE_ITEM_FIELDS = "pageInfo { hasNextPage endCursor } nodes { title quantity sku }"

ORDER_QUERY = f"""
query OrderByName($query: String!, $events: Int!) {{
  orders(first: 3, query: $query) {{
    nodes {{
      id
      name
      email
      createdAt
      cancelledAt
      displayFinancialStatus
      displayFulfillmentStatus
      returnStatus
      currencyCode
      totalPriceSet {{ presentmentMoney {{ amount currencyCode }} }}
      customer {{ id }}
      shippingAddress {{ countryCodeV2 zip }}
      shippingLine {{ title }}
      lineItems(first: {LINE_ITEMS_PAGE}) {{ {_LINE_ITEM_FIELDS} }}
      fulfillments(first: 5) {{
        id
        status
        displayStatus
        createdAt
        inTransitAt
        deliveredAt
        trackingInfo(first: 3) {{ company number url }}
        events(first: $events, sortKey: HAPPENED_AT) {{ {_EVENT_FIELDS} }}
      }}
    }}
  }}
}}
"""

EVENTS_QUERY = f"""
query FulfillmentEvents($id: ID!, $first: Int!, $after: String) {{
  fulfillment(id: $id) {{
    events(first: $first, after: $after, sortKey: HAPPENED_AT) {{ {_EVENT_FIELDS} }}
  }}
}}
"""

LINE_ITEMS_QUERY = f"""
query OrderLineItems($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    lineItems(first: $first, after: $after) {{ {_LINE_ITEM_FIELDS} }}
  }}
}}
"""

_CUSTOMER_FIELDS = """
      id
      email
      firstName
      state
      tags
      numberOfOrders
      amountSpent { amount currencyCode }
      defaultAddress { countryCodeV2 }
"""

CUSTOMER_QUERY = f"""
query CustomerById($id: ID!) {{
  customer(id: $id) {{ {_CUSTOMER_FIELDS} }}
}}
"""

CUSTOMERS_QUERY = f"""
query CustomersByEmail($query: String!, $first: Int!, $after: String) {{
  customers(first: $first, after: $after, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {_CUSTOMER_FIELDS} }}
  }}
}}
"""

_EVENT_STATES: dict[str, ParcelState] = {
    "LABEL_PURCHASED": "in_transit",
    "LABEL_PRINTED": "in_transit",
    "CONFIRMED": "in_transit",
    "CARRIER_PICKED_UP": "in_transit",
    "IN_TRANSIT": "in_transit",
    "DELAYED": "in_transit",
    "READY_FOR_PICKUP": "out_for_delivery",
    "READY_FOR_RECIPIENT_PICKUP": "out_for_delivery",
    "OUT_FOR_DELIVERY": "out_for_delivery",
    "ATTEMPTED_DELIVERY": "delivery_exception",
    "BUYER_ACTION_REQUIRED": "delivery_exception",
    "FAILURE": "delivery_exception",
    "NOT_DELIVERED": "delivery_exception",
    "RETURNING_TO_SENDER": "delivery_exception",
    "DELIVERED": "delivered",
    "PICKED_UP": "delivered",
}
# Fulfillment.status: nothing left the warehouse (PENDING/OPEN: a fulfilment service has
# not shipped yet; FAILURE: the request to it failed)
_SKIPPED_FULFILMENTS = {"CANCELLED", "ERROR", "FAILURE", "PENDING", "OPEN"}
_UNPAID = {"PENDING", "EXPIRED"}
_SEARCHABLE = re.compile(r"[\w#./-]+")
_REFUNDED = {"REFUNDED", "VOIDED"}
_RETURNED = {"RETURNED", "INSPECTION_COMPLETE"}


@dataclass
class _Bucket:
    available: float
    restore_rate: float
    maximum: float
    at: float  # time.monotonic() of the answer that reported it


class ShopifyOrders:
    name = "shopify"

    def __init__(
        self,
        shop: str,
        token: str,
        api_version: str,
        *,
        timeout_s: float = 10,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        base = shop.rstrip("/") if shop.startswith(("http://", "https://")) else f"https://{shop}"
        self._path = f"/admin/api/{api_version}/graphql.json"
        self._http = RetryingClient(
            "shopify",
            base,
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            error_message=_error_message,
        )
        self._bucket: _Bucket | None = None
        self._costs: dict[str, float] = {}  # requestedQueryCost last seen, by operation

    # --- OrderConnector ------------------------------------------------------------------

    def get_order(self, number: str) -> Order | None:
        wanted = normalise_order_number(number)
        if not _SEARCHABLE.fullmatch(wanted):
            return None  # not an order name; and nothing to smuggle into the search syntax
        # the default name is "#1042"; shops with a prefix have names like "JH-1042"
        query = f"name:#{wanted} OR name:{wanted}" if wanted.isdigit() else f"name:{wanted}"
        data = self._graphql("OrderByName", ORDER_QUERY, {"query": query, "events": EVENTS_PAGE})
        for node in data["orders"]["nodes"]:
            if normalise_order_number(node["name"]) == wanted:
                return self._order(node, wanted)
        return None

    def get_customer(self, key: str) -> Customer | None:
        key = key.strip()
        if "@" in key:
            return self._customer_by_email(key)
        if key.isdigit():
            key = f"gid://shopify/Customer/{key}"
        if not key.startswith("gid://shopify/Customer/"):
            return None
        node = self._graphql("CustomerById", CUSTOMER_QUERY, {"id": key})["customer"]
        return _customer(node) if node else None

    def close(self) -> None:
        self._http.close()

    # --- mapping -------------------------------------------------------------------------

    def _order(self, node: dict[str, Any], number: str) -> Order:
        fulfilments: list[Fulfilment] = []
        states: list[ParcelState] = []
        method = (node.get("shippingLine") or {}).get("title")
        for f in node["fulfillments"]:
            if f["status"] in _SKIPPED_FULFILMENTS or f.get("displayStatus") == "CANCELED":
                continue
            nodes = self._all_nodes(
                f["events"],
                operation="FulfillmentEvents",
                query=EVENTS_QUERY,
                owner_id=f["id"],
                owner="fulfillment",
                field="events",
                page=EVENTS_PAGE,
            )
            events = _events(nodes)
            state = _parcel_state(f, nodes, events)
            states.append(state)
            shipped = utc(f["createdAt"])  # fulfilled = handed over for shipping
            arrived = delivered_at(state, events, utc(f.get("deliveredAt")))
            for info in f["trackingInfo"] or [{"company": None, "number": None, "url": None}]:
                carrier = info.get("company") or ""
                fulfilments.append(
                    Fulfilment(
                        carrier=carrier,
                        tracking_number=info.get("number") or "",
                        tracking_url=info.get("url"),
                        service=service_for(carrier, method),
                        shipped_at=shipped,
                        delivered_at=arrived,
                        events=events,
                    )
                )
        financial = node.get("displayFinancialStatus") or ""
        refunded = financial in _REFUNDED
        status = order_status(
            cancelled=bool(node.get("cancelledAt")) or (refunded and not states),
            returned=node.get("returnStatus") in _RETURNED or (refunded and bool(states)),
            paid=financial not in _UNPAID,
            parcels=states,
            all_shipped=node.get("displayFulfillmentStatus") != "PARTIALLY_FULFILLED",
        )
        money_bag = (node.get("totalPriceSet") or {}).get("presentmentMoney") or {}
        address = node.get("shippingAddress") or {}
        return Order(
            number=number,
            id=node["id"],
            status=status,
            created_at=required_utc(node["createdAt"], "shopify"),
            email=node.get("email"),
            customer_id=(node.get("customer") or {}).get("id"),
            country=address.get("countryCodeV2"),
            postcode=address.get("zip"),
            currency=money_bag.get("currencyCode") or node.get("currencyCode") or "USD",
            total=money(money_bag.get("amount")),
            line_items=tuple(
                LineItem(title=i["title"], quantity=int(i["quantity"]), sku=i.get("sku") or None)
                for i in self._all_nodes(
                    node["lineItems"],
                    operation="OrderLineItems",
                    query=LINE_ITEMS_QUERY,
                    owner_id=node["id"],
                    owner="order",
                    field="lineItems",
                    page=LINE_ITEMS_PAGE,
                )
            ),
            fulfilments=tuple(fulfilments),
            cancelled_at=utc(node.get("cancelledAt")),
        )

    def _all_nodes(
        self,
        connection: dict[str, Any],
        *,
        operation: str,
        query: str,
        owner_id: str,
        owner: str,
        field: str,
        page: int,
    ) -> list[dict[str, Any]]:
        """The nodes of a connection nested in an answer, following it past its first page
        through `owner(id:) { field(first:, after:) }`."""
        nodes = list(connection["nodes"])
        pages = 1
        while connection["pageInfo"]["hasNextPage"] and pages < MAX_PAGES:
            data = self._graphql(
                operation,
                query,
                {"id": owner_id, "first": page, "after": connection["pageInfo"]["endCursor"]},
            )
            if not data.get(owner):
                break
            connection = data[owner][field]
            nodes += connection["nodes"]
            pages += 1
        return nodes

    def _customer_by_email(self, email: str) -> Customer | None:
        # Shopify's search matches more than the exact address (ana@x.com finds ana@x.com.mx):
        # page through the matches for the exact one
        after: str | None = None
        quoted = email.replace("\\", "").replace('"', "")
        for _ in range(MAX_PAGES):
            data = self._graphql(
                "CustomersByEmail",
                CUSTOMERS_QUERY,
                {"query": f'email:"{quoted}"', "first": CUSTOMERS_PAGE, "after": after},
            )
            connection = data["customers"]
            for node in connection["nodes"]:
                if (node.get("email") or "").lower() == email.lower():
                    return _customer(node)
            if not connection["pageInfo"]["hasNextPage"]:
                return None
            after = connection["pageInfo"]["endCursor"]
        return None

    # --- transport -----------------------------------------------------------------------

    def _graphql(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self._wait_for_bucket(operation)
        response = self._http.request(
            "POST",
            self._path,
            json={"query": query, "variables": variables, "operationName": operation},
            throttled=lambda r: self._throttled(operation, r),
        )
        if response.status_code == 404:
            raise ConnectorUnavailable(
                f"shopify has no Admin GraphQL endpoint at {self._path} (shop or API version?)"
            )
        body = json_body(response, "shopify")
        self._note_cost(operation, body)
        errors = body.get("errors")
        if errors:
            if isinstance(errors, str):
                raise ConnectorUnavailable(f"shopify rejected {operation}: {errors}")
            first = errors[0]
            code = (first.get("extensions") or {}).get("code")
            if code == "ACCESS_DENIED":
                raise ConnectorAuthError(f"shopify denied {operation}: {first.get('message')}")
            raise ConnectorUnavailable(f"shopify rejected {operation}: {first.get('message')}")
        data: dict[str, Any] = body["data"]
        return data

    def _throttled(self, operation: str, response: httpx.Response) -> float | None:
        """Seconds to wait when a 200 answer is a THROTTLED error, else None."""
        try:
            body = response.json()
        except ValueError:
            return None
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not any(
            (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors
        ):
            return None
        self._note_cost(operation, body)
        bucket, need = self._bucket, self._costs.get(operation)
        if bucket is None or need is None or bucket.restore_rate <= 0:
            return 0.0
        return max(0.0, (need - bucket.available) / bucket.restore_rate)

    def _note_cost(self, operation: str, body: dict[str, Any]) -> None:
        cost = (body.get("extensions") or {}).get("cost")
        if not cost:
            return
        if cost.get("requestedQueryCost") is not None:
            self._costs[operation] = float(cost["requestedQueryCost"])
        status = cost.get("throttleStatus")
        if status:
            self._bucket = _Bucket(
                available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
                maximum=float(status["maximumAvailable"]),
                at=time.monotonic(),
            )

    def _wait_for_bucket(self, operation: str) -> None:
        """Sleep until the bucket holds what this query cost last time, instead of being
        throttled for it."""
        bucket, need = self._bucket, self._costs.get(operation)
        if bucket is None or need is None or bucket.restore_rate <= 0:
            return
        now = time.monotonic()
        available = min(bucket.maximum, bucket.available + bucket.restore_rate * (now - bucket.at))
        if available >= need:
            return
        wait = min((need - available) / bucket.restore_rate, self._http.max_wait_s)
        log.info("shopify: waiting %.2f s for query cost %.0f", wait, need)
        time.sleep(wait)


def _events(nodes: list[dict[str, Any]]) -> tuple[TrackingEvent, ...]:
    events = []
    for e in nodes:
        at = utc(e["happenedAt"])
        if at is None:
            continue
        events.append(
            TrackingEvent(
                at=at,
                description=e.get("message") or e["status"].replace("_", " ").capitalize(),
                location=location(e.get("city"), e.get("province"), e.get("country")),
            )
        )
    return sorted_events(events)


def _parcel_state(
    f: dict[str, Any], nodes: list[dict[str, Any]], events: tuple[TrackingEvent, ...]
) -> ParcelState:
    if f.get("deliveredAt"):
        return "delivered"
    latest: str | None = None
    latest_at: datetime | None = None
    for n in nodes:
        at = utc(n["happenedAt"])
        if at is not None and (latest_at is None or at >= latest_at):
            latest, latest_at = n["status"], at
    state = _EVENT_STATES.get(latest or f.get("displayStatus") or "", "in_transit")
    return refine(state, events)


def _customer(node: dict[str, Any]) -> Customer:
    spent = node.get("amountSpent") or {}
    return Customer(
        id=node["id"],
        email=node.get("email"),
        first_name=node.get("firstName"),
        tags=tuple(node.get("tags") or ()),
        orders_count=int(node.get("numberOfOrders") or 0),  # UnsignedInt64: a string
        total_spent=money(spent.get("amount")) or "0",
        currency=spent.get("currencyCode") or "USD",
        country=(node.get("defaultAddress") or {}).get("countryCodeV2"),
        extra={"state": node["state"]} if node.get("state") else {},
    )


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list) and errors:
        return str(errors[0].get("message", errors[0]))
    return response.text[:200]
