"""An Adobe Commerce / Magento 2 REST API (/rest/{store}/V1) on 127.0.0.1, answering from
recorded fixtures.

Bearer tokens (Magento's 401 `{"message": "The consumer isn't authorized to access
%resources.", "parameters": {...}}`, also for an ACL resource the integration lacks),
searchCriteria as Magento parses it (filter groups ANDed, filters in a group ORed, eq / neq /
in / nin / like / gt / gteq / lt / lteq / null / notnull; `eq` on text ignores case like MySQL's
collation), pageSize capped at `page_size` so paging is exercised, and Magento's quirk of
answering a page past the end with the last page again; `fields` partial responses;
`{"items", "search_criteria", "total_count"}` results and `{"message", "parameters"}` errors.
"""

from __future__ import annotations

import re
from typing import Any

from tests.doubles.storefront import Reply, Seen, StorefrontServer, load_fixture

TOKEN = "s3cr3t-integration-token"
_ROUTE = re.compile(r"^/rest(?:/(?P<store>[\w-]+))?/V1/(?P<rest>.+)$")
_FILTER = re.compile(r"^searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]$")
_RESOURCES = {
    "orders": "Magento_Sales::actions_view",
    "shipments": "Magento_Sales::shipment",
    "customers": "Magento_Customer::customer",
    "customerGroups": "Magento_Customer::group",
}


def _not_authorised(resource: str) -> Reply:
    return Reply(
        401,
        {
            "message": "The consumer isn't authorized to access %resources.",
            "parameters": {"resources": resource},
        },
    )


def _no_such(field: str, value: Any) -> Reply:
    return Reply(
        404,
        {
            "message": "No such entity with %fieldName = %fieldValue",
            "parameters": {"fieldName": field, "fieldValue": value},
        },
    )


