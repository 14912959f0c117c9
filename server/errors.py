"""Map errors to JSON responses: never a 500 with a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    ConfigError,
    IngestError,
    InvalidInput,
    KefuError,
    ModelUnavailable,
    NotFound,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[KefuError], int, str]] = [
    (NotFound, 404, "not_found"),
    (InvalidInput, 422, "invalid_input"),
    (IngestError, 422, "ingest_error"),
    (ModelUnavailable, 503, "model_unavailable"),
    (StoreUnavailable, 503, "store_unavailable"),
    (ConfigError, 500, "config_error"),
]


def error_body(request: Request, code: str, message: str) -> dict[str, str | None]:
    return {
        "error": code,
        "message": message,
        "request_id": getattr(request.state, "request_id", None),
    }


def install(app: FastAPI) -> None:
    @app.exception_handler(KefuError)
    async def kefu_error(request: Request, exc: KefuError) -> JSONResponse:
        for cls, status, code in STATUS:
            if isinstance(exc, cls):
                return JSONResponse(error_body(request, code, str(exc)), status_code=status)
        return JSONResponse(error_body(request, "error", str(exc)), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return JSONResponse(error_body(request, "invalid_request", problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            429: "rate_limited",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(request, code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "-"))
        return JSONResponse(
            error_body(request, "internal_error", "something went wrong on our side"),
            status_code=500,
        )
