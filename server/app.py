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

from anyio import to_thread
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.container import Container
from rag.errors import KefuError
from rag.settings import Settings
from server import errors, logs
from server.routes import agents, chat
from server.security import check_admin_key
from server.state import AppState, check_startup, gate_llm

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
UPLOAD_PATHS = frozenset({"/v1/admin/ingest"})

# Content-Security-Policy per kind of page. The widget injects its own <style> element, hence
# 'unsafe-inline' for styles on the demo page; Swagger UI comes from jsDelivr.
CSP_NONE = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CSP_DEMO = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
CSP_DOCS = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(path: str) -> dict[str, str]:
    headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if path == "/widget.js":  # a script storefronts load from another origin
        return headers | {"Cross-Origin-Resource-Policy": "cross-origin"}
    csp = {"/demo": CSP_DEMO, "/docs": CSP_DOCS, "/redoc": CSP_DOCS}.get(path, CSP_NONE)
    if path.startswith("/v1/documents/"):  # seller-provided text, shown as text only
        csp += "; sandbox"
    return headers | {"Content-Security-Policy": csp, "X-Frame-Options": "DENY"}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    """Request bodies are limited on the bytes actually received, chunked ones included, before
    anything parses them: a declared length over the limit is refused unread, and reading stops
    at the first chunk past the limit. Uploads have their own, larger limit."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app, self.limit, self.upload_limit = app, limit, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in UPLOAD_PATHS else self.limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)  # FastAPI turns it into the JSON 413
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:  # raised outside FastAPI's handlers
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        rid = scope.get("state", {}).get("request_id")
        body = {"error": "too_large", "message": f"request body over {limit} bytes"}
        response = JSONResponse(body | {"request_id": rid}, status_code=413)
        response.headers["Connection"] = "close"
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def readiness(st: AppState) -> tuple[list[str], dict[str, Any]]:
    """What stops this server from answering well (empty when ready), and what it checked."""
    c = st.default
    problems = list(st.startup_problems)
    checks: dict[str, Any] = {}
    if not (c.generation_dir / "manifest.sqlite3").exists():
        problems.append(f"the index manifest of store {c.store!r} is missing")
    if st.settings.chroma.mode == "persistent" and not (c.generation_dir / "chroma").is_dir():
        problems.append(f"the Chroma folder of store {c.store!r} is missing")
    try:
        checks["documents"] = c.index.document_count()
        checks["chunks"] = c.index.chunk_count()
        checks["vectors"] = c.vectors.count()
        checks["store"] = "ok"
        # vectors are written before the manifest rows, and deleted after them
        if checks["vectors"] < checks["chunks"] or (checks["chunks"] == 0 < checks["vectors"]):
            problems.append(
                f"index inconsistent: {checks['chunks']} chunks in the manifest, "
                f"{checks['vectors']} vectors in Chroma (run `kefu ingest rebuild`)"
            )
    except Exception as exc:  # readiness reports, it does not raise
        checks["store"] = f"down: {exc.__class__.__name__}"
        problems.append(f"the vector store is unreachable ({exc.__class__.__name__})")
    loaded = c.built("embedder") and c.built("pipeline")
    checks["embedder"] = c.embedder.name if loaded else "not loaded"
    if not loaded:
        problems.append("the models are not loaded")
    llm = c.llm if c.built("llm") else None
    checks["llm"] = llm.name if llm else "none"
    if st.settings.llm.provider != "none" and llm is None:
        problems.append("the language model is not loaded")
    checks["orders"] = st.settings.commerce.provider
    return problems, checks


def startup_problems(c: Container) -> list[str]:
    """Checked before the container opens anything (opening creates empty files)."""
    s = c.settings
    found = []
    if not (c.generation_dir / "manifest.sqlite3").exists():
        found.append(
            f"store {c.store!r} has no index manifest: run `kefu ingest sync FOLDER` "
            f"(or `kefu ingest rebuild` when it was lost)"
        )
    if s.chroma.mode == "persistent" and not (c.generation_dir / "chroma").is_dir():
        found.append(f"store {c.store!r} has no Chroma folder: run `kefu ingest rebuild`")
    path = s.commerce.sqlite_path
    if s.commerce.provider == "sqlite" and path is not None and not path.exists():
        found.append(
            "the order store KEFU_COMMERCE__SQLITE_PATH does not exist: run `kefu store import` "
            "or set KEFU_COMMERCE__PROVIDER=none"
        )
    return found


def create_app(container: Container | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or (container.settings if container else Settings())
    check_startup(settings)
    server = settings.server
    dev = server.mode == "development"
    docs = dev if server.docs is None else server.docs
    metrics_on = dev if server.metrics is None else server.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = container or Container(settings)
        problems = startup_problems(c)
        # load the models now, not on the first shopper's request; a store that cannot be
        # opened (damaged Chroma files) is reported on /readyz and answered with 503s
        try:
            gate_llm(c, settings)
            _ = c.pipeline
            _ = c.idempotency  # now, not raced for by the first requests that carry a key
        except KefuError as exc:
            problems.append(f"store {c.store!r} cannot be opened: {exc}")
        threads = to_thread.current_default_thread_limiter().total_tokens
        app.state.kefu = AppState(
            settings=settings, default=c, startup_problems=problems, threads=int(threads)
        )
        for problem in problems:
            log.warning("kefu is not ready: %s", problem)
        log.info("kefu started: store=%s model=%s", c.store, c.llm and c.llm.name)
        yield
        # SIGTERM: running ingest jobs stop at their next file or batch (their threads are
        # daemons, so the process does not wait for them)
        for job in list(app.state.kefu.jobs.values()):
            job.cancel()
        # the database pools and files: PostgreSQL sees its connections end, not drop
        app.state.kefu.close()

    app = FastAPI(
        title="kefu",
        description="Multilingual customer-service API for cross-border storefronts",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    errors.install(app)
    # outermost last: the request id and headers (guard), CORS, then the body limit
    app.add_middleware(BodyLimit, limit=server.max_body_bytes, upload_limit=server.max_upload_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=server.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=[
            "Content-Type",
            "Authorization",
            "X-Kefu-Key",
            "X-Session-Token",
            "Accept",
            "Idempotency-Key",
        ],
        expose_headers=[
            "X-Session-Id",
            "X-Session-Token",
            "X-Request-Id",
            "Retry-After",
            "Idempotent-Replayed",
        ],
    )

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
            response = await call_next(request)
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
        for header, value in security_headers(request.url.path).items():
            response.headers.setdefault(header, value)
        return response

    app.include_router(chat.router)
    app.include_router(agents.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> JSONResponse:
        """503 with the reasons when the index, Chroma, the models or the order store are
        missing or inconsistent."""
        problems, checks = readiness(request.app.state.kefu)
        body = {"ready": not problems, "problems": problems, **checks}
        return JSONResponse(body, status_code=503 if problems else 200)

    if metrics_on:
        guard_metrics = [Depends(check_admin_key)] if server.metrics_auth else []

        @app.get("/metrics", tags=["ops"], dependencies=guard_metrics)
        async def metrics(request: Request) -> PlainTextResponse:
            st: AppState = request.app.state.kefu
            return PlainTextResponse(
                generate_latest(st.metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST
            )

    # plain functions: they read files, so the threadpool runs them
    @app.get("/widget.js", include_in_schema=False)
    def widget() -> Response:
        js = (files("server") / "static" / "widget.js").read_text(encoding="utf-8")
        return Response(
            js,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @app.get("/demo", include_in_schema=False)
    def demo() -> HTMLResponse:
        return HTMLResponse((files("server") / "static" / "demo.html").read_text(encoding="utf-8"))

    return app
