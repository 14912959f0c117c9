"""The FastAPI app factory. `create_app(container)` in tests; the lifespan builds the container
from settings otherwise. Models load once at start-up, never per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag.container import Container
from rag.settings import Settings
from server import errors, logs
from server.routes import agents, chat
from server.state import AppState, check_startup

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def create_app(container: Container | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or (container.settings if container else Settings())
    check_startup(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = container or Container(settings)
        # load the models now, not on the first shopper's request
        _ = c.pipeline
        app.state.kefu = AppState(settings=settings, default=c)
        log.info("kefu ready: store=%s model=%s", c.store, c.pipeline.llm and c.pipeline.llm.name)
        yield

    app = FastAPI(
        title="kefu",
        description="Multilingual customer-service API for cross-border storefronts",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.server.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "X-Kefu-Key", "Accept"],
        expose_headers=["X-Session-Id", "X-Request-Id", "Retry-After"],
    )

    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        limit = settings.server.max_body_bytes
        length = request.headers.get("content-length")
        is_upload = request.url.path == "/v1/admin/ingest"
        if not is_upload and length and length.isdigit() and int(length) > limit:
            return JSONResponse(
                errors.error_body(request, "too_large", f"request body over {limit} bytes"),
                status_code=413,
            )
        return await call_next(request)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # a caller's id is kept when it looks like one (it ends up in logs and headers)
        given = request.headers.get("x-request-id", "")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        request.state.request_id = rid
        token = logs.request_id.set(rid)
        start = time.perf_counter()
        try:
            response = await limit_body(request, call_next)
        finally:
            logs.request_id.reset(token)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - start
        st: AppState | None = getattr(request.app.state, "kefu", None)
        if st is not None:
            st.metrics.requests.labels(name, str(response.status_code)).inc()
            st.metrics.latency.labels(name).observe(elapsed)
        # the route template, never the raw path (it can hold customer ids); probes at DEBUG.
        # For a stream, the latency is to the first byte: the reply line has the total.
        log.log(
            logging.DEBUG if name in QUIET_ROUTES else logging.INFO,
            "request",
            extra={
                "request_id": rid,
                "method": request.method,
                "path": name,
                "status": response.status_code,
                "latency_ms": round(elapsed * 1000, 1),
            },
        )
        response.headers["X-Request-Id"] = rid
        return response

    app.include_router(chat.router)
    app.include_router(agents.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        st: AppState = request.app.state.kefu
        checks: dict[str, Any] = {}
        try:
            checks["documents"] = st.default.index.document_count()
            checks["vectors"] = st.default.vectors.count()
            checks["store"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["store"] = f"down: {exc.__class__.__name__}"
        checks["embedder"] = st.default.embedder.name
        checks["llm"] = st.default.llm.name if st.default.llm else "none"
        ok = checks["store"] == "ok"
        return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics(request: Request) -> PlainTextResponse:
        st: AppState = request.app.state.kefu
        return PlainTextResponse(
            generate_latest(st.metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST
        )

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> Response:
        js = (files("server") / "static" / "widget.js").read_text(encoding="utf-8")
        return Response(
            js,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @app.get("/demo", include_in_schema=False)
    async def demo() -> HTMLResponse:
        return HTMLResponse((files("server") / "static" / "demo.html").read_text(encoding="utf-8"))

    return app
