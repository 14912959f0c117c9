"""`kefu serve`: the chat server for storefront widgets, agents and admins."""

from __future__ import annotations

from typing import Annotated

import typer

from rag.cli import console, settings, user_errors


def serve_command(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int, typer.Option(help="processes (each loads its own models)")] = 1,
) -> None:
    """Start the HTTP server (chat API, widget at /widget.js, demo page at /demo)."""
    import uvicorn

    from server.state import check_startup

    s = settings()
    with user_errors():
        check_startup(s)
    h, p = host or s.server.host, port or s.server.port
    console.print(
        f"kefu on http://{h}:{p}  — demo storefront: http://{h}:{p}/demo  "
        f"— API docs: http://{h}:{p}/docs"
    )
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=h,
        port=p,
        workers=workers,
        log_level="warning",
    )
