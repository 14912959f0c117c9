"""Shopify's Admin GraphQL endpoint, with its cost-based rate limit.

Shopify meters GraphQL by query cost in a leaky bucket: every answer reports
`extensions.cost.throttleStatus`, and the next call waits when the bucket would not cover what
the same query cost last time. A THROTTLED answer (or HTTP 429) is retried after the time the
bucket needs to refill. GraphQL errors become ConnectorAuthError (ACCESS_DENIED) or
ConnectorUnavailable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from rag.adapters.http_retry import RetryingClient, json_body
from rag.errors import ConnectorAuthError, ConnectorUnavailable

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    available: float
    restore_rate: float
    maximum: float
    at: float  # time.monotonic() of the answer that reported it


class ShopifyGraphQL:
    """One shop's Admin GraphQL endpoint, shared by every query of a connector."""

    def __init__(
        self,
        shop: str,
        token: str,
        api_version: str,
        *,  # the retry knobs every connector takes alike (rag/container.py passes them)
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

    def close(self) -> None:
        self._http.close()

    def query(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The `data` of one GraphQL operation; errors become ConnectorAuthError (access
        denied) or ConnectorUnavailable."""
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
