"""Map errors to JSON responses: never a 500 with a stack trace."""

from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    ConfigError,
    ConnectorAuthError,
    ConnectorUnavailable,
    EmbeddingModelMismatch,
    IngestError,
    InvalidInput,
    KefuError,
    ModelUnavailable,
    NotFound,
    StoreUnavailable,
    UnreadableFile,
    UnsupportedFile,
)
from server.shedding import Overloaded

log = logging.getLogger(__name__)

# Every KefuError has a status here (tests/integration/test_security.py walks the hierarchy):
# the most specific class first. What the server cannot fix for the caller right now is a 503.
STATUS: list[tuple[type[KefuError], int, str]] = [
    (NotFound, 404, "not_found"),
    (InvalidInput, 422, "invalid_input"),
    (UnsupportedFile, 415, "unsupported_file"),
    (UnreadableFile, 422, "unreadable_file"),
    (IngestError, 422, "ingest_error"),
    (ModelUnavailable, 503, "model_unavailable"),
    (StoreUnavailable, 503, "store_unavailable"),
    (EmbeddingModelMismatch, 503, "embedding_model_mismatch"),
    (ConnectorAuthError, 503, "connector_auth_error"),
    (ConnectorUnavailable, 503, "connector_unavailable"),
    (ConfigError, 503, "config_error"),
]


def status_of(exc: KefuError) -> tuple[int, str] | None:
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    return None


def error_body(request: Request, code: str, message: str) -> dict[str, str | None]:
    return {
        "error": code,
        "message": message,
        "request_id": getattr(request.state, "request_id", None),
    }


def install(app: FastAPI) -> None:
    @app.exception_handler(KefuError)
    async def kefu_error(request: Request, exc: KefuError) -> JSONResponse:
        found = status_of(exc)
        if found is None:  # a new KefuError without a status: a bug, logged like one
            log.error("no HTTP status for %s", exc.__class__.__name__)
            found = (500, "internal_error")
        status, code = found
        headers = {"Retry-After": "30"} if status == 503 else None
        return JSONResponse(
            error_body(request, code, str(exc)), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return JSONResponse(error_body(request, "invalid_request", problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = (
            "overloaded"
            if isinstance(exc, Overloaded)
            else {
                401: "unauthorized",
                403: "forbidden",
                404: "not_found",
                405: "method_not_allowed",
                413: "too_large",
                415: "unsupported_media_type",
                429: "rate_limited",
            }.get(exc.status_code, "http_error")
        )
        return JSONResponse(
            error_body(request, code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sqlite3.OperationalError)
    async def storage(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        # a full disk, a locked or damaged database file: the store cannot serve right now
        log.error("storage error (request %s): %s", getattr(request.state, "request_id", "-"), exc)
        return JSONResponse(
            error_body(
                request, "store_unavailable", "the store cannot be read or written right now"
            ),
            status_code=503,
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "-"))
        return JSONResponse(
            error_body(request, "internal_error", "something went wrong on our side"),
            status_code=500,
        )
