"""The HTTP API through TestClient(create_app(container)): JSON and SSE chat, auth, CORS,
limits, errors, the handoff lifecycle, erasure, admin ingestion, health and metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.adapters.llm_openai import OpenAIChatModel
from rag.container import Container
from rag.errors import ConfigError
from rag.lang.frames import frame
from server.app import create_app
from tests.conftest import make_settings
from tests.doubles.openai_server import OpenAICompatibleServer
from tests.doubles.translator import faithful, queued, shown

KEY = "kefu-test-admin-key-4f9c2a7e81d35b60"
AUTH = {"Authorization": f"Bearer {KEY}"}


def server_settings(data_dir: Path, **server: Any) -> Any:
    return make_settings(
        data_dir,
        llm={"provider": "none"},
        server={
            "admin_api_key": KEY,
            "cors_origins": ["https://shop.example"],
            "mode": "development",
            **server,
        },
    )


@pytest.fixture(scope="module")
def llm_server() -> Iterator[tuple[OpenAICompatibleServer, list[Any]]]:
    """Replies in order: a string, or a function of the request's messages."""
    replies: list[Any] = []
    with OpenAICompatibleServer(queued(replies, empty="Sorry.")) as s:
        yield s, replies


@pytest.fixture(scope="module")
def client(
    sample_container: Container, llm_server: tuple[OpenAICompatibleServer, list[Any]]
) -> Iterator[TestClient]:
    server, _ = llm_server
    settings = server_settings(sample_container.settings.data_dir)
    llm = OpenAIChatModel(
        model="hosted",
        api_key="test-key",
        base_url=server.base_url,
        timeout_s=20,
        counter=sample_container.tokens,
    )
    c = Container(settings, embedder=sample_container.embedder, llm=llm)
    with TestClient(create_app(c)) as tc:
        yield tc


