"""Idempotency-Key on the POSTs clients retry, through the real app: a retried chat message or
agent reply gets the first response again and is recorded once; the same key for another
request is a 422, for a request still running a 409; without a key nothing changes. With
KEFU_DATABASE__URL the keys hold across workers (two app instances on one real PostgreSQL)."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
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
ADMIN_KEY = "kefu-idempotency-test-admin-key-7d4e1b9a2c6f8035"
AGENT = {"Authorization": f"Bearer {ADMIN_KEY}"}
ASK = {"message": "How long is shipping to Mexico?", "country": "MX"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shipping_only_store(tmp_path_factory.mktemp("idempotency"))


def settings_for(data: Path, dsn: str | None = None, **server: Any) -> Any:
    return make_settings(
        data,
        embeddings={"provider": "hash"},
        llm={"provider": "none"},
        commerce={"provider": "none"},
        database={"url": dsn} if dsn else {},
        server={"session_secret": SECRET, "admin_api_key": ADMIN_KEY, **server},
    )


class HeldConversations(SqliteConversations):
    """The real SQLite store, whose next append can be held (a slow answer still running) or
    fail (the database went away mid-request)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.holding = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_next = False

    def append(self, session_id: str, turn: Turn, **kw: Any) -> None:
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailable("database unavailable: connection lost")
        if self.holding:
            self.holding = False
            self.entered.set()
            assert self.release.wait(30)
        super().append(session_id, turn, **kw)


@pytest.fixture
def held(tmp_path: Path) -> Any:
    store = HeldConversations(tmp_path / "conversations.sqlite3")
    yield store
    store.close()


@pytest.fixture
def client(data: Path, held: HeldConversations, tmp_path: Path) -> Any:
    # the keys in a SQLite file of this test's own
    settings = settings_for(tmp_path / "data")
    shutil.copytree(data, tmp_path / "data")
    with TestClient(create_app(Container(settings, conversations=held))) as tc:
        yield tc


def transcript(tc: TestClient, reply: Any) -> list[tuple[str, str]]:
    body = reply.json()
    r = tc.get(
        f"/v1/sessions/{body['session_id']}", headers={"X-Session-Token": body["session_token"]}
    )
    assert r.status_code == 200, r.text
    return [(t["role"], t["content"]) for t in r.json()["turns"]]