class MagentoServer(StorefrontServer):
    def __init__(
        self,
        *,
        token: str = TOKEN,
        page_size: int = 2,
        denied: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(page_size=page_size)
        self.token = token
        self.denied = denied  # ACL resources the integration was not granted
        self.orders: list[dict[str, Any]] = load_fixture("magento", "orders")
        self.shipments: list[dict[str, Any]] = load_fixture("magento", "shipments")
        self.customers: list[dict[str, Any]] = load_fixture("magento", "customers")
        self.groups: list[dict[str, Any]] = load_fixture("magento", "customer_groups")

    @property
    def url(self) -> str:
        """The REST base of the default store view, as the connector is configured."""
        return f"{self.origin}/rest/default"

    def authorise(self, seen: Seen) -> Reply | None:
        m = _ROUTE.match(seen.path)
        resource = (
            _RESOURCES.get(m.group("rest").split("/")[0], "Magento_Backend::admin") if m else ""
        )
        if seen.headers.get("authorization") != f"Bearer {self.token}" or resource in self.denied:
            return _not_authorised(resource or "Magento_Backend::admin")
        return None

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {"message": "Too many requests. Try again later."}
        return {
            "message": "Internal Error. Details are available in Magento log file. "
            "Report ID: webapi-6650a1f2c3b4d"
        }

    def route(self, seen: Seen) -> Reply:
        m = _ROUTE.match(seen.path)
        if seen.method != "GET" or m is None:
            return Reply(404, {"message": "Request does not match any route."})
        parts = m.group("rest").strip("/").split("/")
        if parts == ["orders"]:
            return self._search(seen, self.orders)
        if parts == ["shipments"]:
            return self._search(seen, self.shipments)
        if parts == ["customers", "search"]:
            return self._search(seen, self.customers)
        if len(parts) == 2 and parts[1].isdigit():
            kind, key = parts[0], int(parts[1])
            if kind == "orders":
                order = next((o for o in self.orders if o["entity_id"] == key), None)
                if order is None:
                    return Reply(
                        404,
                        {
                            "message": "The entity that was requested doesn't exist. "
                            "Verify the entity and try again."
                        },
                    )
                return Reply(200, order)
            if kind == "customers":
                customer = next((c for c in self.customers if c["id"] == key), None)
                return Reply(200, customer) if customer else _no_such("customerId", key)
            if kind == "customerGroups":
                group = next((g for g in self.groups if g["id"] == key), None)
                return Reply(200, group) if group else _no_such("id", key)
        return Reply(404, {"message": "Request does not match any route."})

    def _search(self, seen: Seen, items: list[dict[str, Any]]) -> Reply:
        q = {k: v[-1] for k, v in seen.query.items()}
        if not any(k.startswith("searchCriteria") for k in q):
            return Reply(
                400,
                {
                    "message": '"%fieldName" is required. Enter and try again.',
                    "parameters": {"fieldName": "searchCriteria"},
                },
            )
        groups: dict[int, dict[int, dict[str, str]]] = {}
        for key, value in q.items():
            fm = _FILTER.match(key)
            if fm:
                group, index, part = int(fm.group(1)), int(fm.group(2)), fm.group(3)
                groups.setdefault(group, {}).setdefault(index, {})[part] = value
        found = [
            item
            for item in items
            if all(any(_matches(item, f) for f in g.values()) for g in groups.values())
        ]
        total = len(found)
        requested = int(q.get("searchCriteria[pageSize]") or 0)
        current = int(q.get("searchCriteria[currentPage]") or 1)
        page = found
        if requested:
            size = min(requested, self.page_size)
            last = max(1, -(-total // size))
            shown = min(current, last)  # past the end: Magento repeats the last page
            page = found[(shown - 1) * size : shown * size]
        body: dict[str, Any] = {
            "items": page,
            "search_criteria": {
                "filter_groups": [
                    {"filters": [groups[g][i] for i in sorted(groups[g])]} for g in sorted(groups)
                ],
                **({"page_size": requested} if requested else {}),
                "current_page": current,
            },
            "total_count": total,
        }
        if q.get("fields"):
            body = _select(body, _parse_fields(q["fields"]))
        return Reply(200, body)


def _matches(item: dict[str, Any], f: dict[str, str]) -> bool:
    value = item.get(f.get("field", ""))
    wanted = f.get("value", "")
    condition = f.get("condition_type", "eq")
    text = "" if value is None else str(value)
    if condition == "null":
        return value is None
    if condition == "notnull":
        return value is not None
    if condition in ("in", "nin"):
        inside = text.lower() in [w.strip().lower() for w in wanted.split(",")]
        return inside if condition == "in" else not inside
    if condition == "like":
        pattern = "^" + ".*".join(re.escape(p) for p in wanted.lower().split("%")) + "$"
        return re.match(pattern, text.lower()) is not None
    if condition in ("gt", "gteq", "lt", "lteq"):
        try:
            a, b = float(text), float(wanted)
        except ValueError:
            a, b = text, wanted  # type: ignore[assignment]
        return {"gt": a > b, "gteq": a >= b, "lt": a < b, "lteq": a <= b}[condition]
    equal = text.lower() == wanted.lower()
    return not equal if condition == "neq" else equal


def _parse_fields(spec: str) -> dict[str, Any]:
    """'items[entity_id,state],total_count' -> {'items': {'entity_id': {}, 'state': {}},
    'total_count': {}}"""
    pos = 0

    def parse(until: str | None) -> dict[str, Any]:
        nonlocal pos
        result: dict[str, Any] = {}
        name = ""
        while pos < len(spec):
            ch = spec[pos]
            pos += 1
            if ch == "[":
                result[name.strip()] = parse("]")
                name = ""
            elif ch == ",":
                if name.strip():
                    result[name.strip()] = {}
                name = ""
            elif ch == until:
                break
            else:
                name += ch
        if name.strip():
            result[name.strip()] = {}
        return result

    return parse(None)


def _select(value: Any, fields: dict[str, Any]) -> Any:
    if not fields:
        return value
    if isinstance(value, list):
        return [_select(v, fields) for v in value]
    if isinstance(value, dict):
        return {k: _select(value[k], sub) for k, sub in fields.items() if k in value}
    return value
