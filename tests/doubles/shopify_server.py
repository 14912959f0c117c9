"""A Shopify Admin GraphQL endpoint on 127.0.0.1, answering from recorded fixtures.

It speaks the wire protocol the connector depends on: `POST /admin/api/{version}/graphql.json`
with `X-Shopify-Access-Token` (a wrong token gets Shopify's 401 body), GraphQL documents parsed
for real (operation name, variables, nested selections, arguments, inline fragments), answers
holding only the fields asked for (a field the fixture lacks is an `undefinedField` error, so
the connector cannot read what it did not request), cursor connections (`first`/`after`,
`pageInfo`, `nodes`/`edges`, capped at `page_size` so paging is exercised), the search syntax
the connector uses (`name:#1042 OR name:1042`, `email:...` matched as a prefix, like
Shopify's tokenised search), and the cost-based leaky bucket: every answer carries
`extensions.cost`, a query over the bucket gets a THROTTLED error, one over 1000 points
MAX_COST_EXCEEDED.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from rag.commerce.types import normalise_order_number
from tests.doubles.storefront import Reply, Seen, StorefrontServer, load_fixture

TOKEN = "shpat_test_token"
API_VERSION = "2025-01"
MAX_QUERY_COST = 1000
_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")|(?P<comment>#[^\n]*)|(?P<spread>\.\.\.)'
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[_A-Za-z]\w*)|(?P<punct>[{}():!$\[\]=@])"
)
_SORT_FIELDS = {"HAPPENED_AT": "happenedAt", "ID": "id", "CREATED_AT": "createdAt"}


class GraphQLError(Exception):
    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extensions = extensions


@dataclass
class Var:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None
    args: dict[str, Any]
    selections: list[Field] | None

    @property
    def key(self) -> str:
        return self.alias or self.name


class _Parser:
    """Just enough GraphQL: query operations, fields, aliases, arguments, inline fragments."""

    def __init__(self, text: str) -> None:
        self.tokens = [
            m.group()
            for m in _TOKEN.finditer(text)
            if m.lastgroup != "comment"  # commas and whitespace are not tokens at all
        ]
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise GraphQLError(f"Parse error: expected {expected!r}, got {token!r}", "parseError")
        self.pos += 1
        return token

    def document(self) -> dict[str | None, list[Field]]:
        operations: dict[str | None, list[Field]] = {}
        while self.peek() is not None:
            if self.peek() == "{":
                operations[None] = self.selection_set()
                continue
            kind = self.take()
            if kind != "query":
                raise GraphQLError(f"{kind} is not supported by this double", "parseError")
            name = None if self.peek() in ("(", "{") else self.take()
            if self.peek() == "(":
                depth = 0
                while True:
                    token = self.take()
                    depth += {"(": 1, ")": -1}.get(token, 0)
                    if depth == 0:
                        break
            operations[name] = self.selection_set()
        return operations

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while self.peek() != "}":
            if self.peek() == "...":
                self.take()
                if self.peek() != "on":
                    raise GraphQLError("fragment spreads are not supported", "parseError")
                self.take("on")
                self.take()  # the type condition: one type per place in our queries
                fields += self.selection_set()
            else:
                fields.append(self.field())
        self.take("}")
        return fields

    def field(self) -> Field:
        name, alias = self.take(), None
        if self.peek() == ":":
            self.take()
            alias, name = name, self.take()
        args: dict[str, Any] = {}
        if self.peek() == "(":
            self.take()
            while self.peek() != ")":
                key = self.take()
                self.take(":")
                args[key] = self.value()
            self.take(")")
        selections = self.selection_set() if self.peek() == "{" else None
        return Field(name, alias, args, selections)

    def value(self) -> Any:
        token = self.take()
        if token == "$":
            return Var(self.take())
        if token.startswith('"'):
            return json.loads(token)
        if token == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if re.fullmatch(r"-?\d+\.\d+", token):
            return float(token)
        return {"true": True, "false": False, "null": None}.get(token, token)  # enums: names


def _resolve(args: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    return {k: variables.get(v.name) if isinstance(v, Var) else v for k, v in args.items()}


def _cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last_id": index}).encode()).decode()


def _index(cursor: str) -> int:
    return int(json.loads(base64.b64decode(cursor))["last_id"])


class ShopifyServer(StorefrontServer):
    def __init__(
        self,
        *,
        token: str = TOKEN,
        api_version: str = API_VERSION,
        page_size: int = 2,
        maximum_available: float = 2000.0,
        restore_rate: float = 100.0,
    ) -> None:
        super().__init__(page_size=page_size)
        self.token = token
        self.api_version = api_version
        self.orders: list[dict[str, Any]] = load_fixture("shopify", "orders")
        self.customers: list[dict[str, Any]] = load_fixture("shopify", "customers")
        self.maximum_available = maximum_available
        self.restore_rate = restore_rate
        self._available = maximum_available
        self._filled_at = time.monotonic()
        self._bucket_lock = threading.Lock()
        self._last_cost = 0
        self.operations: list[str] = []  # operationName of every query answered

    @property
    def shop(self) -> str:
        """What the connector takes as `shop`: the base URL itself."""
        return self.origin

    def set_bucket(self, available: float, *, restore_rate: float | None = None) -> None:
        with self._bucket_lock:
            self._available = available
            self._filled_at = time.monotonic()
            if restore_rate is not None:
                self.restore_rate = restore_rate

    # --- StorefrontServer ----------------------------------------------------------------

    def authorise(self, seen: Seen) -> Reply | None:
        if seen.headers.get("x-shopify-access-token") != self.token:
            return Reply(
                401,
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
            )
        return None

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {"errors": "Exceeded 2 calls per second for api client. Reduce request rates."}
        return {"errors": "Internal Server Error"}

    def route(self, seen: Seen) -> Reply:
        if seen.method != "POST" or seen.path != f"/admin/api/{self.api_version}/graphql.json":
            return Reply(404, {"errors": "Not Found"})
        if not isinstance(seen.body, dict) or "query" not in seen.body:
            return Reply(400, {"errors": {"query": "Required parameter missing or invalid"}})
        try:
            return Reply(200, self._execute(seen.body))
        except GraphQLError as exc:
            return Reply(200, self._errors(exc))

    # --- GraphQL -------------------------------------------------------------------------

    def _execute(self, body: dict[str, Any]) -> dict[str, Any]:
        operations = _Parser(body["query"]).document()
        name = body.get("operationName")
        if name is None and len(operations) == 1:
            name = next(iter(operations))
        if name not in operations:
            raise GraphQLError(f"No operation named {name!r}", "operationNotFound")
        selections = operations[name]
        variables = body.get("variables") or {}
        cost = self._cost(selections, variables)
        if cost > MAX_QUERY_COST:
            raise GraphQLError(
                f"Query cost is {cost}, which exceeds the single query max cost limit "
                f"({MAX_QUERY_COST}).",
                "MAX_COST_EXCEEDED",
                cost=cost,
                maxCost=MAX_QUERY_COST,
            )
        with self._bucket_lock:
            self._refill()
            if cost > self._available:
                self._last_cost = cost
                raise GraphQLError("Throttled", "THROTTLED")
            data = {f.key: self._root(f, variables) for f in selections}
            self._available -= cost
            self.operations.append(str(name))
            return {"data": data, "extensions": {"cost": self._cost_report(cost, cost)}}

    def _errors(self, exc: GraphQLError) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": exc.code, **exc.extensions}
        if exc.code == "THROTTLED":
            extensions["documentation"] = "https://shopify.dev/api/usage/rate-limits"
        body: dict[str, Any] = {"errors": [{"message": str(exc), "extensions": extensions}]}
        if exc.code == "THROTTLED":
            body["extensions"] = {"cost": self._cost_report(self._last_cost, None)}
        return body

    def _refill(self) -> None:
        now = time.monotonic()
        self._available = min(
            self.maximum_available, self._available + (now - self._filled_at) * self.restore_rate
        )
        self._filled_at = now

    def _cost_report(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum_available,
                "currentlyAvailable": int(self._available),
                "restoreRate": self.restore_rate,
            },
        }

    def _cost(self, fields: list[Field], variables: dict[str, Any]) -> int:
        """Shopify's rule of thumb: scalars 0, objects 1, connections 2 + first x node cost."""
        total = 0
        for f in fields:
            if f.selections is None:
                continue
            args = _resolve(f.args, variables)
            child = self._cost(f.selections, variables)
            size = args.get("first") or args.get("last")
            total += 2 + int(size) * max(child, 1) if size else 1 + child
        return total

    def _root(self, f: Field, variables: dict[str, Any]) -> Any:
        args = _resolve(f.args, variables)
        if f.name == "orders":
            names = {
                normalise_order_number(v.strip('"'))
                for v in re.findall(r"name:(\S+)", args.get("query") or "")
            }
            found = [o for o in self.orders if normalise_order_number(o["name"]) in names]
            return self._connection(found, f, args, variables)
        if f.name == "customers":
            m = re.search(r'email:"?([^\s"]+)"?', args.get("query") or "")
            prefix = m.group(1).lower() if m else ""
            found = [c for c in self.customers if (c.get("email") or "").lower().startswith(prefix)]
            found.sort(key=lambda c: int(c["id"].rsplit("/", 1)[1]))
            return self._connection(found, f, args, variables)
        if f.name == "customer":
            node = next((c for c in self.customers if c["id"] == args.get("id")), None)
            return self._project(node, f, variables) if node else None
        if f.name == "order":
            node = next((o for o in self.orders if o["id"] == args.get("id")), None)
            return self._project(node, f, variables) if node else None
        if f.name == "fulfillment":
            for order in self.orders:
                for fulfilment in order["fulfillments"]:
                    if fulfilment["id"] == args.get("id"):
                        return self._project(fulfilment, f, variables)
            return None
        raise GraphQLError(f"Field '{f.name}' doesn't exist on type 'QueryRoot'", "undefinedField")

    def _project(self, obj: dict[str, Any], f: Field, variables: dict[str, Any]) -> Any:
        out: dict[str, Any] = {}
        for sub in f.selections or []:
            if sub.name == "__typename":
                out[sub.key] = obj.get("__typename")
                continue
            if sub.name not in obj:
                raise GraphQLError(
                    f"Field '{sub.name}' doesn't exist on type '{obj.get('__typename', '?')}'",
                    "undefinedField",
                )
            out[sub.key] = self._value(obj[sub.name], sub, variables)
        return out

    def _value(self, value: Any, f: Field, variables: dict[str, Any]) -> Any:
        if f.selections is None:
            if isinstance(value, dict) or (
                isinstance(value, list) and value and isinstance(value[0], dict)
            ):
                raise GraphQLError(
                    f"Field must have selections (field '{f.name}' returns an object)",
                    "selectionMismatch",
                )
            return value
        if value is None:
            return None
        args = _resolve(f.args, variables)
        if isinstance(value, list):  # a plain list field, e.g. fulfillments(first: 5)
            limit = args.get("first")
            return [self._project(v, f, variables) for v in value[:limit]]
        if isinstance(value, dict) and str(value.get("__typename", "")).endswith("Connection"):
            return self._connection(value["nodes"], f, args, variables)
        return self._project(value, f, variables)

    def _connection(
        self, nodes: list[dict[str, Any]], f: Field, args: dict[str, Any], variables: dict[str, Any]
    ) -> Any:
        first = args.get("first")
        if first is None:
            raise GraphQLError(
                "you must provide one of first or last", "argumentLiteralsIncompatible"
            )
        if int(first) > 250:
            raise GraphQLError("The maximum page size is 250", "argumentLiteralsIncompatible")
        ordered = list(nodes)
        sort_field = _SORT_FIELDS.get(str(args.get("sortKey") or ""))
        if sort_field:
            ordered.sort(key=lambda n: n[sort_field])
        if args.get("reverse"):
            ordered.reverse()
        start = _index(args["after"]) + 1 if args.get("after") else 0
        size = min(int(first), self.page_size)
        page = ordered[start : start + size]
        connection = {
            "__typename": "Connection",
            "nodes": page,
            "edges": [
                {"__typename": "Edge", "cursor": _cursor(start + i), "node": n}
                for i, n in enumerate(page)
            ],
            "pageInfo": {
                "__typename": "PageInfo",
                "hasNextPage": start + size < len(ordered),
                "hasPreviousPage": start > 0,
                "startCursor": _cursor(start) if page else None,
                "endCursor": _cursor(start + len(page) - 1) if page else None,
            },
        }
        return self._project(connection, f, variables)
