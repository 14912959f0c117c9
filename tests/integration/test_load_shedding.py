"""Load shedding through the real app: past KEFU_SERVER__MAX_PENDING_CHATS chats in progress,
or when an answer cannot start within KEFU_SERVER__MAX_CHAT_WAIT_S, a chat request gets an
immediate 503 with Retry-After and the usual JSON error body; it records nothing, leaves its
Idempotency-Key to the retry, and shows in the metrics. Once the load is gone, chats are
answered again. The answer in progress is held in the real SQLite conversation store, so the
test decides when it ends instead of timing it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from anyio import to_thread
from fastapi.testclient import TestClient

from rag.adapters.sqlite_conversations import SqliteConversations
from rag.container import Container
from rag.conversations.types import Turn
from server.app import create_app
from tests.conftest import make_settings, shipping_only_store

ASK = {"message": "How long is shipping to Mexico?", "country": "MX"}
Client = Callable[..., TestClient]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shipping_only_store(tmp_path_factory.mktemp("shedding"))


class HeldConversations(SqliteConversations):
    """The real SQLite store, whose next append waits until the test releases it: an answer
    still running."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.holding = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, session_id: str, turn: Turn, **kw: Any) -> None:
        if self.holding:
            self.holding = False
            self.entered.set()
            assert self.release.wait(30)
        super().append(session_id, turn, **kw)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[HeldConversations]:
    store = HeldConversations(tmp_path / "conversations.sqlite3")
    yield store
    store.release.set()
    store.close()


@pytest.fixture
def make_client(data: Path, held: HeldConversations, tmp_path: Path) -> Iterator[Client]:
    shutil.copytree(data, tmp_path / "data")
    opened: list[TestClient] = []

    def make(**server: Any) -> TestClient:
        settings = make_settings(
            tmp_path / "data",
            embeddings={"provider": "hash"},
            llm={"provider": "none"},
            commerce={"provider": "none"},
            server={"admin_enabled": False, "metrics": True, **server},
        )
        tc = TestClient(create_app(Container(settings, conversations=held)))
        opened.append(tc.__enter__())
        return tc

    yield make
    held.release.set()
    for tc in opened:
        tc.__exit__(None, None, None)


def turns(tc: TestClient, session: tuple[str, str]) -> list[str]:
    r = tc.get(f"/v1/sessions/{session[0]}", headers={"X-Session-Token": session[1]})
    assert r.status_code == 200, r.text
    return [t["role"] for t in r.json()["turns"]]


def shed_count(tc: TestClient, reason: str) -> float:
    metrics = tc.get("/metrics").text
    line = f'kefu_chats_shed_total{{reason="{reason}"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def assert_shed(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["error"] == "overloaded"
    assert "busy" in body["message"]
    assert body["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_past_the_limit_a_chat_is_refused_at_once_and_records_nothing(
    make_client: Client, held: HeldConversations, stream: bool
) -> None:
    tc = make_client(max_pending_chats=1)
    first = tc.post("/v1/chat", json=ASK)
    assert first.status_code == 200, first.text
    session = (first.json()["session_id"], first.json()["session_token"])
    conversations = held.stats()["conversations"]

    held.holding = True
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(tc.post, "/v1/chat", json=ASK)
        assert held.entered.wait(30)
        # the same shopper again, in their session, with a key for the retry
        again = ASK | {"session_id": session[0], "stream": stream}
        headers = {"X-Session-Token": session[1], "Idempotency-Key": "shed-then-retried"}
        shed = tc.post("/v1/chat", json=again, headers=headers)
        held.release.set()
        answered = busy.result(timeout=30)

    assert_shed(shed)
    assert answered.status_code == 200, answered.text
    assert shed_count(tc, "queue_full") == 1
    # nothing recorded for the refused message: one new conversation (the answered one)
    assert turns(tc, session) == ["user", "assistant"]
    assert held.stats()["conversations"] == conversations + 1

    # the load is gone: the retry, with the same key, is answered and recorded
    retry = tc.post("/v1/chat", json=again, headers=headers)
    assert retry.status_code == 200, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert turns(tc, session) == ["user", "assistant", "user", "assistant"]
    assert shed_count(tc, "queue_full") == 1


def test_a_chat_that_cannot_start_in_time_is_refused(
    make_client: Client, held: HeldConversations
) -> None:
    """No queue limit, a 0.5 s wait limit, one thread: the thread is busy with an answer, so the
    next chat cannot start and is refused when its wait is up, not when the answer ends."""
    tc = make_client(max_pending_chats=0, max_chat_wait_s=0.5)

    async def one_thread() -> None:
        to_thread.current_default_thread_limiter().total_tokens = 1

    assert tc.portal is not None
    tc.portal.call(one_thread)
    conversations = held.stats()["conversations"]

    held.holding = True
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(tc.post, "/v1/chat", json=ASK)
        assert held.entered.wait(30)
        shed = tc.post("/v1/chat", json=ASK | {"message": "Do you ship to Chile?"})
        still_running = not busy.done()
        held.release.set()
        answered = busy.result(timeout=30)

    assert_shed(shed)
    assert still_running  # refused while the answer ahead of it was still running
    assert answered.status_code == 200, answered.text
    assert shed_count(tc, "waited_too_long") == 1
    assert held.stats()["conversations"] == conversations + 1
    after = tc.post("/v1/chat", json=ASK | {"stream": True})
    assert after.status_code == 200
    assert "event: done" in after.text


def test_a_limit_of_0_sheds_nothing(make_client: Client, held: HeldConversations) -> None:
    """0 switches both limits off: a chat beside a running answer is answered."""
    tc = make_client(max_pending_chats=0, max_chat_wait_s=0)
    held.holding = True
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(tc.post, "/v1/chat", json=ASK)
        assert held.entered.wait(30)
        beside = tc.post("/v1/chat", json=ASK)
        held.release.set()
        answered = busy.result(timeout=30)
    assert (beside.status_code, answered.status_code) == (200, 200)
    assert shed_count(tc, "queue_full") + shed_count(tc, "waited_too_long") == 0
