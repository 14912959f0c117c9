"""Who may call what: agents and admins with a Bearer key, storefronts with a public key,
shoppers with their session's token. Wrong keys are rate-limited per client address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from rag.errors import NotFound
from server.state import AppState

SESSION_HEADER = "x-session-token"


def state(request: Request) -> AppState:
    st: AppState = request.app.state.kefu
    return st


def client_address(request: Request) -> str:
    """The peer's address. uvicorn replaces it with X-Forwarded-For only when the peer is one of
    KEFU_SERVER__TRUSTED_PROXIES (`kefu serve` passes them); the header itself is never read."""
    return request.client.host if request.client else "unknown"


def _throttled(request: Request) -> None:
    st = state(request)
    wait = st.auth_limit.blocked(f"auth:{client_address(request)}")
    if wait is not None:
        st.metrics.errors.labels("auth_rate_limited").inc()
        raise HTTPException(
            429, "too many failed attempts, slow down", headers={"Retry-After": str(int(wait) + 1)}
        )


def _failed(request: Request, status: int, message: str, headers: dict[str, str] | None) -> None:
    st = state(request)
    st.metrics.errors.labels("auth_failed").inc()
    st.auth_limit.check(f"auth:{client_address(request)}")
    _throttled(request)  # the attempt that reaches the limit is told so
    raise HTTPException(status, message, headers=headers)


def check_admin_key(request: Request) -> None:
    s = state(request).settings.server
    _throttled(request)
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not token or not hmac.compare_digest(
        token.encode(), s.admin_api_key.get_secret_value().encode()
    ):
        _failed(request, 401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})


def require_agent(request: Request) -> None:
    """Agent and admin endpoints: `Authorization: Bearer <KEFU_SERVER__ADMIN_API_KEY>`."""
    if not state(request).settings.server.admin_enabled:
        raise HTTPException(403, "the admin API is disabled")
    check_admin_key(request)


async def require_public_key(request: Request) -> None:
    """Shopper endpoints: the store's public key, when one is configured. Checked on the event
    loop when there is none to check; otherwise in the threadpool (the failed-key counts may
    live in the shared database)."""
    if state(request).settings.server.public_key:
        await run_in_threadpool(_check_public_key, request)


def _check_public_key(request: Request) -> None:
    expected = state(request).settings.server.public_key
    _throttled(request)
    given = request.headers.get("x-kefu-key", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        _failed(request, 401, "missing or wrong public key", None)


# -- sessions ------------------------------------------------------------------------------
# Session ids are issued by the server; the token that goes with one is an HMAC of the id under
# KEFU_SERVER__SESSION_SECRET, so nothing extra is stored and any worker can check it.


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def session_token(secret: bytes, session_id: str) -> str:
    digest = hmac.new(secret, session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def valid_session(request: Request, session_id: str | None) -> bool:
    given = request.headers.get(SESSION_HEADER, "")
    if not session_id or not given:
        return False
    expected = session_token(state(request).session_secret, session_id)
    return hmac.compare_digest(given.encode(), expected.encode())


def require_session(request: Request, session_id: str) -> None:
    """Transcript and feedback: the session's token, else the session does not exist (404)."""
    if not valid_session(request, session_id):
        raise NotFound("no such session")
