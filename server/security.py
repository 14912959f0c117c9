"""Who may call what: agents and admins with a Bearer key, storefronts with a public key."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from server.state import AppState


def state(request: Request) -> AppState:
    st: AppState = request.app.state.kefu
    return st


def require_agent(request: Request) -> None:
    """Agent and admin endpoints: `Authorization: Bearer <KEFU_SERVER__ADMIN_API_KEY>`."""
    s = state(request).settings.server
    if not s.admin_enabled:
        raise HTTPException(403, "the admin API is disabled")
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not token or not hmac.compare_digest(token, s.admin_api_key.get_secret_value()):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def require_public_key(request: Request) -> None:
    """Shopper endpoints: the store's public key, when one is configured."""
    expected = state(request).settings.server.public_key
    if expected and not hmac.compare_digest(request.headers.get("x-kefu-key", ""), expected):
        raise HTTPException(401, "missing or wrong public key")
