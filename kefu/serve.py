"""`kefu serve`: the chat server for storefront widgets, agents and admins."""

from __future__ import annotations

import logging
import logging.config
import os
import secrets
from typing import Annotated, Any

import typer

from kefu.chat import console, fail, settings, user_errors
from rag.settings import ServerSettings

log = logging.getLogger("kefu.serve")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def proxy_options(s: ServerSettings) -> dict[str, Any]:
    """uvicorn believes X-Forwarded-For only from KEFU_SERVER__TRUSTED_PROXIES. Its default
    (trust 127.0.0.1) would let anyone on the host, or a proxy that passes the header through,
    choose the client address that rate limits count by."""
    if not s.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(s.trusted_proxies)}


def serve_command(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int, typer.Option(help="processes (each loads its own models)")] = 1,
) -> None:
    """Start the HTTP server (chat API, widget at /widget.js, demo page at /demo)."""
    import uvicorn

    from server.logs import log_config
    from server.state import check_startup

    s = settings()
    with user_errors():
        check_startup(s)
    level = s.server.log_level.upper()
    if level not in LEVELS:
        fail(f"KEFU_SERVER__LOG_LEVEL={s.server.log_level}: use one of {', '.join(LEVELS)}")
    # uvicorn applies the same config in every worker process
    config = log_config(s.server.log_format, level)
    logging.config.dictConfig(config)
    h, p = host or s.server.host, port or s.server.port
    docs = s.server.mode == "development" if s.server.docs is None else s.server.docs
    banner = f"kefu on http://{h}:{p}  — demo storefront: http://{h}:{p}/demo" + (
        f"  — API docs: http://{h}:{p}/docs" if docs else ""
    )
    if s.server.session_secret is None and workers > 1:
        # every worker must check the tokens the others signed: one random secret for all
        os.environ["KEFU_SERVER__SESSION_SECRET"] = secrets.token_urlsafe(32)
    if console.is_terminal or s.server.log_format == "text":
        console.print(banner)
    else:  # keep stderr pure JSON lines for log shippers
        log.info(banner)
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=h,
        port=p,
        workers=workers,
        # with --workers, uvicorn kills a worker that misses a 5 s health ping; a worker busy
        # importing and loading its models (or on a loaded machine) misses it and is killed
        # again at every restart, so the workers never come up
        timeout_worker_healthcheck=60,
        log_config=config,
        log_level=level.lower(),
        # the app logs every request with its id; uvicorn's access log would add client addresses
        access_log=False,
        **proxy_options(s.server),
    )
