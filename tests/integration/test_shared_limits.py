"""Several workers behind one address share the rate limits and the conversations through the
database (KEFU_DATABASE__URL): two app instances on one real PostgreSQL stand for two workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.container import Container
from server.app import create_app
from tests.conftest import make_settings, shipping_only_store

SECRET = "a-shared-session-secret-for-every-worker-0123456789"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shipping_only_store(tmp_path_factory.mktemp("shared"))


def settings_for(data: Path, dsn: str | None, **server: Any) -> Any:
    return make_settings(
        data,
        embeddings={"provider": "hash"},
        llm={"provider": "none"},
        commerce={"provider": "none"},
        database={"url": dsn} if dsn else {},
        server={"session_secret": SECRET, "admin_enabled": False, **server},
    )


def test_the_ip_limit_holds_across_workers(data: Path, pg_dsn: str) -> None:
    settings = settings_for(data, pg_dsn, rate_per_ip=4)
    with (
        TestClient(create_app(Container(settings))) as one,
        TestClient(create_app(Container(settings))) as two,
    ):
        codes = [
            (one if i % 2 else two).post("/v1/chat", json={"message": "hi"}).status_code
            for i in range(6)
        ]
        assert codes == [200, 200, 200, 200, 429, 429]
        r = one.post("/v1/chat", json={"message": "hi"})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0


def test_without_a_database_each_worker_counts_alone(data: Path) -> None:
    """The reason for the shared window: in memory, two workers allow twice the limit."""
    settings = settings_for(data, None, rate_per_ip=4)
    with (
        TestClient(create_app(Container(settings))) as one,
        TestClient(create_app(Container(settings))) as two,
    ):
        codes = [
            (one if i % 2 else two).post("/v1/chat", json={"message": "hi"}).status_code
            for i in range(8)
        ]
        assert codes == [200] * 8


def test_a_session_continues_on_another_worker(data: Path, pg_dsn: str) -> None:
    settings = settings_for(data, pg_dsn, rate_per_session=3)
    with (
        TestClient(create_app(Container(settings))) as one,
        TestClient(create_app(Container(settings))) as two,
    ):
        first = one.post("/v1/chat", json={"message": "How long is shipping to Mexico?"})
        assert first.status_code == 200
        sid, token = first.json()["session_id"], first.json()["session_token"]
        body = {"message": "And to Spain?", "session_id": sid}
        second = two.post("/v1/chat", json=body, headers={"X-Session-Token": token})
        assert second.status_code == 200
        assert second.json()["session_id"] == sid
        r = one.get(f"/v1/sessions/{sid}", headers={"X-Session-Token": token})
        assert r.status_code == 200
        turns = [t["content"] for t in r.json()["turns"] if t["role"] == "user"]
        assert turns == ["How long is shipping to Mexico?", "And to Spain?"]
        # the per-session limit counts the session's messages on both workers
        third = one.post("/v1/chat", json=body, headers={"X-Session-Token": token})
        assert third.status_code == 200
        fourth = two.post("/v1/chat", json=body, headers={"X-Session-Token": token})
        assert fourth.status_code == 429
