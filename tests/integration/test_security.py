"""The HTTP surface as an attacker or a careless operator meets it (issue #14): store names that
try to leave the data folder, forged client addresses, chunked bodies past the limit, weak and
guessed keys, unbounded locales, client-chosen session ids, missing security headers, readiness
that lies, and errors without a status.

A small store ingested with the deterministic hash embedder and no LLM, so apps start in a
second; live-server tests run the app under uvicorn on a loopback port with the options
`kefu serve` passes."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import logging
import select
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import rag.errors
from kefu.serve import proxy_options
from rag.container import Container
from rag.errors import ConfigError, InvalidInput, KefuError
from rag.lang.frames import languages
from server import errors
from server.app import create_app
from tests.conftest import SAMPLE_STORE, make_settings

KEY = "kefu-test-admin-key-4f9c2a7e81d35b60"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOC = "envios-mexico.md"
BAD_STORES = [
    "../../other/stores/shopB",
    "..%2F..%2Fx",
    "..",
    "/etc",
    "/tmp/kefu-evil-store",
    "C:\\evil",
    "Default",
    "ｄｅｆａｕｌｔ",  # fullwidth letters
    "defau\u0142t",
    "default\n",
    "a" * 65,
]


def ingest(data: Path, store: str = "default") -> None:
    from ingest.service import build_ingestor

    kb = data.parent / f"kb-{store}"
    kb.mkdir(exist_ok=True)
    shutil.copy(SAMPLE_STORE / "docs" / "es" / DOC, kb / DOC)
    c = Container(make_settings(data, embeddings={"provider": "hash"}), store=store)
    assert build_ingestor(c).sync(kb).ok
    c.index.close()


def settings_for(data: Path, **server: Any) -> Any:
    return make_settings(
        data,
        embeddings={"provider": "hash"},
        llm={"provider": "none"},
        commerce={"provider": "none"},
        server={"admin_api_key": KEY, **server},
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("security")
    ingest(root / "data")
    ingest(root / "data", "shop-b")
    return root / "data"


@pytest.fixture(scope="module")
def client(data: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Container(settings_for(data)))) as tc:
        yield tc


def new_session(client: TestClient, **body: Any) -> tuple[str, dict[str, str]]:
    r = client.post("/v1/chat", json={"message": "hola", **body})
    assert r.status_code == 200, r.text
    return r.json()["session_id"], {"X-Session-Token": r.json()["session_token"]}


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- 1. store names ---------------------------------------------------------------------------


def test_store_names_that_leave_the_data_folder_are_refused_everywhere(
    client: TestClient, data: Path
) -> None:
    sid, token = new_session(client)
    root = data.parent
    before = tree(root)
    for bad in BAD_STORES:
        q = {"store": bad}
        calls = [
            client.post("/v1/chat", json={"message": "hola", "store": bad}),
            client.get(f"/v1/documents/{DOC}", params=q),
            client.get(f"/v1/sessions/{sid}", params=q, headers=token),
            client.post(
                f"/v1/sessions/{sid}/feedback", params=q, json={"rating": "up"}, headers=token
            ),
            client.get("/v1/handoffs", params=q, headers=AUTH),
            client.post("/v1/handoffs/1/claim", params=q, json={"agent": "a"}, headers=AUTH),
            client.post("/v1/handoffs/1/resolve", params=q, headers=AUTH),
            client.post("/v1/handoffs/1/reply", params=q, json={"message": "x"}, headers=AUTH),
            client.delete("/v1/customers/c1", params=q, headers=AUTH),
            client.get("/v1/admin/stats", params=q, headers=AUTH),
        ]
        for r in calls:
            assert r.status_code == 422, (bad, r.request.url, r.status_code, r.text)
            assert r.json()["error"] in {"invalid_input", "invalid_request"}
    assert tree(root) == before, "a refused store name created files"
    assert not Path("/tmp/kefu-evil-store").exists()
    # the traversal spelled into the path itself reaches no other route
    r = client.get("/v1/documents/..%2F..%2Fshop-b%2Fx")
    assert r.status_code == 404


def test_only_the_stores_the_server_serves(data: Path) -> None:
    with TestClient(create_app(Container(settings_for(data)))) as tc:
        assert tc.get(f"/v1/documents/{DOC}").status_code == 200
        other = tc.get(f"/v1/documents/{DOC}", params={"store": "shop-b"})
        assert other.status_code == 404  # exists on disk, but not served here
        assert other.json()["error"] == "not_found"
        chat = tc.post("/v1/chat", json={"message": "hola", "store": "shop-b"})
        assert chat.status_code == 404
    with TestClient(create_app(Container(settings_for(data, stores=["shop-b"])))) as tc:
        assert tc.get(f"/v1/documents/{DOC}", params={"store": "shop-b"}).status_code == 200
        assert tc.get(f"/v1/documents/{DOC}", params={"store": "nope"}).status_code == 404
    assert not (data / "stores" / "nope").exists()


def test_store_names_in_settings_and_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="store name"):
        make_settings(tmp_path, store="../x")
    with pytest.raises(ConfigError, match="store name"):
        make_settings(tmp_path, server={"stores": ["/etc"]})
    with pytest.raises(InvalidInput):
        Container(make_settings(tmp_path), store="../../x")
    from kefu.cli import app

    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "data"))
    for bad in ("../../x", "/tmp/kefu-evil-store"):
        r = CliRunner().invoke(app, ["ingest", "list", "--store", bad])
        assert r.exit_code != 0
        assert "store name" in r.output
        assert "Traceback" not in r.output
    assert not (tmp_path / "x").exists()
    assert not Path("/tmp/kefu-evil-store").exists()


# -- 2. the client address behind proxies ------------------------------------------------------


class LiveServer:
    """The app under uvicorn on a loopback port, configured as `kefu serve` configures it."""

    def __init__(self, settings: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(Container(settings)),
            log_level="warning",
            access_log=False,
            **proxy_options(settings.server),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def test_forwarded_for_from_loopback_does_not_reset_the_ip_limit(data: Path) -> None:
    import httpx

    with LiveServer(settings_for(data, rate_per_ip=3)) as base:
        codes = [
            httpx.post(
                f"{base}/v1/chat",
                json={"message": "hola"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
                timeout=30,
            ).status_code
            for i in range(5)
        ]
    assert codes == [200, 200, 200, 429, 429]


def test_forwarded_for_counts_from_a_configured_proxy(data: Path) -> None:
    import httpx

    settings = settings_for(data, rate_per_ip=2, trusted_proxies=["127.0.0.1"])
    with LiveServer(settings) as base:
        codes = [
            httpx.post(
                f"{base}/v1/chat",
                json={"message": "hola"},
                headers={"X-Forwarded-For": f"203.0.113.{i % 3}"},
                timeout=30,
            ).status_code
            for i in range(6)
        ]
    assert codes == [200] * 6  # three shoppers behind the proxy, two messages each


# -- 3. body limits on the bytes received ------------------------------------------------------


def test_chunked_body_over_the_limit_is_refused_without_reading_it_all(data: Path) -> None:
    """A body without Content-Length, sent in chunks for ever: the server answers 413 once the
    limit is passed, while the client is still sending (it stopped reading)."""
    with LiveServer(settings_for(data)) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(
                b"POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b'{"message": "' + b"x" * 16_000
            frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            sent, answer, cap = 0, b"", 64 * 1024 * 1024
            s.setblocking(False)
            deadline = time.monotonic() + 60
            while sent < cap and time.monotonic() < deadline:
                readable, writable, _ = select.select([s], [s], [], 1)
                if readable:
                    try:
                        answer += s.recv(65536)
                    except ConnectionResetError:
                        break
                    if b"\r\n\r\n" in answer:
                        break
                if writable:
                    try:
                        sent += s.send(frame)
                    except (BrokenPipeError, ConnectionResetError):
                        break
            s.setblocking(True)
            try:
                while b"}" not in answer.split(b"\r\n\r\n", 1)[-1]:
                    more = s.recv(65536)
                    if not more:
                        break
                    answer += more
            except ConnectionResetError:
                pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < cap, "the server read the whole endless body"
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body[body.index(b"{") : body.rindex(b"}") + 1])["error"] == "too_large"


def test_body_limits_without_a_content_length(client: TestClient, data: Path) -> None:
    def endless() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(100):
            yield b"y" * 10_000
        yield b'"}'

    r = client.post("/v1/chat", content=endless(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    small = client.post("/v1/chat", json={"message": "hola"})
    assert small.status_code == 200
    # uploads have their own limit, counted the same way
    with TestClient(create_app(Container(settings_for(data, max_upload_bytes=2000)))) as tc:
        doc = ("big.md", b"# Big\n" + b"z " * 5000, "text/markdown")
        up = tc.post("/v1/admin/ingest", files=[("files", doc)], headers=AUTH)
        assert up.status_code == 413
        assert up.json()["error"] == "too_large"
        ok = tc.post(
            "/v1/admin/ingest", files=[("files", ("s.md", b"# S\nsmall", "text/md"))], headers=AUTH
        )
        assert ok.status_code == 202


# -- 4. keys -----------------------------------------------------------------------------------


def test_weak_admin_keys_stop_the_server(tmp_path: Path) -> None:
    for key in ("x", "CHANGE-ME", "change-me", "a" * 64, "example-key-" + "0123456789abcdef" * 2):
        with pytest.raises(ConfigError, match="KEFU_SERVER__ADMIN_API_KEY"):
            create_app(settings=settings_for(tmp_path, admin_api_key=key))
    create_app(settings=settings_for(tmp_path))
    create_app(settings=settings_for(tmp_path, admin_enabled=False, admin_api_key="x"))
    with pytest.raises(ConfigError, match="KEFU_SERVER__ADMIN_API_KEY"):  # /metrics needs it
        create_app(
            settings=settings_for(
                tmp_path, admin_enabled=False, metrics_auth=True, admin_api_key="x"
            )
        )


def test_wrong_keys_are_rate_limited_per_client(data: Path) -> None:
    settings = settings_for(data, public_key="pk_live_0123456789")
    with TestClient(create_app(Container(settings))) as tc:
        codes = [
            tc.get("/v1/admin/stats", headers={"Authorization": f"Bearer guess-{i}"}).status_code
            for i in range(1200)
        ]
        assert codes.count(401) < 20
        assert codes[-1] == 429
        r = tc.get("/v1/admin/stats", headers=AUTH)  # locked out, even with the right key
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["error"] == "rate_limited"
        # the public key shares the count: this address is still over it
        assert tc.post("/v1/chat", json={"message": "hola"}).status_code == 429
    with TestClient(create_app(Container(settings))) as tc:
        wrong = {"X-Kefu-Key": "nope"}
        codes = [
            tc.post("/v1/chat", json={"message": "x"}, headers=wrong).status_code for _ in range(30)
        ]
        assert 429 in codes
        assert codes.count(401) < 20


# -- 5. locale and bounded labels ----------------------------------------------------------------


def test_locale_must_be_a_known_language_tag(client: TestClient) -> None:
    for good in ("es-MX", "zh-Hant-TW", "pt_BR", "ar"):
        r = client.post("/v1/chat", json={"message": "hola", "locale": good})
        assert r.status_code == 200, (good, r.text)
    for bad in ("<script>x", "xx-YY", "en-US-x-evil", "e", "english", "es-MX\n", "qq"):
        r = client.post("/v1/chat", json={"message": "hola", "locale": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"] == "invalid_request"


def test_metric_labels_and_stats_keys_come_from_a_fixed_set(data: Path) -> None:
    from server.metrics import bounded_counts, language_label

    assert language_label("es") == "es"
    assert language_label("<script>x") == "other"
    assert bounded_counts({"es": 2, "<b>": 1, "zz": 4}) == {"es": 2, "other": 5}
    with TestClient(create_app(Container(settings_for(data, mode="development")))) as tc:
        for text in ("hola, ¿cuánto tarda el envío?", "xqzt vvbn", "ok"):
            tc.post("/v1/chat", json={"message": text})
        known = {*languages(), "other"}
        for line in tc.get("/metrics").text.splitlines():
            if line.startswith("kefu_replies_total{"):
                label = line.split('language="', 1)[1].split('"', 1)[0]
                assert label in known, line
        stats = tc.get("/v1/admin/stats", headers=AUTH).json()
        assert set(stats["by_language"]) <= known
        assert set(stats["documents_by_language"]) <= known


# -- 6. server-issued sessions -----------------------------------------------------------------


def test_sessions_are_issued_by_the_server_and_need_their_token(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": "hola", "session_id": "1"})
    sid, token = r.json()["session_id"], {"X-Session-Token": r.json()["session_token"]}
    assert sid != "1"
    assert len(sid) >= 20
    assert client.get("/v1/sessions/1").status_code == 404
    # continuing needs the token: without it, the id is ignored and a new session starts
    cont = client.post("/v1/chat", json={"message": "otra", "session_id": sid}, headers=token)
    assert cont.json()["session_id"] == sid
    stolen = client.post("/v1/chat", json={"message": "otra", "session_id": sid})
    assert stolen.json()["session_id"] != sid
    # transcript and feedback: the token, else the session "does not exist"
    assert client.get(f"/v1/sessions/{sid}", headers=token).status_code == 200
    other_sid, other_token = new_session(client)
    for headers in ({}, {"X-Session-Token": "forged"}, other_token):
        got = client.get(f"/v1/sessions/{sid}", headers=headers)
        assert got.status_code == 404
        assert got.json() == client.get("/v1/sessions/no-such-session").json() | {
            "request_id": got.json()["request_id"]
        }
        fb = client.post(f"/v1/sessions/{sid}/feedback", json={"rating": "up"}, headers=headers)
        assert fb.status_code == 404
    turns = client.get(f"/v1/sessions/{sid}", headers=token).json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert other_sid != sid


def test_streamed_replies_carry_the_session_token(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": "hola", "stream": True})
    done = json.loads(r.text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert done["session_token"] == r.headers["x-session-token"]
    got = client.get(
        f"/v1/sessions/{done['session_id']}", headers={"X-Session-Token": done["session_token"]}
    )
    assert got.status_code == 200


# -- 7. headers and what production exposes ------------------------------------------------------


def test_security_headers_on_every_response(client: TestClient) -> None:
    responses = {
        "chat": client.post("/v1/chat", json={"message": "hola"}),
        "invalid": client.post("/v1/chat", json={}),
        "missing": client.get("/v1/nothing-here"),
        "document": client.get(f"/v1/documents/{DOC}"),
        "demo": client.get("/demo"),
        "widget": client.get("/widget.js"),
        "health": client.get("/healthz"),
    }
    for name, r in responses.items():
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["referrer-policy"] == "no-referrer", name
        if name != "widget":
            assert r.headers["x-frame-options"] == "DENY", name
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], name
    demo = responses["demo"].headers["content-security-policy"]
    assert "script-src 'self'" in demo
    assert "connect-src 'self'" in demo
    assert "default-src 'none'" in responses["chat"].headers["content-security-policy"]
    assert "sandbox" in responses["document"].headers["content-security-policy"]
    assert responses["widget"].headers["cross-origin-resource-policy"] == "cross-origin"


def test_docs_and_metrics_are_off_in_production(data: Path) -> None:
    with TestClient(create_app(Container(settings_for(data)))) as tc:
        for path in ("/docs", "/openapi.json", "/metrics", "/redoc"):
            r = tc.get(path)
            assert r.status_code == 404, path
            assert r.json()["error"] == "not_found"
    with TestClient(create_app(Container(settings_for(data, mode="development")))) as tc:
        assert tc.get("/docs").status_code == 200
        assert tc.get("/openapi.json").json()["info"]["title"] == "kefu"
        assert "kefu_http_requests_total" in tc.get("/metrics").text
    locked = settings_for(data, metrics=True, metrics_auth=True)
    with TestClient(create_app(Container(locked))) as tc:
        assert tc.get("/metrics").status_code == 401
        assert tc.get("/metrics", headers=AUTH).status_code == 200
        assert tc.get("/docs").status_code == 404


# -- 8. readiness ------------------------------------------------------------------------------


@pytest.mark.parametrize("lose", ["manifest", "chroma"])
def test_readyz_says_what_is_missing(
    tmp_path: Path, lose: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    ingest(data)
    with TestClient(create_app(Container(settings_for(data)))) as tc:
        ready = tc.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["problems"] == []
    gen = data / "stores" / "default" / "gen-0"
    if lose == "manifest":
        for f in gen.glob("manifest.sqlite3*"):
            f.unlink()
    else:
        shutil.rmtree(gen / "chroma")
    app = create_app(Container(settings_for(data)))
    with caplog.at_level(logging.WARNING, logger="server.app"), TestClient(app) as tc:
        r = tc.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False
    reasons = " ".join(body["problems"])
    assert ("manifest" if lose == "manifest" else "Chroma") in reasons
    if lose == "manifest":  # the vectors are still there: they disagree with the manifest
        assert "inconsistent" in reasons
    assert any("not ready" in rec.getMessage() for rec in caplog.records)


def test_readyz_reports_a_missing_order_store(data: Path, tmp_path: Path) -> None:
    settings = settings_for(data).model_copy(deep=True)
    settings.commerce.provider = "sqlite"
    settings.commerce.sqlite_path = tmp_path / "orders.sqlite3"
    with TestClient(create_app(Container(settings))) as tc:
        r = tc.get("/readyz")
    assert r.status_code == 503
    assert "KEFU_COMMERCE__SQLITE_PATH" in " ".join(r.json()["problems"])


# -- 10. every error has a status ----------------------------------------------------------------


ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rag", "ingest", "server", "evals", "kefu")


def declared_kefu_errors() -> list[type[KefuError]]:
    """Every subclass of KefuError defined in a source file of kefu's packages, found by reading
    the files (an error defined in a module nothing imported yet is found too), then imported."""
    found: dict[str, str] = {}  # class name -> module
    classes: list[tuple[str, str, list[str]]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                    classes.append((node.name, module.removesuffix(".__init__"), bases))
    known = {"KefuError"}
    while True:  # the closure over base names
        new = {(n, m) for n, m, bases in classes if n not in known and known & set(bases)}
        if not new:
            break
        for name, module in new:
            known.add(name)
            found[name] = module
    return [getattr(importlib.import_module(m), n) for n, m in sorted(found.items())]


def test_every_kefu_error_has_a_non_500_json_status() -> None:
    found = declared_kefu_errors()
    names = {c.__name__ for c in found}
    # the walk reaches errors raised from adapters, ingest and the evals, not only rag/errors.py
    assert {"ConnectorUnavailable", "EmbeddingModelMismatch", "UnreadableFile", "EvalError"} <= (
        names
    )
    assert set(found) >= {
        obj
        for _, obj in inspect.getmembers(rag.errors, inspect.isclass)
        if issubclass(obj, KefuError) and obj is not KefuError
    }
    app = FastAPI()
    errors.install(app)

    @app.get("/raise/{name}")
    async def boom(name: str) -> None:
        raise next(c for c in found if c.__name__ == name)("what went wrong")

    with TestClient(app) as tc:
        for cls in found:
            r = tc.get(f"/raise/{cls.__name__}")
            assert 400 <= r.status_code < 500 or r.status_code == 503, (cls, r.status_code)
            assert r.json()["message"] == "what went wrong"
            assert r.json()["error"] != "internal_error"
    statuses = {cls.__name__: errors.status_of(cls("x")) for cls in found}
    assert statuses["ConnectorUnavailable"] == (503, "connector_unavailable")
    assert statuses["EmbeddingModelMismatch"] == (503, "embedding_model_mismatch")
    assert statuses["NotFound"] == (404, "not_found")
