"""A WooCommerce REST API v3 (/wp-json/wc/v3) on 127.0.0.1, answering from recorded fixtures.

HTTP Basic auth with the consumer key and secret (WooCommerce's own 401 bodies for a wrong key,
a wrong secret or none), `GET /orders/{id}`, `GET /orders?search=&customer=&page=&per_page=`
newest first, `GET /customers/{id}`, `GET /customers?email=&role=` (the default role
"customer" hides other roles, as in WooCommerce), pagination headers X-WP-Total,
X-WP-TotalPages and Link, per_page validated to 1..100 and capped at `page_size` so paging
is exercised, and WooCommerce's `{"code", "message", "data": {"status"}}` errors.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from tests.doubles.storefront import Reply, Seen, StorefrontServer, load_fixture

PREFIX = "/wp-json/wc/v3"
KEY = "ck_0123456789abcdef0123456789abcdef01234567"
SECRET = "cs_0123456789abcdef0123456789abcdef01234567"


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message, "data": {"status": status}})


class WooCommerceServer(StorefrontServer):
    def __init__(
        self,
        *,
        key: str = KEY,
        secret: str = SECRET,
        page_size: int = 2,
    ) -> None:
        super().__init__(page_size=page_size)
        self.key = key
        self.secret = secret
        self.currency = (
            "USD"  # the store's currency (orders in EUR come from a multi-currency plugin)
        )
        self.orders: list[dict[str, Any]] = load_fixture("woocommerce", "orders")
        self.customers: list[dict[str, Any]] = load_fixture("woocommerce", "customers")

    @property
    def url(self) -> str:
        """The site address the connector is configured with."""
        return self.origin

    def authorise(self, seen: Seen) -> Reply | None:
        header = seen.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if key != self.key:
            return _error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.secret:
            return _error(
                401, "woocommerce_rest_authentication_error", "Consumer secret is invalid."
            )
        return None

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {
                "code": "woocommerce_rest_too_many_requests",
                "message": "Too many requests. Please wait and try again.",
                "data": {"status": 429},
            }
        return {
            "code": "internal_server_error",
            "message": "There has been a critical error on this website.",
            "data": {"status": status},
        }

    def route(self, seen: Seen) -> Reply:
        if seen.method != "GET" or not seen.path.startswith(PREFIX + "/"):
            return _error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        parts = seen.path[len(PREFIX) + 1 :].strip("/").split("/")
        q = {k: v[-1] for k, v in seen.query.items()}
        if parts == ["orders"]:
            return self._list(seen, self._orders(q))
        if parts[0] == "orders" and len(parts) == 2:
            order = next((o for o in self.orders if str(o["id"]) == parts[1]), None)
            if order is None:
                return _error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            return Reply(200, order)
        if parts == ["data", "currencies", "current"]:
            return Reply(
                200, {"code": self.currency, "name": "United States (US) dollar", "symbol": "&#36;"}
            )
        if parts == ["customers"]:
            found = self.customers
            if q.get("email"):
                found = [c for c in found if c["email"].lower() == q["email"].lower()]
            role = q.get("role", "customer")
            if role != "all":
                found = [c for c in found if c["role"] == role]
            return self._list(seen, found)
        if parts[0] == "customers" and len(parts) == 2:
            customer = next((c for c in self.customers if str(c["id"]) == parts[1]), None)
            if customer is None:
                return _error(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
            return Reply(200, customer)
        return _error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        found = sorted(self.orders, key=lambda o: o["date_created_gmt"], reverse=True)
        if q.get("customer"):
            found = [o for o in found if str(o["customer_id"]) == q["customer"]]
        if q.get("status") and q["status"] != "any":
            found = [o for o in found if o["status"] in q["status"].split(",")]
        if q.get("search"):
            term = q["search"].lower()
            found = [o for o in found if term in _searchable(o)]
        return found

    def _list(self, seen: Seen, items: list[dict[str, Any]]) -> Reply:
        q = {k: v[-1] for k, v in seen.query.items()}
        per_page = int(q.get("per_page", "10"))
        if not 1 <= per_page <= 100:
            return Reply(
                400,
                {
                    "code": "rest_invalid_param",
                    "message": "Invalid parameter(s): per_page",
                    "data": {
                        "status": 400,
                        "params": {
                            "per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"
                        },
                    },
                },
            )
        size = min(per_page, self.page_size)
        page = int(q.get("page", "1"))
        pages = max(1, -(-len(items) // size))
        links = []
        for rel, target in (("prev", page - 1), ("next", page + 1)):
            if 1 <= target <= pages:
                link = f"{self.origin}{seen.path}?{urlencode({**q, 'page': target})}"
                links.append(f'<{link}>; rel="{rel}"')
        headers = {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return Reply(200, items[(page - 1) * size : page * size], headers)


def _searchable(o: dict[str, Any]) -> str:
    """What WooCommerce's order search looks at: ids, the billing and shipping address
    indexes (names, address, e-mail, phone), line item names, and the _order_number meta of
    sequential-numbers plugins."""
    values = [str(o["id"]), str(o["number"])]
    for address in ("billing", "shipping"):
        values += [str(v) for v in (o.get(address) or {}).values()]
    values += [i["name"] for i in o.get("line_items") or []]
    values += [str(m["value"]) for m in o.get("meta_data") or [] if m["key"] == "_order_number"]
    return " ".join(values).lower()
