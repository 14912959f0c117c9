"""The composition root (issue #12): parts are supplied through the container's constructor,
the chat model is decorated through `wrap_llm` before the pipeline takes it (the server's gate
reaches every store's pipeline), and slow work (erasure against a storefront) runs off the
server's event loop.

Hash embedder and no LLM unless a test gives one: every app starts in about a second."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kefu.eval_setup import eval_container
from rag.adapters.llm_fake import ScriptedChatModel
from rag.container import Container, sqlite_conversations
from rag.conversations.store import ConversationStore, Turn
from rag.errors import ConfigError, ModelUnavailable
from rag.types import Message
from server.app import create_app
from server.llm_gate import GatedChatModel
from tests.conftest import make_settings
from tests.doubles import shopify_server
from tests.doubles.shopify_server import ShopifyServer
from tests.doubles.storefront import Reply, Seen

KEY = "kefu-test-admin-key-4f9c2a7e81d35b60"
AUTH = {"Authorization": f"Bearer {KEY}"}
ASK = [Message(role="user", content="hello")]


def light(data: Path, **overrides: Any) -> Any:
    server = {"admin_api_key": KEY, **overrides.pop("server", {})}
    parts: dict[str, Any] = {
        "embeddings": {"provider": "hash"},
        "llm": {"provider": "none"},
        "commerce": {"provider": "none"},
    }
    return make_settings(data, **(parts | overrides), server=server)


# --- parts supplied through the constructor ------------------------------------------------


def test_a_given_conversation_store_is_the_one_every_part_uses(tmp_path: Path) -> None:
    own = ConversationStore(tmp_path / "eval-conversations.sqlite3")
    c = Container(light(tmp_path / "data"), conversations=own)
    assert c.built("conversations")
    own.append("s-1", Turn(role="user", content="hi"), customer_id="C-1")
    assert c.pipeline.conversations is own
    receipt = c.erasure.erase("C-1")  # erasure reads the same store
    assert receipt["turns"] == 1
    assert own.history("s-1", 10) == []
    # the store's own conversation database was never opened (nor created)
    assert not (c.store_dir / "conversations.sqlite3").exists()
    c.index.close()
    own.close()


def test_built_reports_without_building(tmp_path: Path) -> None:
    c = Container(light(tmp_path / "data"))
    assert not c.built("pipeline")
    assert not c.built("llm")
    assert c.llm is None  # provider "none": built, and there is none
    assert c.built("llm")
    assert not c.built("index")
    with pytest.raises(AttributeError):
        c.built("nonsense")


def test_wrap_llm_reaches_the_pipeline_and_is_refused_once_it_is_built(tmp_path: Path) -> None:
    model = ScriptedChatModel(["hi"])
    c = Container(light(tmp_path / "data"), llm=model)
    seen: list[object] = []

    def wrap(inner: Any) -> Any:
        seen.append(inner)
        return GatedChatModel(inner, max_waiting=0, wait_s=1)

    c.wrap_llm(wrap)
    assert seen == [model]
    # the pipeline holds the decorated model: with no queue, every call is refused
    with pytest.raises(ModelUnavailable, match="busy"):
        list(c.pipeline.llm.stream(ASK, max_tokens=5, temperature=0))  # type: ignore[union-attr]
    assert model.calls == []
    with pytest.raises(ConfigError, match="before first use"):
        c.wrap_llm(wrap)
    c.index.close()


def test_the_server_gates_the_model_of_every_store(tmp_path: Path) -> None:
    """The default store's pipeline is built at start-up: the gate goes on before it, and other
    stores share the gated model."""
    model = ScriptedChatModel(["hi"] * 4)
    data = tmp_path / "data"
    settings = light(data, server={"llm_queue": 0, "stores": ["shop-b"]})
    (settings.store_dir("shop-b") / "gen-0").mkdir(parents=True)  # a store this server serves
    with TestClient(create_app(Container(settings, llm=model))) as tc:
        st = tc.app.state.kefu  # type: ignore[attr-defined]
        for store in (None, "shop-b"):
            pipeline = st.container(store).pipeline
            with pytest.raises(ModelUnavailable, match="busy"):
                list(pipeline.llm.stream(ASK, max_tokens=5, temperature=0))
    assert model.calls == []


def test_the_eval_container_records_apart_and_carries_the_canary(tmp_path: Path) -> None:
    model = ScriptedChatModel(["ok"])
    own = sqlite_conversations(tmp_path / "eval-conversations.sqlite3")
    c = eval_container(light(tmp_path / "data"), llm=model, conversations=own, canary="CANARY-7")
    assert c.pipeline.conversations is own
    system = [Message(role="system", content="You are kefu."), *ASK]
    assert c.pipeline.llm is not None
    assert "".join(c.pipeline.llm.stream(system, max_tokens=5, temperature=0)) == "ok"
    assert "CANARY-7" in model.calls[0][0].content
    assert not (c.store_dir / "conversations.sqlite3").exists()
    c.index.close()
    own.close()


# --- blocking work stays off the event loop ------------------------------------------------


class SlowShop(ShopifyServer):
    """A storefront whose answers wait until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.arrived = threading.Event()
        self.release = threading.Event()

    def route(self, seen: Seen) -> Reply:
        if self.holding:
            self.arrived.set()
            self.release.wait(60)
        return super().route(seen)


@pytest.fixture
def slow_shop() -> Iterator[SlowShop]:
    with SlowShop() as shop:
        yield shop
        shop.release.set()


def test_the_server_answers_while_an_erasure_waits_on_a_slow_storefront(
    tmp_path: Path, slow_shop: SlowShop
) -> None:
    commerce = {
        "provider": "shopify",
        "shopify_shop": slow_shop.origin,
        "shopify_token": shopify_server.TOKEN,
        "shopify_api_version": shopify_server.API_VERSION,
        "timeout_s": 30,
        "max_retries": 0,
    }
    settings = light(tmp_path / "data", commerce=commerce)
    c = Container(settings)
    c.conversations.append(
        "s-9", Turn(role="user", content="hi"), customer_id="ana.garcia@example.com"
    )
    erased: dict[str, Any] = {}
    with TestClient(create_app(c)) as tc:
        slow_shop.holding = True

        def erase() -> None:
            r = tc.delete("/v1/customers/ana.garcia@example.com", headers=AUTH)
            erased.update(status=r.status_code, body=r.json())

        worker = threading.Thread(target=erase)
        worker.start()
        assert slow_shop.arrived.wait(30), "the erasure never asked the storefront"
        # the storefront holds the erasure; the loop still answers (if the erasure blocked it,
        # this request would wait for the release, which only comes after it)
        health: dict[str, int] = {}
        probe = threading.Thread(
            target=lambda: health.update(status=tc.get("/healthz").status_code)
        )
        probe.start()
        probe.join(30)
        answered_while_held = health.get("status") == 200 and not erased
        slow_shop.release.set()
        probe.join(30)
        worker.join(60)
    c.commerce.close()  # type: ignore[union-attr]
    assert answered_while_held
    assert erased["status"] == 200
    assert erased["body"]["deleted"]["turns"] == 1
