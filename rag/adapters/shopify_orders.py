"""OrderConnector on the Shopify Admin GraphQL API.

Orders are found by name (`orders(query: "name:#1042")`), with their fulfilments, tracking
info and fulfilment events; customers by id or by e-mail. The calls go through
`rag/adapters/shopify_graphql.py`, which keeps to Shopify's cost-based rate limit.

Status mapping: a cancelled order is cancelled; refunded or voided is returned when parcels
left, else cancelled; a return marked RETURNED/INSPECTION_COMPLETE is returned; PENDING or
EXPIRED payment without parcels is awaiting_payment. Each fulfilment's state comes from its
latest event status (else its displayStatus, else deliveredAt), refined by the event message
for customs holds (Shopify has no customs status: carriers report DELAYED or FAILURE with a
message). PARTIALLY_FULFILLED makes partially_shipped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

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
from rag.adapters.shopify_graphql import ShopifyGraphQL
from rag.commerce.types import (
    Customer,
    Fulfilment,
    LineItem,
    Order,
    TrackingEvent,
    normalise_order_number,
)

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


class _Nested(NamedTuple):
    """A connection nested in an order, and the query that pages through it."""

    operation: str
    query: str
    owner: str  # the node the connection hangs from: owner(id:) { field(first:, after:) }
    field: str
    page: int


_EVENTS = _Nested("FulfillmentEvents", EVENTS_QUERY, "fulfillment", "events", EVENTS_PAGE)
_LINE_ITEMS = _Nested("OrderLineItems", LINE_ITEMS_QUERY, "order", "lineItems", LINE_ITEMS_PAGE)

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
        self._api = ShopifyGraphQL(
            shop,
            token,
            api_version,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
        )
        self._graphql = self._api.query

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
        self._api.close()

    # --- mapping -------------------------------------------------------------------------

    def _order(self, node: dict[str, Any], number: str) -> Order:
        fulfilments: list[Fulfilment] = []
        states: list[ParcelState] = []
        method = (node.get("shippingLine") or {}).get("title")
        for f in node["fulfillments"]:
            if f["status"] in _SKIPPED_FULFILMENTS or f.get("displayStatus") == "CANCELED":
                continue
            nodes = self._all_nodes(f["events"], _EVENTS, f["id"])
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
                for i in self._all_nodes(node["lineItems"], _LINE_ITEMS, node["id"])
            ),
            fulfilments=tuple(fulfilments),
            cancelled_at=utc(node.get("cancelledAt")),
        )

    def _all_nodes(
        self, connection: dict[str, Any], nested: _Nested, owner_id: str
    ) -> list[dict[str, Any]]:
        """The nodes of a connection nested in an answer, following it past its first page
        through `owner(id:) { field(first:, after:) }`."""
        nodes = list(connection["nodes"])
        pages = 1
        while connection["pageInfo"]["hasNextPage"] and pages < MAX_PAGES:
            data = self._graphql(
                nested.operation,
                nested.query,
                {
                    "id": owner_id,
                    "first": nested.page,
                    "after": connection["pageInfo"]["endCursor"],
                },
            )
            if not data.get(nested.owner):
                break
            connection = data[nested.owner][nested.field]
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
