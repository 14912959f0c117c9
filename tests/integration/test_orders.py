"""Order tracking and personalisation end to end: the embedded order store with the sample
seed data, the real sample knowledge base, real embeddings, real SQLite, the answer pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.adapters.sqlite_orders import SqliteOrders
from rag.answer.pipeline import AnswerPipeline, AskRequest, Reply
from rag.commerce.delivery import Doc, add_business_days, find_window
from rag.commerce.orders import OrderAssistant
from rag.commerce.personalisation import Personaliser
from rag.commerce.types import Order
from rag.container import Container
from rag.conversations.store import ConversationStore, Turn
from rag.errors import InvalidInput
from rag.guardrails.escalation import EmotionScorer, EscalationPolicy
from rag.guardrails.grounding import ungrounded_numbers
from rag.lang.frames import frame
from rag.settings import AnswerSettings, CommerceSettings, LLMSettings, Settings
from tests.conftest import SAMPLE_STORE, make_settings

COMMERCE = SAMPLE_STORE / "commerce"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the seed data's "today"


@pytest.fixture(scope="module")
def orders_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteOrders]:
    db = SqliteOrders(tmp_path_factory.mktemp("commerce") / "commerce.sqlite3")
    for name in ("customers.csv", "orders.csv", "tracking.csv"):
        db.import_csv(COMMERCE / name)
    yield db
    db.close()


@pytest.fixture(scope="module")
def policy(sample_container: Container) -> EscalationPolicy:
    cache = Settings(_env_file=None).models_dir / "cache"  # type: ignore[call-arg]
    return EscalationPolicy(EmotionScorer(sample_container.embedder, cache_dir=cache))


@pytest.fixture
def pipeline(
    sample_container: Container,
    orders_db: SqliteOrders,
    policy: EscalationPolicy,
    tmp_path: Path,
) -> AnswerPipeline:
    return order_pipeline(sample_container, orders_db, policy, tmp_path)


def order_pipeline(
    c: Container,
    orders_db: SqliteOrders,
    policy: EscalationPolicy,
    tmp_path: Path,
    *,
    seller_language: str = "en",
) -> AnswerPipeline:
    conversations = ConversationStore(tmp_path / "conv.sqlite3")
    assistant = OrderAssistant(
        orders_db,
        index=c.index,
        conversations=conversations,
        settings=CommerceSettings(),
        now=lambda: NOW,
    )
    return AnswerPipeline(
        retriever=c.retriever,
        detector=c.detector,
        counter=c.tokens,
        conversations=conversations,
        llm=None,
        settings=AnswerSettings(),
        llm_settings=LLMSettings(),
        escalation=policy,
        orders=assistant,
        customers=orders_db,
        personaliser=Personaliser.from_file(COMMERCE / "personalisation.yaml"),
        seller_language=seller_language,
    )


def ask(p: AnswerPipeline, message: str, session: str, **kw: str) -> Reply:
    return p.answer(AskRequest(message=message, session_id=session, **kw))


# --- the embedded store ------------------------------------------------------------------


def test_import_and_lookup(orders_db: SqliteOrders) -> None:
    assert orders_db.counts() == {
        "orders": 14,
        "parcels": 11,
        "tracking_events": 40,
        "customers": 13,
    }
    order = orders_db.get_order("#1042")
    assert order is not None
    assert (order.status, order.country, order.postcode) == ("in_transit", "MX", "06700")
    assert order.fulfilments[0].carrier == "4PX"
    assert order.fulfilments[0].last_event is not None
    assert order.fulfilments[0].last_event.description.startswith("Handed to local carrier")
    assert [i.quantity for i in order.line_items] == [2, 1]
    assert orders_db.get_order("9999") is None
    vip = orders_db.get_customer("JAMES.WALKER@example.co.uk")
    assert vip is not None
    assert vip.id == "C-2002"
    assert "VIP" in vip.tags
    first = orders_db.get_customer("C-2001")
    assert first is not None
    assert first.first_purchase


def test_a_bad_csv_changes_nothing(tmp_path: Path) -> None:
    db = SqliteOrders(tmp_path / "c.sqlite3")
    bad = tmp_path / "orders.csv"
    good_row = "1,a@example.com,2026-11-01T00:00:00Z,unfulfilled"
    bad.write_text(
        f"order_number,email,created_at,status\n{good_row}\n2,b@example.com,2026-11-01,lost\n"
    )
    with pytest.raises(InvalidInput, match="line 3"):
        db.import_csv(bad)
    assert db.counts()["orders"] == 0
    other = tmp_path / "other.csv"
    other.write_text("sku,price\nA,1\n")
    with pytest.raises(InvalidInput, match="not an orders, customers or tracking CSV"):
        db.import_csv(other)


def test_store_cli_imports_and_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kefu.cli import app

    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    files = [str(COMMERCE / n) for n in ("orders.csv", "tracking.csv", "customers.csv")]
    res = runner.invoke(app, ["store", "import", *files, "--rebase-dates"])
    assert res.exit_code == 0, res.output
    assert "14 orders" in res.output
    res = runner.invoke(app, ["store", "order", "1043", "--json"])
    assert res.exit_code == 0
    assert '"customs_hold"' in res.output
    res = runner.invoke(app, ["store", "order", "777"])
    assert res.exit_code != 0
    assert "no order 777" in res.output


# --- asking, verifying, refusing ---------------------------------------------------------


def test_asks_for_the_number_then_for_proof(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "Hola, ¿dónde está mi pedido?", "s-es")
    assert (r.mode, r.reply) == ("order_ask", frame("es", "ask_order_number"))
    r = ask(pipeline, "es el pedido 1042", "s-es")
    assert r.mode == "order_ask"
    assert r.reply == frame("es", "order_ask_verification", number="1042")
    assert "4PX" not in r.reply  # nothing about the order before the proof
    r = ask(pipeline, "maria.gonzalez@example.com", "s-es")
    assert r.mode == "order"
    assert r.order == "1042"
    assert r.language == "es"
    assert "4PX3001042556810CN" in r.reply
    # a follow-up about the checked order needs no second proof
    r = ask(pipeline, "¿y dónde está mi pedido ahora?", "s-es")
    assert r.mode == "order"
    assert "4PX3001042556810CN" in r.reply


def test_postcode_is_proof_too(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "Where is my order #1043? My postcode is sw1a 2aa", "s-pc")
    assert r.mode == "order"
    assert "YT2611101043771" in r.reply


def test_wrong_email_reads_like_an_unknown_order(pipeline: AnswerPipeline) -> None:
    wrong = ask(pipeline, "where is my order 1042? my email is eve@example.com", "s-a")
    unknown = ask(pipeline, "where is my order 9876? my email is eve@example.com", "s-b")
    assert wrong.reply == unknown.reply == frame("en", "verification_failed")
    assert wrong.mode == unknown.mode == "order_unverified"
    assert wrong.sources == unknown.sources == []
    assert "4PX" not in wrong.reply


def test_verification_is_rate_limited_per_session(pipeline: AnswerPipeline) -> None:
    for i in range(3):
        r = ask(pipeline, f"order 1042, email guess{i}@example.com", "s-brute")
    # a person takes over the session
    assert r.mode == "order_handoff"
    assert frame("en", "order_locked") in r.reply
    # the right proof no longer opens the order in this session...
    r = ask(pipeline, "order 1042, email maria.gonzalez@example.com", "s-brute")
    assert r.mode == "handoff_pending"
    assert "4PX" not in r.reply
    # ...while the shopper's own fresh session still works
    r = ask(pipeline, "order 1042, email maria.gonzalez@example.com", "s-fresh")
    assert r.mode == "order"


# --- every state, in five languages ------------------------------------------------------

ASK = {
    "en": "Hi, where is my order #{n}? My email is {e}",
    "es": "Hola, ¿dónde está mi pedido #{n}? Mi correo es {e}",
    "zh": "你好，我的订单 #{n} 到哪里了？我的邮箱是 {e}",
    "fr": "Bonjour, où est ma commande #{n} ? Mon e-mail est {e}",
    "ar": "مرحبا، أين طلبي رقم #{n}؟ بريدي الإلكتروني هو {e}",
}
STATES = {
    "1048": "awaiting_payment",
    "1045": "unfulfilled",
    "1042": "in_transit",
    "1043": "customs_hold",
    "1051": "out_for_delivery",
    "1044": "delivered",
    "1046": "returned",
    "1047": "cancelled",
}


def window(order: Order, texts: list[str]) -> list[str]:
    """The delivery window dates the policy gives for a shipped order (ISO)."""
    docs = [Doc(str(i), "", t) for i, t in enumerate(texts)]
    out = []
    for f in order.fulfilments:
        w = find_window(docs, order.country or "", f.service)
        if w and f.shipped_at:
            out += [add_business_days(f.shipped_at.date(), d).isoformat() for d in (w.low, w.high)]
    return out


@pytest.mark.parametrize("lang", sorted(ASK))
def test_each_state_gets_a_grounded_reply(
    pipeline: AnswerPipeline, orders_db: SqliteOrders, lang: str
) -> None:
    texts = [
        "\n".join(c.text for c in pipeline.retriever.index.document_chunks(d.doc_id))
        for d in pipeline.retriever.index.documents()
        if d.doc_type in {"shipping", "customs"}
    ]
    for number, state in STATES.items():
        order = orders_db.get_order(number)
        assert order is not None
        assert order.email
        r = ask(pipeline, ASK[lang].format(n=number, e=order.email), f"s-{lang}-{number}")
        assert r.mode == "order", (lang, number, r.reply)
        assert r.language == lang
        head = frame(lang, f"order_status_{state}", number=number, date="")
        assert r.reply.startswith(head.split("{")[0][:12]), (lang, number, r.reply)
        for f in order.fulfilments:
            if state not in {"cancelled", "awaiting_payment"}:
                assert f.tracking_number in r.reply
        # every number comes from the order, the shop's documents or the window arithmetic
        bad = ungrounded_numbers(r.reply, [str(asdict(order)), *texts, *window(order, texts)])
        assert not bad, (lang, number, bad, r.reply)


def test_delivery_window_comes_from_the_shipping_policy(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "where is my order 1042? maria.gonzalez@example.com", "s-win")
    # Mexico's note in shipping-zones.md: 10–18 business days; shipped Wed 11 Nov 2026
    assert "10–18 business days" in r.reply
    assert "November 25, 2026" in r.reply
    assert "December 7, 2026" in r.reply
    assert "docs/shipping/shipping-zones.md" in [s["doc_id"] for s in r.sources]


def test_customs_hold_points_to_the_countrys_customs_page(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "where is my order 1043? james.walker@example.co.uk", "s-customs")
    assert "docs/customs/uk.md" in [s["doc_id"] for s in r.sources]


# --- late parcels and failed deliveries go to a person -----------------------------------


def test_late_parcel_escalates(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "Where is my order 1049? ava.thompson@example.com.au", "s-late")
    assert r.escalation["escalate"]
    assert r.escalation["reason"] == "order_exception"
    assert r.mode == "order_handoff"
    assert "4PX3001049118273CN" in r.reply  # the facts are still given
    assert frame("en", "order_stale", days="15", limit="10") in r.reply
    handoff = pipeline.conversations.active_handoff("s-late")
    assert handoff is not None
    assert handoff["reason"] == "order_exception"
    assert "#1049" in str(handoff["summary"])
    # the bot stays silent while a person has it
    r = ask(pipeline, "hello?", "s-late")
    assert r.mode == "handoff_pending"


def test_failed_delivery_escalates_in_arabic(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "أين طلبي رقم 1050؟ omar.haddad@example.ae", "s-exc")
    assert r.language == "ar"
    assert r.escalation["reason"] == "order_exception"
    assert frame("ar", "order_exception_hint") in r.reply


def test_on_time_parcel_does_not_escalate(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "where is my order 1055? wanjiru.kamau@example.co.ke", "s-ok")
    assert not r.escalation["escalate"]
    assert r.mode == "order"


# --- personalisation ---------------------------------------------------------------------


def test_rules_change_the_reply_for_vip_and_first_time_buyers(pipeline: AnswerPipeline) -> None:
    q = "How much does express shipping to the UK cost?"
    vip = ask(pipeline, q, "p-vip", customer_id="C-2002")
    first = ask(pipeline, q, "p-first", customer_id="C-2001")
    regular = ask(pipeline, q, "p-regular", customer_id="C-2003")
    anonymous = ask(pipeline, q, "p-anon")
    assert vip.personalisation == ["vip-perks"]
    assert first.personalisation == ["first-purchase-guarantee"]
    assert regular.personalisation == anonymous.personalisation == []
    assert "free express shipping on every order" in vip.reply
    assert "first-purchase guarantee" in first.reply
    assert "VIP" not in regular.reply
    assert "first-purchase" not in regular.reply
    # the shared part of the answer is the same for everyone
    assert regular.reply.split("\n\n")[0] == vip.reply.split("\n\n")[0]


def test_rules_speak_the_shoppers_language(pipeline: AnswerPipeline) -> None:
    r = ask(
        pipeline, "¿Cuánto cuesta el envío exprés al Reino Unido?", "p-es", customer_id="C-2002"
    )
    assert "envío exprés gratuito" in r.reply


def test_a_verified_order_identifies_the_customer(pipeline: AnswerPipeline) -> None:
    r = ask(pipeline, "where is my order 1053? yuki.tanaka@example.jp", "p-order")
    assert r.personalisation == ["vip-perks"]


def test_vip_goes_to_a_person_sooner(pipeline: AnswerPipeline) -> None:
    q = "Do you sell car engine oil?"
    regular = ask(pipeline, q, "v-regular", customer_id="C-2003")
    vip = ask(pipeline, q, "v-vip", customer_id="C-2002")
    assert regular.mode == "dont_know"
    assert not regular.escalation["escalate"]
    assert vip.escalation["escalate"]
    assert vip.escalation["reason"] == "vip"
    handoff = pipeline.conversations.active_handoff("v-vip")
    assert handoff is not None
    assert handoff["reason"] == "vip"


def test_rule_file_errors_are_clear(tmp_path: Path) -> None:
    from rag.errors import ConfigError

    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - id: a\n    when: {tagz: [VIP]}\n")
    with pytest.raises(ConfigError, match="invalid"):
        Personaliser.from_file(bad)


# --- the storefront is down; the chat endpoint ---------------------------------------------


def test_a_storefront_outage_gets_an_honest_reply(
    sample_container: Container, tmp_path: Path
) -> None:
    import socket

    from rag.adapters.shopify_orders import ShopifyOrders

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shop = ShopifyOrders(
        f"http://127.0.0.1:{port}", "shpat_x", "2025-01", max_retries=1, backoff_s=0.01
    )
    conversations = ConversationStore(tmp_path / "conv.sqlite3")
    assistant = OrderAssistant(
        shop,
        index=sample_container.index,
        conversations=conversations,
        settings=CommerceSettings(),
        now=lambda: NOW,
    )
    r = assistant.handle("¿dónde está mi pedido 1042? maria@example.com", lang="es", session_id="x")
    assert r.mode == "order_unavailable"
    assert r.text == frame("es", "order_unavailable")
    # an outage is not a failed check: the shopper is not locked out by it
    assert conversations.state("x").get("order", {}).get("failures", 0) == 0


def test_chat_endpoint_answers_order_questions(sample_container: Container, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        sample_container.settings.data_dir,
        llm={"provider": "none"},
        server={"admin_api_key": "kefu-orders-test-admin-key-5c1e9a07d3b2f846"},
        commerce={
            "sqlite_path": tmp_path / "commerce.sqlite3",
            "rules_file": COMMERCE / "personalisation.yaml",
        },
    )
    db = SqliteOrders(tmp_path / "commerce.sqlite3")
    for name in ("customers.csv", "orders.csv", "tracking.csv"):
        db.import_csv(COMMERCE / name)
    db.rebase_dates()  # the container's clock is the real one
    db.close()
    c = Container(settings, embedder=sample_container.embedder)
    with TestClient(create_app(c)) as client:
        body = {"message": "where is my order #1042?", "email": "maria.gonzalez@example.com"}
        res = client.post("/v1/chat", json=body)
        assert res.status_code == 200, res.text
        data = res.json()
        assert data["mode"] == "order"
        assert data["order"] == "1042"
        assert "4PX3001042556810CN" in data["reply"]
        assert data["personalisation"] == ["first-purchase-guarantee"]
        # without proof, nothing about the order
        res = client.post("/v1/chat", json={"message": "where is my order #1042?"})
        assert res.json()["mode"] == "order_ask"
        assert "4PX" not in res.json()["reply"]


def test_handoff_summary_is_in_the_sellers_language(
    sample_container: Container,
    orders_db: SqliteOrders,
    policy: EscalationPolicy,
    tmp_path: Path,
) -> None:
    pipeline = order_pipeline(sample_container, orders_db, policy, tmp_path, seller_language="zh")
    r = ask(pipeline, "¿Dónde está mi pedido 1049? ava.thompson@example.com.au", "s-zh-agent")
    assert r.language == "es"
    assert r.escalation["reason"] == "order_exception"
    handoff = pipeline.conversations.active_handoff("s-zh-agent")
    assert handoff is not None
    summary = str(handoff["summary"])
    # the agent reads Chinese: the frame, the shopper's language and the country in Chinese
    assert summary.startswith(frame("zh", "handoff_summary").split("{")[0])
    assert "西班牙语" in summary
    assert "#1049" in summary


def test_erasure_removes_the_profile_and_unlinks_the_orders(
    sample_container: Container, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path / "data",
        llm={"provider": "none"},
        commerce={"rules_file": COMMERCE / "personalisation.yaml"},
    )
    c = Container(settings, embedder=sample_container.embedder)
    db = SqliteOrders(settings.commerce_db())
    for name in ("customers.csv", "orders.csv", "tracking.csv"):
        db.import_csv(COMMERCE / name)
    db.close()
    # a conversation recorded under the customer id (a verified order told who it was)
    c.conversations.append("erase-s", Turn(role="user", content="hi"), customer_id="C-2002")
    c.conversations.set_state("erase-s", {"order": {"verified": ["1043"]}})

    receipt = c.erase_customer("james.walker@example.co.uk")  # asked for by e-mail
    assert receipt["profiles"] == 1
    assert receipt["orders_anonymised"] == 1
    assert receipt["sessions"] == 1
    assert c.commerce is not None
    assert c.commerce.get_customer("C-2002") is None
    order = c.commerce.get_order("1043")
    assert order is not None  # the seller's record stays...
    assert (order.email, order.postcode, order.customer_id) == (None, None, None)  # ...unlinked
    assert c.conversations.state("erase-s") == {}
    raw = settings.commerce_db().read_bytes()
    assert b"james.walker" not in raw
    assert b"SW1A" not in raw
