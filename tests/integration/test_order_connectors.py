"""The Shopify, WooCommerce and Magento connectors against local HTTP servers that speak each
platform's wire protocol (tests/doubles/*_server.py) and serve the same shop's orders in each
platform's shapes (tests/fixtures/commerce/).

The contract section holds all three to the same domain result for the same order; the
per-platform sections cover what only one platform does (GraphQL cost throttling,
sequential order numbers, zero-padded increment ids, ...)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rag.adapters.magento_orders import MagentoOrders
from rag.adapters.order_mapping import money, service_for, state_from_text, utc
from rag.adapters.shopify_orders import ShopifyOrders
from rag.adapters.woocommerce_orders import WooCommerceOrders
from rag.commerce.types import Order
from rag.errors import ConnectorAuthError, ConnectorUnavailable
from rag.ports import OrderConnector
from tests.doubles import magento_server, shopify_server, woocommerce_server
from tests.doubles.magento_server import MagentoServer
from tests.doubles.shopify_server import ShopifyServer
from tests.doubles.storefront import StorefrontServer
from tests.doubles.woocommerce_server import WooCommerceServer

PLATFORMS = ["shopify", "woocommerce", "magento"]
FAST: dict[str, Any] = {"backoff_s": 0.01, "timeout_s": 2.0}

Connect = Callable[..., Any]


def _server(platform: str, **kwargs: Any) -> StorefrontServer:
    servers: dict[str, type[StorefrontServer]] = {
        "shopify": ShopifyServer,
        "woocommerce": WooCommerceServer,
        "magento": MagentoServer,
    }
    return servers[platform](**kwargs)


def _connector(
    platform: str,
    origin: str,
    *,
    path: str | None = None,
    wrong_credentials: bool = False,
    **kwargs: Any,
) -> Any:
    """A connector for the double's default credentials at `origin` (+ `path`)."""
    options = {**FAST, **kwargs}
    if platform == "shopify":
        token = "shpat_wrong" if wrong_credentials else shopify_server.TOKEN
        return ShopifyOrders(origin + (path or ""), token, shopify_server.API_VERSION, **options)
    if platform == "woocommerce":
        secret = "cs_wrong" if wrong_credentials else woocommerce_server.SECRET
        return WooCommerceOrders(origin + (path or ""), woocommerce_server.KEY, secret, **options)
    token = "wrong-token" if wrong_credentials else magento_server.TOKEN
    return MagentoOrders(origin + (path or "/rest/default"), token, **options)


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Registers connectors to close after the test (their HTTP clients hold sockets)."""
    opened: list[Any] = []

    def register(connector: Any) -> Any:
        opened.append(connector)
        return connector

    yield register
    for connector in opened:
        connector.close()


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(platform: str) -> Iterator[Any]:
    with _server(platform) as s:
        yield s


@pytest.fixture
def connect(platform: str, server: Any, closing: Callable[[Any], Any]) -> Connect:
    def make(**kwargs: Any) -> Any:
        return closing(_connector(platform, server.origin, **kwargs))

    return make


@pytest.fixture
def connector(connect: Connect) -> OrderConnector:
    c: OrderConnector = connect()
    return c


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- contract: the same shop through three platforms ------------------------------------

ORDER_1042 = {
    "status": "in_transit",
    "created_at": at("2024-05-01T16:20:11"),
    "email": "ana.garcia@example.com",
    "country": "MX",
    "postcode": "06700",
    "currency": "USD",
    "total": "129.90",
    "line_items": [("Wireless earbuds", 1, "WE-200"), ("Silicone case", 2, "SC-10")],
    "parcels": [
        {
            "carrier": "YunExpress",
            "tracking_number": "YT2412345678901234",
            "service": "standard",
            "shipped_on": "2024-05-02",
            "delivered_at": None,
            "events": [
                (at("2024-05-02T09:30:00"), "Shipment information received"),
                (at("2024-05-03T14:05:00"), "Departed from origin facility"),
                (at("2024-05-06T22:40:00"), "Arrived at destination country"),
                (at("2024-05-07T11:15:00"), "Customs clearance completed"),
                (at("2024-05-08T08:00:00"), "In transit to local delivery facility"),
            ],
        }
    ],
}


def comparable(order: Order) -> dict[str, Any]:
    """What every platform must agree on (ids, URLs and scan locations differ by platform)."""
    return {
        "status": order.status,
        "created_at": order.created_at,
        "email": order.email,
        "country": order.country,
        "postcode": order.postcode,
        "currency": order.currency,
        "total": order.total,
        "line_items": [(i.title, i.quantity, i.sku) for i in order.line_items],
        "parcels": [
            {
                "carrier": f.carrier,
                "tracking_number": f.tracking_number,
                "service": f.service,
                "shipped_on": f.shipped_at.date().isoformat() if f.shipped_at else None,
                "delivered_at": f.delivered_at,
                "events": [(e.at, e.description) for e in f.events],
            }
            for f in order.fulfilments
        ],
    }


def test_the_same_order_reads_the_same_on_every_platform(connector: OrderConnector) -> None:
    order = connector.get_order("#1042")
    assert order is not None
    assert order.number.lstrip("0") == "1042"  # Magento shows zero-padded increment ids
    assert comparable(order) == ORDER_1042
    assert all(e.at.tzinfo is UTC for f in order.fulfilments for e in f.events)
    assert order.created_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("1042", "in_transit"),
        ("1043", "customs_hold"),
        ("1044", "delivered"),
        ("1045", "cancelled"),
        ("1046", "unfulfilled"),
        ("1047", "partially_shipped"),
        ("1048", "awaiting_payment"),
    ],
)
def test_statuses_map_alike(connector: OrderConnector, number: str, status: str) -> None:
    order = connector.get_order(number)
    assert order is not None
    assert order.status == status


def test_delivered_express_parcel(connector: OrderConnector) -> None:
    order = connector.get_order("1044")
    assert order is not None
    (parcel,) = order.fulfilments
    assert (parcel.carrier, parcel.tracking_number, parcel.service) == (
        "DHL Express",
        "1234567890",
        "express",
    )
    assert parcel.delivered_at == at("2024-04-10T13:47:00")
    assert parcel.last_event is not None
    assert parcel.last_event.description.startswith("Delivered")


def test_customs_hold_is_the_latest_scan(connector: OrderConnector) -> None:
    order = connector.get_order("1043")
    assert order is not None
    assert order.fulfilments[0].last_event is not None
    assert "customs" in order.fulfilments[0].last_event.description.lower()
    assert (order.country, order.currency, order.total) == ("DE", "EUR", "59.00")


def test_partially_shipped_order_lists_its_parcels(connector: OrderConnector) -> None:
    order = connector.get_order("1047")
    assert order is not None
    assert [f.tracking_number for f in order.fulfilments] == ["SF1234567890123", "SF1234567890124"]
    assert {f.service for f in order.fulfilments} == {"express"}  # SF Express
    assert len(order.line_items) == 3


def test_guest_order_has_no_customer(connector: OrderConnector) -> None:
    order = connector.get_order("1045")
    assert order is not None
    assert order.customer_id is None
    assert order.email == "chen.wei@example.com"
    assert order.fulfilments == ()


@pytest.mark.parametrize("number", ["9999", "#9999", "JH-1042", ""])
def test_unknown_order_is_none(connector: OrderConnector, number: str) -> None:
    assert connector.get_order(number) is None


def test_customer_by_email_agrees(connector: OrderConnector) -> None:
    customer = connector.get_customer("Ana.Garcia@example.com")
    assert customer is not None
    assert (customer.email, customer.first_name, customer.country) == (
        "ana.garcia@example.com",
        "Ana",
        "MX",
    )
    assert (customer.orders_count, customer.total_spent, customer.currency) == (2, "249.80", "USD")
    assert not customer.first_purchase


def test_customer_by_id_is_the_one_orders_point_to(connector: OrderConnector) -> None:
    order = connector.get_order("1042")
    assert order is not None
    assert order.customer_id is not None
    customer = connector.get_customer(order.customer_id)
    assert customer is not None
    assert customer.email == order.email
    assert customer.id == order.customer_id


@pytest.mark.parametrize("key", ["nobody@example.com", "999999", "not-an-id"])
def test_unknown_customer_is_none(connector: OrderConnector, key: str) -> None:
    assert connector.get_customer(key) is None


# --- contract: failures -------------------------------------------------------------------


def test_rejected_credentials(server: Any, connect: Connect) -> None:
    with pytest.raises(ConnectorAuthError):
        connect(wrong_credentials=True).get_order("1042")
    assert len(server.requests) == 1  # not retried


def test_throttled_then_answered_honours_retry_after(server: Any, connector: Any) -> None:
    server.fail_next(2, 429, retry_after="0.15")
    order = connector.get_order("1046")
    assert order is not None
    assert order.status == "unfulfilled"
    first, second, third = server.requests[:3]
    assert (first.status, second.status, third.status) == (429, 429, 200)
    assert second.at - first.at >= 0.14
    assert third.at - second.at >= 0.14


def test_throttled_for_good(server: Any, connect: Connect) -> None:
    server.fail_next(10, 429, retry_after="0.01")
    with pytest.raises(ConnectorUnavailable, match="429") as caught:
        connect(max_retries=2).get_order("1042")
    assert not isinstance(caught.value, ConnectorAuthError)
    assert len(server.requests) == 3  # the call and two retries


def test_retry_after_too_long_is_not_slept_through(server: Any, connector: Any) -> None:
    server.fail_next(1, 429, retry_after="120")
    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable, match="wait"):
        connector.get_order("1042")
    assert time.monotonic() - started < 2


def test_server_errors_are_retried(server: Any, connector: Any) -> None:
    server.fail_next(2, 503, retry_after=None)
    order = connector.get_order("1044")
    assert order is not None
    assert order.status == "delivered"
    assert [r.status for r in server.requests[:3]] == [503, 503, 200]


def test_server_down(platform: str, closing: Callable[[Any], Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = closing(_connector(platform, f"http://127.0.0.1:{port}", max_retries=2))
    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable, match="unreachable"):
        c.get_order("1042")
    assert time.monotonic() - started < 2


def test_server_that_never_answers_times_out(platform: str, closing: Callable[[Any], Any]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)  # connections complete in the backlog; nobody ever answers
        origin = f"http://127.0.0.1:{listener.getsockname()[1]}"
        c = closing(_connector(platform, origin, timeout_s=0.2, max_retries=0))
        with pytest.raises(ConnectorUnavailable, match="Timeout"):
            c.get_order("1042")


def test_wrong_address_is_unavailable_not_not_found(
    platform: str, server: Any, closing: Callable[[Any], Any]
) -> None:
    """A 404 from a missing route must not read as "no such order"."""
    path = "/shop/rest/default" if platform == "magento" else "/shop"
    c = closing(_connector(platform, server.origin, path=path))
    with pytest.raises(ConnectorUnavailable) as caught:
        c.get_order("1042")
    assert not isinstance(caught.value, ConnectorAuthError)


# --- Shopify ------------------------------------------------------------------------------


@pytest.fixture
def shopify() -> Iterator[ShopifyServer]:
    with ShopifyServer() as s:
        yield s


def test_shopify_follows_the_events_connection(
    shopify: ShopifyServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("shopify", shopify.origin))
    order = c.get_order("1042")
    assert len(order.fulfilments[0].events) == 5
    # two events per page: the order query brings the first two, then two more pages
    assert shopify.operations == ["OrderByName", "FulfillmentEvents", "FulfillmentEvents"]
    cursors = [r.body["variables"]["after"] for r in shopify.seen("graphql")[1:]]
    assert len(set(cursors)) == 2
    assert order.fulfilments[0].events[-1].location == "Mexico City, CDMX, Mexico"


def test_shopify_customer_by_gid_numeric_id_and_email(
    closing: Callable[[Any], Any],
) -> None:
    with ShopifyServer(page_size=1) as shopify:
        c = closing(_connector("shopify", shopify.origin))
        by_gid = c.get_customer("gid://shopify/Customer/7012345678902")
        by_number = c.get_customer("7012345678902")
        assert by_gid == by_number
        assert by_gid.tags == ("wholesale",)
        assert (by_gid.orders_count, by_gid.total_spent, by_gid.currency) == (7, "1520.00", "EUR")
        # Shopify's search also finds ana.garcia@example.com.mx, listed first: page past it
        ana = c.get_customer("ana.garcia@example.com")
        assert ana.id == "gid://shopify/Customer/7012345678901"
        assert ana.tags == ("VIP", "newsletter")
        assert shopify.operations.count("CustomersByEmail") == 2


def test_shopify_throttled_query_waits_for_the_bucket(closing: Callable[[Any], Any]) -> None:
    with ShopifyServer() as shopify:
        c = closing(_connector("shopify", shopify.origin))
        shopify.set_bucket(0, restore_rate=5000)  # another app emptied it
        order = c.get_order("1046")
        assert order is not None
        first, second = shopify.requests[:2]
        assert first.status == second.status == 200  # THROTTLED is a GraphQL error in a 200
        assert shopify.operations == ["OrderByName"]  # answered once, after the retry
        # OrderByName costs 527 points; at 5000 points/s the bucket holds them after ~0.1 s
        assert second.at - first.at >= 0.09


def test_shopify_waits_before_a_call_the_bucket_cannot_cover(
    closing: Callable[[Any], Any],
) -> None:
    with ShopifyServer(maximum_available=800, restore_rate=2500) as shopify:
        c = closing(_connector("shopify", shopify.origin))
        assert c.get_order("1046") is not None  # 527 of 800 points spent, 273 left
        assert c.get_order("1048") is not None
        first, second = shopify.requests
        assert len(shopify.operations) == 2  # no THROTTLED answer in between
        assert second.at - first.at >= 0.09  # (527 - 273) / 2500 s


def test_shopify_access_token_rejected_with_shopifys_message(
    shopify: ShopifyServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("shopify", shopify.origin, wrong_credentials=True))
    with pytest.raises(ConnectorAuthError, match="Invalid API key or access token"):
        c.get_customer("ana.garcia@example.com")


def test_shopify_wrong_api_version_is_unavailable(
    shopify: ShopifyServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(ShopifyOrders(shopify.shop, shopify.token, "2019-04", **FAST))
    with pytest.raises(ConnectorUnavailable, match="API version"):
        c.get_order("1042")


# --- WooCommerce --------------------------------------------------------------------------


@pytest.fixture
def woo() -> Iterator[WooCommerceServer]:
    with WooCommerceServer() as s:
        yield s


def test_woocommerce_sequential_number_is_searched_page_by_page(
    woo: WooCommerceServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("woocommerce", woo.origin))
    order = c.get_order("1047")
    assert order is not None
    assert order.id == "1051"
    lookups = [r for r in woo.requests if r.path.endswith("/orders/1047")]
    assert [r.status for r in lookups] == [404]  # no post 1047: search instead
    searches = woo.seen("/wp-json/wc/v3/orders")
    assert [r.query["page"] for r in searches if "search" in r.query] == [["1"], ["2"]]
    assert all(r.query["search"] == ["1047"] for r in searches)


def test_woocommerce_id_that_is_another_orders_number_is_not_that_order(
    woo: WooCommerceServer, closing: Callable[[Any], Any]
) -> None:
    # post 1051 is order number 1047; nobody's order is number 1051
    c = closing(_connector("woocommerce", woo.origin))
    assert c.get_order("1051") is None


def test_woocommerce_dates_are_read_in_gmt(
    woo: WooCommerceServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("woocommerce", woo.origin))
    order = c.get_order("1042")
    # the site runs on Asia/Shanghai: date_created says 2024-05-02T00:20:11
    assert order.created_at == at("2024-05-01T16:20:11")
    assert order.fulfilments[0].shipped_at == at("2024-05-02T00:00:00")  # date_shipped: unix


def test_woocommerce_counts_orders_when_customers_lack_totals(
    closing: Callable[[Any], Any],
) -> None:
    with WooCommerceServer(page_size=1) as woo:
        c = closing(_connector("woocommerce", woo.origin))
        ana = c.get_customer("17")
        assert (ana.orders_count, ana.total_spent, ana.currency) == (2, "249.80", "USD")
        pages = [r.query["page"] for r in woo.seen("/orders") if "customer" in r.query]
        assert pages == [["1"], ["2"]]


def test_woocommerce_customer_with_totals_and_a_custom_role(
    woo: WooCommerceServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("woocommerce", woo.origin))
    lukas = c.get_customer("lukas.meyer@example.de")  # role=all, or wholesale buyers vanish
    assert lukas is not None
    assert lukas.tags == ("wholesale_customer",)
    assert (lukas.orders_count, lukas.total_spent, lukas.currency) == (7, "1520.00", "USD")
    assert not woo.seen("/orders")  # the totals came with the customer


def test_woocommerce_wrong_secret_message(
    woo: WooCommerceServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("woocommerce", woo.origin, wrong_credentials=True))
    with pytest.raises(ConnectorAuthError, match="Consumer secret is invalid"):
        c.get_customer("17")


def test_woocommerce_trackship_exception_with_customs_words_is_a_customs_hold(
    woo: WooCommerceServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("woocommerce", woo.origin))
    order = c.get_order("1043")
    tracker = next(m for m in _woo_order(woo, 1043)["meta_data"] if m["key"] == "shipment_status")
    assert tracker["value"][0]["status"] == "exception"
    assert order.status == "customs_hold"


def _woo_order(woo: WooCommerceServer, order_id: int) -> dict[str, Any]:
    return next(o for o in woo.orders if o["id"] == order_id)


# --- Magento ------------------------------------------------------------------------------


@pytest.fixture
def magento() -> Iterator[MagentoServer]:
    with MagentoServer() as s:
        yield s


def test_magento_finds_zero_padded_increment_ids(
    magento: MagentoServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("magento", magento.origin))
    assert c.get_order("1042").number == "000001042"
    assert c.get_order("000001042").number == "000001042"
    search = magento.seen("/V1/orders")[0].query
    field = "searchCriteria[filter_groups][0][filters][0]"
    assert search[f"{field}[field]"] == ["increment_id"]
    assert search[f"{field}[condition_type]"] == ["in"]


def test_magento_staff_notes_are_not_scans(
    magento: MagentoServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("magento", magento.origin))
    notes = [x for x in magento.shipments[0]["comments"] if not x["is_visible_on_front"]]
    assert notes  # the fixture has one
    order = c.get_order("1042")
    assert notes[0]["comment"] not in [e.description for e in order.fulfilments[0].events]


def test_magento_pages_through_shipments(closing: Callable[[Any], Any]) -> None:
    with MagentoServer(page_size=1) as magento:
        c = closing(_connector("magento", magento.origin))
        order = c.get_order("1047")
        assert len(order.fulfilments) == 2
        pages = [r.query["searchCriteria[currentPage]"] for r in magento.seen("/V1/shipments")]
        assert pages == [["1"], ["2"]]


def test_magento_customer_tags_from_group_and_attribute(
    magento: MagentoServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("magento", magento.origin))
    lukas = c.get_customer("43")
    assert lukas.tags == ("Wholesale", "b2b", "eu")
    assert (lukas.orders_count, lukas.total_spent, lukas.currency) == (1, "59.00", "EUR")
    sophie = c.get_customer("sophie.martin@example.fr")
    assert sophie.tags == ()  # the General group says nothing
    # the customer-orders search asks only for the fields it sums
    assert any(
        r.query.get("fields")
        == ["items[entity_id,state,grand_total,order_currency_code],total_count"]
        for r in magento.seen("/V1/orders")
    )


def test_magento_customer_groups_denied_still_finds_the_customer(
    closing: Callable[[Any], Any],
) -> None:
    with MagentoServer(denied=frozenset({"Magento_Customer::group"})) as magento:
        c = closing(_connector("magento", magento.origin))
        lukas = c.get_customer("43")
        assert lukas is not None
        assert lukas.tags == ("b2b", "eu")


def test_magento_cancelled_order_dates_from_its_history(
    magento: MagentoServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("magento", magento.origin))
    order = c.get_order("1045")
    assert order.cancelled_at == at("2024-05-12T10:00:00")


def test_magento_error_messages_are_filled_in(
    magento: MagentoServer, closing: Callable[[Any], Any]
) -> None:
    c = closing(_connector("magento", magento.origin, wrong_credentials=True))
    with pytest.raises(ConnectorAuthError, match=r"access Magento_Sales::actions_view\."):
        c.get_order("1042")


# --- mapping rules shared by the connectors ----------------------------------------------


@pytest.mark.parametrize(
    ("names", "service"),
    [
        (("DHL Express",), "express"),
        (("SF Express",), "express"),
        (("YunExpress",), "standard"),
        (("4PX", "Expressversand"), "express"),
        (("USPS", None), "standard"),
    ],
)
def test_service_from_carrier_or_method(names: tuple[str | None, ...], service: str) -> None:
    assert service_for(*names) == service


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Held by customs: import duties must be paid by the recipient", "customs_hold"),
        ("Retenido en aduana", "customs_hold"),
        ("Customs clearance completed", "in_transit"),
        ("Cleared customs", "in_transit"),
        ("Out for delivery", "out_for_delivery"),
        ("Delivered - Signed for by: A. GARCIA", "delivered"),
        ("Delivery attempted - recipient not at home", "delivery_exception"),
        ("Arrived at destination country", None),
    ],
)
def test_parcel_state_from_scan_text(text: str, state: str | None) -> None:
    assert state_from_text(text) == state


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-02T09:30:00Z", at("2024-05-02T09:30:00")),
        ("2024-05-02T11:30:00+02:00", at("2024-05-02T09:30:00")),
        ("2024-05-02 09:30:00", at("2024-05-02T09:30:00")),
        ("1714608000", at("2024-05-02T00:00:00")),
        (None, None),
    ],
)
def test_dates_become_utc(value: str | None, expected: datetime | None) -> None:
    assert utc(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("129.9", "129.90"), (59, "59.00"), ("0.125", "0.125"), (None, None)]
)
def test_money(value: Any, expected: str | None) -> None:
    assert money(value) == expected
