"""HTTP calls to a storefront API with the failure handling every connector needs.

Throttling (429, or a throttled answer the caller recognises) and server trouble (5xx,
timeouts, refused connections) are retried with exponential backoff, honouring Retry-After;
rejected credentials (401/403) fail at once with ConnectorAuthError; anything else the
platform refuses becomes ConnectorUnavailable. 404 is returned to the caller, which knows
whether it means "no such order".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from rag.errors import ConnectorAuthError, ConnectorUnavailable

log = logging.getLogger(__name__)

# Given a 2xx response, the seconds to wait before retrying it (0: the usual backoff), or None
# when it is a real answer. Shopify reports throttling inside a 200 GraphQL body.
ThrottleCheck = Callable[[httpx.Response], float | None]
# Turns an error body into the platform's own message, for the exception text.
ErrorMessage = Callable[[httpx.Response], str]

_RETRY_STATUSES = {429, 500, 502, 503, 504}


def _plain_message(response: httpx.Response) -> str:
    return response.text[:200]


class RetryingClient:
    """An httpx client bound to one platform's base URL and credentials."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        error_message: ErrorMessage = _plain_message,
    ) -> None:
        self.platform = platform
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        # a shopper is waiting: a Retry-After longer than this is reported, not slept through
        self.max_wait_s = max_wait_s
        self._error_message = error_message
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout_s,
            follow_redirects=True,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        throttled: ThrottleCheck | None = None,
    ) -> httpx.Response:
        """The response (2xx or 404) to one call, after retries; raises ConnectorUnavailable."""
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = self._client.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                # path only: query strings can hold e-mail addresses
                reason = f"{self.platform} unreachable ({exc.__class__.__name__}) on {path}"
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                log.debug(
                    "%s %s %s -> %d in %.0f ms",
                    self.platform,
                    method,
                    path,
                    status,
                    (time.monotonic() - started) * 1000,
                )
                if status in (401, 403):
                    raise ConnectorAuthError(
                        f"{self.platform} refused the credentials ({status}): "
                        f"{self._error_message(response)}"
                    )
                if status in _RETRY_STATUSES:
                    reason = f"{self.platform} answered {status} on {path}"
                    hinted = retry_after(response)
                    wait = hinted if hinted is not None else self._backoff(attempt)
                elif 200 <= status < 300 or status == 404:
                    hint = throttled(response) if throttled is not None else None
                    if hint is None:
                        return response
                    reason = f"{self.platform} throttled the call on {path}"
                    wait = hint if hint > 0 else self._backoff(attempt)
                else:
                    raise ConnectorUnavailable(
                        f"{self.platform} rejected the call ({status}) on {path}: "
                        f"{self._error_message(response)}"
                    )
            if attempt >= self.max_retries:
                raise ConnectorUnavailable(f"{reason}; gave up after {attempt + 1} attempts")
            if wait > self.max_wait_s:
                raise ConnectorUnavailable(f"{reason}; asked to wait {wait:.0f} s")
            attempt += 1
            log.info("%s; retry %d in %.2f s", reason, attempt, wait)
            time.sleep(wait)

    def get(
        self, path: str, *, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
    ) -> httpx.Response:
        return self.request("GET", path, params=params)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_s * (2**attempt), self.max_wait_s))

    def close(self) -> None:
        self._client.close()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header: a number (Shopify sends "2.0") or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def json_body(response: httpx.Response, platform: str) -> Any:
    """The decoded JSON of a response; a proxy's HTML error page becomes ConnectorUnavailable."""
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorUnavailable(f"{platform} answered something that is not JSON") from exc
