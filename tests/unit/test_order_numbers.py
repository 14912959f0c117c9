"""Which order number a shopper means, in many languages, and what is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.commerce.orders import find_order_number


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("where is order 1042", "1042"),
        ("Where is my order #1042?", "1042"),
        ("order no. 1042 please", "1042"),
        ("订单号1042到哪了", "1042"),
        ("我的订单 1042 到哪里了", "1042"),
        ("mi pedido es el 1042", "1042"),
        ("注文番号 1042 はどこですか", "1042"),
        ("طلبي رقم 1050", "1050"),
        ("заказ №1042", "1042"),
        ("Bestellung Nr. 1044", "1044"),
        ("order JH-1042", "JH-1042"),
        # not order numbers: quantities, verbs, amounts, postcodes
        ("Can I order 100 mugs?", None),
        ("I ordered 2500 units last year", None),
        ("Is shipping free for orders over $59?", None),
        ("my postcode is 06700", None),
    ],
)
def test_order_numbers(message: str, number: str | None) -> None:
    assert find_order_number(message) == number


@pytest.mark.parametrize(
    ("message", "wanted"),
    [
        ("Where is my order?", True),
        ("我的订单到哪里了？", True),
        ("¿Dónde está mi pedido?", True),
        ("where is my order 1042, I want to cancel it", True),  # the number decides
        ("Can I cancel my order? where is my order status page", False),
        ("我想取消我的订单", False),
        ("quiero cancelar mi pedido, ¿dónde está mi pedido ahora?", False),
        ("How long does shipping to Mexico take?", False),
    ],
)
def test_which_messages_are_order_status_questions(
    message: str, wanted: bool, tmp_path: Path
) -> None:
    from rag.adapters.sqlite_orders import SqliteOrders
    from rag.commerce.orders import OrderAssistant
    from rag.conversations.store import ConversationStore
    from rag.settings import CommerceSettings

    assistant = OrderAssistant(
        SqliteOrders(tmp_path / "orders.sqlite3"),
        index=None,  # type: ignore[arg-type]  # not consulted to classify a message
        conversations=ConversationStore(tmp_path / "conv.sqlite3"),
        settings=CommerceSettings(),
    )
    assert assistant.wants(message, "s") is wanted
