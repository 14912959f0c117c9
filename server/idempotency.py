"""Idempotency keys on the POST endpoints that clients and channels retry (IETF draft
httpapi-idempotency-key-header): `POST /v1/chat` and `POST /v1/handoffs/{id}/reply`.

A request with `Idempotency-Key: <key>` runs once. A retry with the same key and the same
request (method, path, query and body) gets the stored response again, status and headers
included, marked `Idempotent-Replayed: true`, and nothing runs a second time; the same key
with another request is a 422; a retry while the first is still running is a 409. Keys belong
to their caller (a shopper's session, else the client address; the agents), are kept
KEFU_SERVER__IDEMPOTENCY_TTL_S, and live in the shared database when KEFU_DATABASE__URL is
set (every worker and machine sees them), else in a SQLite file under KEFU_DATA_DIR.

Only successful responses are stored: a request that fails (a 4xx, a 5xx, an exception)
releases its key, so that the retry runs again. Streams (Server-Sent Events) are not covered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from rag.ports import IdempotencyStore, StoredResponse
from server.errors import error_body
from server.security import state

log = logging.getLogger(__name__)
HEADER = "idempotency-key"
# visible ASCII, as a bare token or a Structured Field string ("…", as the draft writes it)
KEY = re.compile(r'"?([\x21\x23-\x7e]{1,255})"?')
# a claim older than this belongs to a request that died (a killed worker): the key is free
# again. Longer than any request runs (the model's time budget, the database's timeouts).
LEASE_S = 300.0


@dataclass(frozen=True)
class Outcome:
    """A handler's successful response (2xx): what a retry gets again."""

    status: int
    content: Any  # JSON-able
    headers: Mapping[str, str]


def request_key(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one; a malformed one is a 400."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    found = KEY.fullmatch(raw.strip())
    if found is None or raw.strip().count('"') not in (0, 2):
        raise HTTPException(
            400, "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)"
        )
    return found.group(1)


def fingerprint(request: Request, payload: BaseModel) -> str:
    """What the request asks, whatever the JSON's spacing or key order."""
    asked = {
        "method": request.method,
        "path": request.url.path,
        "query": sorted(request.query_params.multi_items()),
        "body": payload.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def _response(stored: StoredResponse, *, replayed: bool) -> Response:
    headers = dict(stored.headers) | ({"Idempotent-Replayed": "true"} if replayed else {})
    return Response(
        stored.body, status_code=stored.status, media_type="application/json", headers=headers
    )


def _stored(outcome: Outcome) -> StoredResponse:
    # rendered as JSONResponse renders, so that the first response and its replays are the same
    body = bytes(JSONResponse(outcome.content).body).decode()
    return StoredResponse(outcome.status, body, dict(outcome.headers))


@dataclass(frozen=True)
class _Claim:
    store: IdempotencyStore
    scope: str
    key: str
    token: str

    def finish(self, outcome: Outcome) -> Response:
        stored = _stored(outcome)
        self.store.finish(self.scope, self.key, self.token, stored)
        return _response(stored, replayed=False)

    def release(self) -> None:
        self.store.release(self.scope, self.key, self.token)


def _begin(request: Request, key: str, *, scope: str, payload: BaseModel) -> _Claim | Response:
    """This request's claim on its key, or the response to send instead of running it."""
    st = state(request)
    store = st.default.idempotency
    found = store.begin(
        scope,
        key,
        fingerprint(request, payload),
        ttl_s=st.settings.server.idempotency_ttl_s,
        lease_s=LEASE_S,
    )
    match found.outcome:
        case "run":
            return _Claim(store, scope, key, found.token)
        case "replay" if found.response is not None:
            log.info("idempotent replay", extra={"path": request.url.path})
            return _response(found.response, replayed=True)
        case "mismatch":
            st.metrics.errors.labels("idempotency_key_reused").inc()
            body = error_body(
                request,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request: "
                "send a new key for a new request",
            )
            return JSONResponse(body, status_code=422)
    st.metrics.errors.labels("idempotency_key_in_flight").inc()
    body = error_body(
        request,
        "idempotency_key_in_flight",
        "a request with this Idempotency-Key is still being processed: retry later",
    )
    return JSONResponse(body, status_code=409, headers={"Retry-After": "1"})


async def run_once_async(
    request: Request,
    *,
    scope: str,
    payload: BaseModel,
    produce: Callable[[], Awaitable[Outcome]],
) -> Response | None:
    """The response under the request's Idempotency-Key, running `produce` at most once per
    key; None when the request has no key (the caller answers as usual). `produce` returns
    the successful response; a failure raises, and frees the key for the retry."""
    key = request_key(request)
    if key is None:
        return None
    claimed = await run_in_threadpool(_begin, request, key, scope=scope, payload=payload)
    if isinstance(claimed, Response):
        return claimed
    try:
        outcome = await produce()
    except BaseException:
        await run_in_threadpool(claimed.release)
        raise
    return await run_in_threadpool(claimed.finish, outcome)


def run_once(
    request: Request, *, scope: str, payload: BaseModel, produce: Callable[[], Outcome]
) -> Response | None:
    """`run_once_async` for plain handlers (FastAPI runs them in its threadpool)."""
    key = request_key(request)
    if key is None:
        return None
    claimed = _begin(request, key, scope=scope, payload=payload)
    if isinstance(claimed, Response):
        return claimed
    try:
        outcome = produce()
    except BaseException:
        claimed.release()
        raise
    return claimed.finish(outcome)