def sse_events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_chat_json(
    client: TestClient, llm_server: tuple[OpenAICompatibleServer, list[Any]]
) -> None:
    server, _ = llm_server
    seen = len(server.requests)
    r = client.post(
        "/v1/chat", json={"message": "¿Cuánto tarda el envío estándar a México?", "country": "MX"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "es"
    # the Spanish policy for Mexico answers a Spanish question as it is: no model call
    assert body["mode"] == "facts", body["reply"]
    assert body["reply"].startswith(frame("es", "extractive_intro"))
    assert "10–18" in body["reply"]
    assert len(server.requests) == seen
    assert body["sources"][0]["doc_id"] == "docs/es/envios-mexico.md"
    assert body["facts"][0]["doc_id"] == "docs/es/envios-mexico.md"
    assert body["session_id"]
    assert r.headers["x-request-id"]


def test_chat_streams_server_sent_events(
    client: TestClient, llm_server: tuple[OpenAICompatibleServer, list[Any]]
) -> None:
    server, replies = llm_server
    replies.append(faithful)  # the English policy, translated for a French shopper
    r = client.post(
        "/v1/chat",
        json={
            "message": "Combien de temps prend la livraison standard au Canada ?",
            "stream": True,
        },
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert kinds.count("token") > 3
    assert kinds[-3:] == ["sources", "escalation", "done"]
    text = "".join(d["text"] for k, d in events if k == "token")
    done = events[-1][1]
    assert done["mode"] == "llm", done["reply"]
    # the translation as it came, its placeholders restored to the facts' figures
    assert shown(faithful(server.requests[-1]["messages"]), text, whole=True)
    # what the widget ends with: the streamed text, or its replacement (with the source line)
    replaced = [d["text"] for k, d in events if k == "replace"]
    assert (replaced[-1] if replaced else text) == done["reply"]
    assert done["reply"].startswith(text)
    assert done["prompt_version"] == "answer@3"
    assert "total" in done["timings_ms"]


def test_accept_header_also_selects_streaming(client: TestClient) -> None:
    r = client.post(
        "/v1/chat",
        json={"message": "What is the capital of Mongolia?"},
        headers={"Accept": "text/event-stream"},
    )
    kinds = [k for k, _ in sse_events(r.text)]
    assert kinds == ["token", "sources", "escalation", "done"]


def session_of(reply: Any) -> tuple[str, dict[str, str]]:
    """The server-issued session id of a reply, and the header that continues it."""
    body = reply.json()
    assert reply.headers["x-session-token"] == body["session_token"]
    return body["session_id"], {"X-Session-Token": body["session_token"]}


def test_transcript_and_feedback(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": "What is the capital of Mongolia?"})
    assert r.status_code == 200
    sid, token = session_of(r)
    t = client.get(f"/v1/sessions/{sid}", headers=token).json()
    assert [x["role"] for x in t["turns"]] == ["user", "assistant"]
    fb = client.post(f"/v1/sessions/{sid}/feedback", json={"rating": "down"}, headers=token)
    assert fb.status_code == 204
    assert client.post("/v1/sessions/nope/feedback", json={"rating": "up"}).status_code == 404
    stats = client.get("/v1/admin/stats", headers=AUTH).json()
    assert stats["feedback"].get("down", 0) >= 1
    assert stats["documents"] > 20


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/handoffs"),
        ("get", "/v1/admin/stats"),
        ("delete", "/v1/customers/x"),
        ("post", "/v1/handoffs/1/resolve"),
    ],
)
def test_agent_endpoints_need_the_key(client: TestClient, method: str, path: str) -> None:
    r = getattr(client, method)(path)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    wrong = getattr(client, method)(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_cors_allows_only_listed_origins(client: TestClient) -> None:
    pre = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    ok = client.options("/v1/chat", headers={"Origin": "https://shop.example", **pre})
    assert ok.headers.get("access-control-allow-origin") == "https://shop.example"
    bad = client.options("/v1/chat", headers={"Origin": "https://evil.example", **pre})
    assert "access-control-allow-origin" not in bad.headers


def test_limits_and_malformed_requests(client: TestClient) -> None:
    long = client.post("/v1/chat", json={"message": "x" * 2001})
    assert long.status_code == 413
    assert long.json()["error"] == "too_large"
    huge = client.post(
        "/v1/chat",
        content=b'{"message": "' + b"y" * 70000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    bad = client.post(
        "/v1/chat", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"
    empty = client.post("/v1/chat", json={"message": ""})
    assert empty.status_code == 422
    for r in (long, huge, bad, empty):
        assert "Traceback" not in r.text


def test_rate_limit_per_session(sample_container: Container, tmp_path: Path) -> None:
    settings = server_settings(sample_container.settings.data_dir, rate_per_session=2)
    c = Container(settings, embedder=sample_container.embedder)
    with TestClient(create_app(c)) as tc:
        sid, token = session_of(tc.post("/v1/chat", json={"message": "hola"}))
        again = {"message": "hola", "session_id": sid}
        codes = [tc.post("/v1/chat", json=again, headers=token).status_code for _ in range(2)]
        assert codes == [200, 429]
        r = tc.post("/v1/chat", json=again, headers=token)
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["error"] == "rate_limited"


def test_public_key_is_required_when_configured(sample_container: Container) -> None:
    settings = server_settings(sample_container.settings.data_dir, public_key="pk_live_1")
    c = Container(settings, embedder=sample_container.embedder)
    with TestClient(create_app(c)) as tc:
        assert tc.post("/v1/chat", json={"message": "hi"}).status_code == 401
        ok = tc.post("/v1/chat", json={"message": "hi"}, headers={"X-Kefu-Key": "pk_live_1"})
        assert ok.status_code == 200


def test_refuses_to_start_with_the_example_admin_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KEFU_SERVER__ADMIN_API_KEY"):
        create_app(settings=make_settings(tmp_path, llm={"provider": "none"}))
    weak = ("x", "CHANGE-ME", "x" * 40, "change-me-please-to-something-long-and-random", KEY[:31])
    for key in weak:
        with pytest.raises(ConfigError, match="KEFU_SERVER__ADMIN_API_KEY"):
            create_app(settings=server_settings(tmp_path, admin_api_key=key))
    create_app(
        settings=make_settings(tmp_path, llm={"provider": "none"}, server={"admin_enabled": False})
    )


def test_handoff_lifecycle_over_http(
    client: TestClient, llm_server: tuple[OpenAICompatibleServer, list[Any]]
) -> None:
    server, _ = llm_server
    first = client.post(
        "/v1/chat",
        json={"message": "quiero hablar con una persona real", "customer_id": "cust-http"},
    )
    sid, token = session_of(first)
    r = first.json()
    assert r["escalation"]["escalate"] is True
    assert r["escalation"]["reason"] == "human_request"
    queue = client.get("/v1/handoffs", headers=AUTH).json()
    [h] = [x for x in queue if x["session_id"] == sid]
    claimed = client.post(f"/v1/handoffs/{h['id']}/claim", json={"agent": "ana"}, headers=AUTH)
    assert claimed.json()["status"] == "claimed"
    sent = client.post(
        f"/v1/handoffs/{h['id']}/reply",
        json={"message": "Hola, soy Ana. ¿En qué puedo ayudarle?", "agent": "ana"},
        headers=AUTH,
    )
    assert sent.status_code == 201
    transcript = client.get(f"/v1/sessions/{sid}", headers=token).json()
    assert transcript["turns"][-1]["role"] == "agent"
    assert transcript["handoff"]["status"] == "claimed"
    pending = client.post(
        "/v1/chat", json={"message": "¿sigue ahí?", "session_id": sid}, headers=token
    ).json()
    assert pending["mode"] == "handoff_pending"
    assert pending["reply"] == frame("es", "handoff_pending")
    client.post(f"/v1/handoffs/{h['id']}/resolve", headers=AUTH)
    seen = len(server.requests)
    back = client.post(
        "/v1/chat",
        json={"message": "¿Cuánto tarda el envío estándar a México?", "session_id": sid},
        headers=token,
    ).json()
    assert back["mode"] == "facts", back["reply"]  # answered again: the Spanish policy quoted
    assert "10–18" in back["reply"]
    assert len(server.requests) == seen
    assert back["escalation"]["escalate"] is False
    receipt = client.delete("/v1/customers/cust-http", headers=AUTH).json()
    assert receipt["deleted"]["sessions"] == 1
    assert receipt["deleted"]["handoffs"] == 1
    assert client.get(f"/v1/sessions/{sid}", headers=token).status_code == 404


def test_admin_ingest_upload_job(client: TestClient) -> None:
    doc = b"---\ntitle: Pet policy\ndoc_type: other\n---\nWe cannot ship live animals or plants.\n"
    r = client.post(
        "/v1/admin/ingest", files=[("files", ("pets.md", doc, "text/markdown"))], headers=AUTH
    )
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()
        if status["status"] in {"done", "failed"}:
            break
        time.sleep(0.2)
    assert status["status"] == "done", status
    assert status["result"]["added"] == ["pets.md"]
    doc_text = client.get("/v1/documents/pets.md").text
    assert "live animals" in doc_text
    assert client.post("/v1/admin/ingest", headers=AUTH).status_code == 422  # nothing to do
    assert client.get("/v1/admin/jobs/nope", headers=AUTH).status_code == 404


def test_health_ready_metrics_docs_widget(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True
    assert ready["embedder"] == "embeddinggemma-300m"
    metrics = client.get("/metrics").text
    assert "kefu_http_requests_total" in metrics
    assert "kefu_replies_total" in metrics
    assert client.get("/openapi.json").json()["info"]["title"] == "kefu"
    js = client.get("/widget.js")
    assert js.headers["content-type"].startswith("application/javascript")
    assert "EventSource" in js.text or "text/event-stream" in js.text
    assert '<script src="/widget.js"' in client.get("/demo").text


def test_store_going_down_gives_a_503_json(sample_container: Container, tmp_path: Path) -> None:
    from ingest.service import build_ingestor
    from tests.conftest import SAMPLE_STORE
    from tests.doubles.chroma_server import chroma_server

    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "uk.md").write_text((SAMPLE_STORE / "docs/customs/uk.md").read_text(), "utf-8")
    with chroma_server(tmp_path / "chroma") as (port, proc):
        settings = make_settings(
            tmp_path / "data",
            llm={"provider": "none"},
            server={"admin_api_key": KEY},
            chroma={"mode": "http", "port": port},
        )
        c = Container(settings, embedder=sample_container.embedder)
        build_ingestor(c).sync(kb)
        with TestClient(create_app(c)) as tc:
            assert tc.post("/v1/chat", json={"message": "UK VAT?"}).status_code == 200
            proc.terminate()
            proc.wait(timeout=20)
            r = tc.post("/v1/chat", json={"message": "Do I pay VAT in the UK?"})
            assert r.status_code == 503
            assert r.json()["error"] == "store_unavailable"
            assert "Traceback" not in r.text
            assert tc.get("/readyz").status_code == 503
