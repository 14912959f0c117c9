"""Server logs: JSON lines with request ids, configured by `kefu serve`, never shopper text.

The end-to-end test runs the real entry point (`kefu serve`, a subprocess on a loopback port,
the deterministic hash embedder and no LLM so it starts in seconds) and reads its stderr."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.container import Container
from server import logs
from tests.conftest import SAMPLE_STORE, free_port, make_settings, wait_healthy

QUESTION = "Hola, soy maria.lopez@example.com. ¿Cuánto tarda el envío estándar a México?"


@pytest.fixture
def handler() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """The handler `log_config` describes (formatter and filters), writing to a buffer."""
    cfg = logs.log_config("json")
    assert cfg["handlers"]["stderr"]["filters"] == ["redact_pii", "request_id"]
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(logs.JsonFormatter())
    from rag.guardrails.pii import RedactingFilter

    h.addFilter(RedactingFilter())
    h.addFilter(logs.RequestIdFilter())
    log = logging.getLogger("kefu.test.logs")
    log.addHandler(h)
    log.setLevel(logging.INFO)
    yield log, buf
    log.removeHandler(h)


def test_json_lines_carry_the_request_id_and_extras(
    handler: tuple[logging.Logger, io.StringIO],
) -> None:
    log, buf = handler
    token = logs.request_id.set("req-42")
    try:
        log.info("reply", extra={"status": 200, "latency_ms": 12.5, "mode": "llm"})
        log.info("card %s on file", "4111 1111 1111 1111")
    finally:
        logs.request_id.reset(token)
    log.info("outside a request")
    first, second, third = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["request_id"] == "req-42"
    assert first["message"] == "reply"
    assert first["level"] == "INFO"
    assert first["logger"] == "kefu.test.logs"
    assert (first["status"], first["latency_ms"], first["mode"]) == (200, 12.5, "llm")
    assert first["ts"].endswith("+00:00")
    assert "4111" not in second["message"]  # the PII filter still runs before formatting
    assert third["request_id"] is None


def test_text_format_is_one_readable_line() -> None:
    record = logging.LogRecord("server.app", logging.INFO, "", 0, "request", None, None)
    record.status = 200
    line = logs.TextFormatter().format(record)
    assert line.endswith("INFO server.app [-] request status=200")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store ingested with the hash embedder, so the server starts in seconds."""
    from ingest.service import build_ingestor

    kb = tmp_path_factory.mktemp("kb")
    for rel in ("docs/es/envios-mexico.md", "docs/shipping/shipping-zones.md"):
        shutil.copy(SAMPLE_STORE / rel, kb / Path(rel).name)
    data = tmp_path_factory.mktemp("data")
    c = Container(make_settings(data, embeddings={"provider": "hash"}))
    assert build_ingestor(c).sync(kb).ok
    c.index.close()
    return data


def test_kefu_serve_logs_json_lines_without_shopper_text(data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATA_DIR": str(data_dir),
        "KEFU_EMBEDDINGS__PROVIDER": "hash",
        "KEFU_LLM__PROVIDER": "none",
        "KEFU_SERVER__ADMIN_ENABLED": "false",
    }
    stderr = tmp_path / "stderr.log"
    kefu = Path(sys.executable).with_name("kefu")
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [str(kefu), "serve", "--port", str(port)],
            cwd=tmp_path,  # no .env from the checkout
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, proc, stderr, timeout_s=120)
            r = httpx.post(
                f"{base}/v1/chat",
                json={"message": QUESTION, "country": "MX"},
                headers={"X-Request-Id": "not an id: maria.lopez@example.com"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            streamed = httpx.post(
                f"{base}/v1/chat", json={"message": QUESTION, "stream": True}, timeout=60
            )
            assert streamed.status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = stderr.read_text(encoding="utf-8")
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert {"ts", "level", "logger", "message", "request_id"} <= line.keys()
    rid = r.headers["x-request-id"]
    assert "maria" not in rid
    mine = [line for line in lines if line["request_id"] == rid]
    [request] = [line for line in mine if line["message"] == "request"]
    assert (request["path"], request["status"], request["method"]) == ("/v1/chat", 200, "POST")
    assert request["latency_ms"] > 0
    [reply] = [line for line in mine if line["message"] == "reply"]  # logged in a worker thread
    assert reply["language"] == "es"
    stream_id = streamed.headers["x-request-id"]
    assert any(line["message"] == "reply" and line["request_id"] == stream_id for line in lines)
    # nothing the shopper typed, and no reply text, at any level
    for secret in ("maria", "Cuánto", "México", "envío"):
        assert secret not in text
