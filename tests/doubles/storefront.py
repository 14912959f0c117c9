"""What the Shopify, WooCommerce and Magento doubles share: a real HTTP server on 127.0.0.1
that records every request, checks credentials first (as the platforms do), can be told to
answer the next calls with 429/5xx, and otherwise routes to the platform's handler."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "commerce"


def load_fixture(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic()
    status: int = 0  # what the double answered


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class StorefrontServer:
    """Subclasses implement `authorise` (None when the credentials are good) and `route`."""

    def __init__(self, *, page_size: int = 2) -> None:
        self.page_size = page_size  # small, so that connectors have to page
        self.requests: list[Seen] = []
        self._failures: list[Reply] = []
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                parts = urlsplit(self.path)
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw.strip().startswith(("{", "[")) else raw,
                    at=time.monotonic(),
                )
                reply = double._dispatch(seen)
                seen.status = reply.status
                data = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # a short poll interval: shutdown() waits for it, once per test
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- what tests use ------------------------------------------------------------------

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(
        self, n: int, status: int = 429, *, retry_after: str | None = "0.05", body: Any = None
    ) -> None:
        """Answer the next `n` authorised calls with `status` (and Retry-After when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        reply = Reply(status, body if body is not None else self.error_body(status), headers)
        with self._lock:
            self._failures += [reply] * n

    def seen(self, path_part: str = "") -> list[Seen]:
        """Requests answered 2xx whose path contains `path_part`."""
        return [r for r in self.requests if path_part in r.path and 200 <= r.status < 300]

    # --- for subclasses ------------------------------------------------------------------

    def authorise(self, seen: Seen) -> Reply | None:
        raise NotImplementedError

    def route(self, seen: Seen) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        return {"message": f"HTTP {status}"}

    def _dispatch(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
        refused = self.authorise(seen)
        if refused is not None:
            return refused
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return failure
        return self.route(seen)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
