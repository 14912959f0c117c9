"""Shutdown closes what the server opened: the container's database pools and files (the
conversations, the order store, the idempotency keys, the knowledge index) and the rate
limits' window; `Container.close` builds nothing and may run twice."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.adapters.sqlite_conversations import SqliteConversations
from rag.container import Container
from rag.conversations.types import Turn
from rag.errors import StoreUnavailable
from server.app import create_app
from tests.conftest import make_settings, shipping_only_store

SECRET = "a-shared-session-secret-for-every-worker-0123456789"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shipping_only_store(tmp_path_factory.mktemp("close"))


def settings_for(data: Path, dsn: str | None = None, **commerce: Any) -> Any:
    return make_settings(
        data,
        embeddings={"provider": "hash"},
        llm={"provider": "none"},
        commerce={"provider": "none", **commerce},
        database={"url": dsn} if dsn else {},
        server={"session_secret": SECRET, "admin_enabled": False},
    )


def test_the_lifespan_closes_the_database_pools(data: Path, pg_dsn: str) -> None:
    c = Container(settings_for(data, pg_dsn, provider="sqlite"))
    app = create_app(c)
    with TestClient(app) as tc:
        r = tc.post("/v1/chat", json={"message": "hi"}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 200, r.text
        window = app.state.kefu.ip_limit.window
        assert c.built("conversations")
        assert c.built("commerce")
        assert c.built("idempotency")
    # every pool refuses work once the app has stopped
    with pytest.raises(StoreUnavailable):
        c.conversations.history(r.json()["session_id"])
    with pytest.raises(StoreUnavailable):
        c.commerce.get_order("1042")  # type: ignore[union-attr]
    with pytest.raises(StoreUnavailable):
        c.idempotency.begin("agents", "k-2", "fp", ttl_s=60, lease_s=60)
    with pytest.raises(StoreUnavailable):
        window.check("ip:10.0.0.1", 10)
    with pytest.raises(sqlite3.ProgrammingError):  # the knowledge manifest's file
        c.index.document_count()
    c.close()  # again: nothing more happens


def test_close_builds_nothing_and_leaves_a_given_store_open(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    given = SqliteConversations(tmp_path / "evals.sqlite3")
    c = Container(settings, conversations=given)
    c.close()
    assert not c.built("index")
    assert not c.built("idempotency")
    assert not (tmp_path / "data" / "idempotency.sqlite3").exists()
    # the caller's store is the caller's to close
    given.append("s-1", Turn(role="user", content="still open"))
    assert [t.content for t in given.history("s-1")] == ["still open"]
    given.close()


def test_the_lifespan_closes_the_sqlite_files(data: Path, tmp_path: Path) -> None:
    shutil.copytree(data, tmp_path / "data")
    c = Container(settings_for(tmp_path / "data"))
    with TestClient(create_app(c)) as tc:
        r = tc.post("/v1/chat", json={"message": "hi"}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 200
    for use in (
        lambda: c.conversations.history("s-1"),
        lambda: c.idempotency.begin("agents", "k-2", "fp", ttl_s=60, lease_s=60),
    ):
        with pytest.raises(sqlite3.ProgrammingError):
            use()
