"""An OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It speaks the real wire protocol (JSON and `stream: true` Server-Sent Events with
`chat.completion.chunk` objects, `stream_options.include_usage`, Bearer auth, error bodies), so
the production `openai` adapter is exercised end to end. Replies come from a responder function;
every request is recorded.

`mode` (settable between requests) plays a faulty endpoint: "hang" (accepts the request and
never answers until the server stops), "error" (HTTP 500 with an OpenAI error body), "truncated"
(a stream of one token, then the connection closes: no finish reason, no `[DONE]`), "garbage"
(a 200 stream of lines that are not JSON chunks), "length" (the whole reply, finish reason
"length"), "no_done" (finish reason "stop" but no `[DONE]` before the close). "ok" is the
well-behaved endpoint.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "hang", "error", "truncated", "garbage", "length", "no_done"]
Responder = Callable[[list[dict[str, Any]]], str]


class OpenAICompatibleServer:
    def __init__(
        self,
        responder: Responder,
        *,
        api_key: str = "test-key",
        delay_s: float = 0.0,
        token_delay_s: float = 0.0,
        mode: Mode = "ok",
    ) -> None:
        self.responder = responder
        self.mode: Mode = mode
        self._stopping = threading.Event()
        self.api_key = api_key
        self.delay_s = delay_s
        self.token_delay_s = token_delay_s
        self.requests: list[dict[str, Any]] = []
        self.raw_bodies: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _json(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode("utf-8")
                server.raw_bodies.append(raw)
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._json(
                        401,
                        {
                            "error": {
                                "message": "Incorrect API key provided",
                                "type": "invalid_request_error",
                                "code": "invalid_api_key",
                            }
                        },
                    )
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found", "type": "not_found"}})
                    return
                body = json.loads(raw)
                server.requests.append(body)
                if server.mode == "hang":
                    server._stopping.wait()
                    self.close_connection = True
                    return
                if server.mode == "error":
                    self._json(
                        500,
                        {"error": {"message": "The server had an error", "type": "server_error"}},
                        close=True,
                    )
                    return
                if server.delay_s:
                    time.sleep(server.delay_s)
                text = server.responder(body["messages"])
                pieces = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
                prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(pieces),
                    "total_tokens": prompt_tokens + len(pieces),
                }
                cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
                created = int(time.time())
                model = body.get("model", "test-model")
                if not body.get("stream"):
                    self._json(
                        200,
                        {
                            "id": cid,
                            "object": "chat.completion",
                            "created": created,
                            "model": model,
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text},
                                }
                            ],
                            "usage": usage,
                        },
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()

                def send(obj: dict[str, Any] | str) -> None:
                    data = obj if isinstance(obj, str) else json.dumps(obj)
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()

                def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
                    return {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }

                try:
                    if server.mode == "truncated":
                        send(chunk({"role": "assistant", "content": ""}, None))
                        send(chunk({"content": pieces[0]}, None))
                        self.close_connection = True
                        return
                    if server.mode == "garbage":
                        for line in ("<html>502 Bad Gateway</html>", "{not json", "\x00\x01"):
                            self.wfile.write(f"data: {line}\n\n".encode())
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    send(chunk({"role": "assistant", "content": ""}, None))
                    for p in pieces:
                        if server.token_delay_s:
                            time.sleep(server.token_delay_s)
                        send(chunk({"content": p}, None))
                    # "length": cut at max_tokens; "no_done": the terminator never comes
                    send(chunk({}, "length" if server.mode == "length" else "stop"))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        send(
                            {
                                "id": cid,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": model,
                                "choices": [],
                                "usage": usage,
                            }
                        )
                    if server.mode != "no_done":
                        send("[DONE]")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> OpenAICompatibleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # releases hanging requests
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
