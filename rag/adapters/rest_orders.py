"""What the REST order connectors (Magento, WooCommerce) share: a GET that tells "no such
record" from "no such API here", and the customer lookup by e-mail or by numeric id.

Both platforms answer a missing record and a missing route with 404; only the body tells them
apart (a platform error naming the route, or no platform body at all: a wrong address, the
REST API disabled). A lookup of a missing record returns None; a missing API is
ConnectorUnavailable, so a misconfigured shop is not mistaken for an unknown order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from rag.adapters.http_retry import RetryingClient, json_body
from rag.commerce.types import Customer
from rag.errors import ConnectorUnavailable

Params = Mapping[str, Any] | list[tuple[str, Any]]


class RestOrderConnector:
    """Base of a REST OrderConnector; subclasses set the class attributes and implement
    `_customers_by_email` and `_customer` (and `get_order`)."""

    name: str
    customers_path: str  # GET {customers_path}/{id} is one customer
    # the 404 body of a missing route: (its field, the value it then holds)
    no_route: tuple[str, str]
    route_hint: str  # what to check when the route is missing

    def __init__(self, base: str, http: RetryingClient) -> None:
        self._base = base
        self._http = http

    def get_customer(self, key: str) -> Customer | None:
        key = key.strip()
        if "@" in key:
            matches = [
                c
                for c in self._customers_by_email(key)
                if (c.get("email") or "").lower() == key.lower()
            ]
            return self._customer(matches[0]) if matches else None
        if not key.isdigit():
            return None
        response = self._get(f"{self.customers_path}/{key}")
        if response.status_code == 404:
            return None
        return self._customer(json_body(response, self.name))

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: Params | None = None) -> httpx.Response:
        """GET that returns a 404 for a missing record and raises for a missing route."""
        response = self._http.get(path, params=params)
        if response.status_code == 404:
            field, no_route = self.no_route
            try:
                said = response.json().get(field)
            except (ValueError, AttributeError):
                said = None
            if said in (None, no_route):
                raise ConnectorUnavailable(
                    f"{self.name}: no REST route {path} at {self._base} ({self.route_hint})"
                )
        return response

    def _customers_by_email(self, email: str) -> list[dict[str, Any]]:
        """The platform's customers found for an e-mail (the caller keeps the exact match)."""
        raise NotImplementedError

    def _customer(self, c: dict[str, Any]) -> Customer:
        raise NotImplementedError