def test_a_retried_message_gets_the_same_reply_and_is_recorded_once(client: TestClient) -> None:
    key = {"Idempotency-Key": "7f9c2ba4-e88f-4a4b-9b1e-1a2b3c4d5e6f"}
    first = client.post("/v1/chat", json=ASK, headers=key)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    # the retry's JSON spelled differently: what it asks is the same
    again = client.post(
        "/v1/chat",
        content=json.dumps({"country": "MX", "message": ASK["message"]}, indent=2),
        headers=key | {"Content-Type": "application/json"},
    )
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    for header in ("x-session-id", "x-session-token"):
        assert again.headers[header] == first.headers[header]
    assert transcript(client, first) == [
        ("user", ASK["message"]),
        ("assistant", first.json()["reply"]),
    ]

    # in a session: the key is the session's
    sid, token = first.json()["session_id"], first.json()["session_token"]
    follow = {"message": "And to Spain?", "session_id": sid}
    headers = {"X-Session-Token": token, "Idempotency-Key": "follow-up-1"}
    replies = [client.post("/v1/chat", json=follow, headers=headers) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert len({r.content for r in replies}) == 1
    users = [content for role, content in transcript(client, first) if role == "user"]
    assert users == [ASK["message"], "And to Spain?"]


def test_the_same_key_for_another_message_is_refused(client: TestClient) -> None:
    key = {"Idempotency-Key": "key-for-one-message"}
    first = client.post("/v1/chat", json=ASK, headers=key)
    assert first.status_code == 200
    other = client.post("/v1/chat", json={"message": "Do you ship to Chile?"}, headers=key)
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert "different request" in other.json()["message"]
    assert [role for role, _ in transcript(client, first)] == ["user", "assistant"]


def test_a_retry_while_the_first_is_still_answered_is_a_409(
    client: TestClient, held: HeldConversations
) -> None:
    key = {"Idempotency-Key": "slow-one"}
    held.holding = True
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(client.post, "/v1/chat", json=ASK, headers=key)
        assert held.entered.wait(30)
        busy = client.post("/v1/chat", json=ASK, headers=key)
        held.release.set()
        first = slow.result(timeout=30)
    assert busy.status_code == 409
    assert busy.json()["error"] == "idempotency_key_in_flight"
    assert int(busy.headers["retry-after"]) >= 1
    assert first.status_code == 200
    done = client.post("/v1/chat", json=ASK, headers=key)
    assert (done.status_code, done.content) == (200, first.content)


def test_a_failed_request_leaves_its_key_to_the_retry(
    client: TestClient, held: HeldConversations
) -> None:
    key = {"Idempotency-Key": "fails-first"}
    held.fail_next = True
    failed = client.post("/v1/chat", json=ASK, headers=key)
    assert failed.status_code == 503
    retry = client.post("/v1/chat", json=ASK, headers=key)
    assert retry.status_code == 200
    assert "idempotent-replayed" not in retry.headers
    assert [role for role, _ in transcript(client, retry)] == ["user", "assistant"]


def test_without_a_key_every_message_is_answered(client: TestClient) -> None:
    one = client.post("/v1/chat", json=ASK)
    two = client.post("/v1/chat", json=ASK)
    assert (one.status_code, two.status_code) == (200, 200)
    assert one.json()["session_id"] != two.json()["session_id"]
    assert "idempotent-replayed" not in two.headers
    assert one.headers["x-session-id"] == one.json()["session_id"]
    assert [role for role, _ in transcript(client, two)] == ["user", "assistant"]


def test_streams_do_not_use_the_key(client: TestClient) -> None:
    key = {"Idempotency-Key": "a-stream"}
    runs = [client.post("/v1/chat", json=ASK | {"stream": True}, headers=key) for _ in range(2)]
    assert [r.headers["content-type"].split(";")[0] for r in runs] == ["text/event-stream"] * 2
    assert runs[0].headers["x-session-id"] != runs[1].headers["x-session-id"]


@pytest.mark.parametrize("bad", ["", "a" * 256, "two words", 'half"quoted'])
def test_a_malformed_key_is_a_400(client: TestClient, bad: str) -> None:
    r = client.post("/v1/chat", json=ASK, headers={"Idempotency-Key": bad})
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["message"]


def test_a_quoted_key_is_the_same_key(client: TestClient) -> None:
    """The draft writes the key as a Structured Field string: "…" and … are one key."""
    first = client.post("/v1/chat", json=ASK, headers={"Idempotency-Key": '"k-42"'})
    again = client.post("/v1/chat", json=ASK, headers={"Idempotency-Key": "k-42"})
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


def test_a_retried_agent_reply_is_delivered_once(
    client: TestClient, held: HeldConversations
) -> None:
    held.append("s-7", Turn(role="user", content="I want a person"))
    hid = held.open_handoff("s-7", reason="asked", language="en", summary="asked for a person")
    key = AGENT | {"Idempotency-Key": "agent-reply-1"}
    body = {"message": "Hi, I'm Lea. Looking into it.", "agent": "lea"}
    sent = [client.post(f"/v1/handoffs/{hid}/reply", json=body, headers=key) for _ in range(2)]
    assert [r.status_code for r in sent] == [201, 201]
    assert sent[0].json() == {"session_id": "s-7", "delivered": True}
    assert sent[1].content == sent[0].content
    assert sent[1].headers["idempotent-replayed"] == "true"
    agent_turns = [t.content for t in held.history("s-7") if t.role == "agent"]
    assert agent_turns == [body["message"]]
    # the same key for another handoff or another message is refused
    other = client.post(f"/v1/handoffs/{hid}/reply", json=body | {"message": "Done."}, headers=key)
    assert other.status_code == 422
    assert [t.content for t in held.history("s-7") if t.role == "agent"] == [body["message"]]
    # without a key, as before: each post delivers
    for _ in range(2):
        assert client.post(f"/v1/handoffs/{hid}/reply", json=body, headers=AGENT).status_code == 201
    assert len([t for t in held.history("s-7") if t.role == "agent"]) == 3


def test_a_retry_on_another_worker_gets_the_first_reply(data: Path, pg_dsn: str) -> None:
    settings = settings_for(data, pg_dsn)
    key = {"Idempotency-Key": "across-workers"}
    with (
        TestClient(create_app(Container(settings))) as one,
        TestClient(create_app(Container(settings))) as two,
    ):
        first = one.post("/v1/chat", json=ASK, headers=key)
        assert first.status_code == 200
        again = two.post("/v1/chat", json=ASK, headers=key)
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert [role for role, _ in transcript(two, first)] == ["user", "assistant"]
        other = two.post("/v1/chat", json={"message": "And to Spain?"}, headers=key)
        assert other.status_code == 422
