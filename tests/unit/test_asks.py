"""What kind of quantity a question asks for, and which facts state it (fact selection ranks
a fact that states the asked kind above a merely similar one)."""

from __future__ import annotations

import pytest

from rag.knowledge.asks import DURATION, MONEY, asked_cells, asked_kinds, stated_kinds


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("How long does shipping to Australia take?", {DURATION}),
        ("e per l'australia quanto ci vuole?", {DURATION}),
        ("whats the minimum order for free shipping to australia", {MONEY}),
        ("发新加坡满多少包邮啊", {MONEY}),
        ("¿Cuál es el pedido mínimo para el envío gratis a Chile?", {MONEY}),
        ("¿Cuánto tarda el envío a México?", {DURATION}),
        ("Wie lange dauert der Versand nach Österreich?", {DURATION}),
        ("到日本要多久？", {DURATION}),
        ("Gửi hàng sang Nhật mất bao lâu?", {DURATION}),
        ("ส่งไปญี่ปุ่นกี่วันคะ", {DURATION}),
        ("Usafirishaji kwenda Kenya unachukua siku ngapi?", {DURATION}),
        ("日本までの送料はいくらですか", {MONEY}),
        ("Combien coûte la livraison au Canada ?", {MONEY}),
        (
            "la livraison express vers la Belgique ça coûte combien et ça prend combien de temps",
            {DURATION, MONEY},
        ),
        ("¿Envían a Costa Rica?", set()),
        ("how long does shipping take to germany? and what does it cost", {DURATION, MONEY}),
        ("كم يستغرق الشحن إلى السعودية وكم تكلفته؟", {DURATION, MONEY}),  # attached suffixes
        ("Do you ship to Cuba?", set()),
        # "the price" in a yes/no question does not ask for an amount
        ("la TVA française est déjà comprise dans le prix affiché ?", set()),
        ("Is VAT included in the price?", set()),
        ("Can I cancel my order?", set()),
    ],
)
def test_questions_ask_for_a_duration_or_an_amount(question: str, kinds: set[str]) -> None:
    assert asked_kinds(question) == kinds


def test_facts_state_durations_and_amounts_in_their_own_words() -> None:
    assert stated_kinds("Mexico — Standard: 4PX, 10–18 business days, US$9.99") == {
        DURATION,
        MONEY,
    }
    assert stated_kinds("配送时效：3〜5営業日") == {DURATION}
    assert stated_kinds("envío estándar: 10 a 18 días hábiles", lang="es") == {DURATION}
    assert stated_kinds("Duties are collected on delivery above A$1,000") == {MONEY}
    # a customs page that names the country but states neither
    assert stated_kinds("Australia: parcels are inspected by the Border Force") == set()


ROW = (
    "Zone: 3 Europe & UK; Countries (examples): 27 EU countries, United Kingdom; "
    "Standard carrier: YunExpress or 4PX; Standard time: 7–14 days; Standard fee: $6.99; "
    "Free standard shipping from: $59"
)


def test_a_row_is_cut_to_the_cells_of_the_kind_asked_for() -> None:
    how_long = asked_cells(ROW, frozenset({DURATION}))
    assert "7–14 days" in how_long
    assert "Zone: 3 Europe & UK" in how_long  # the row's key stays: the scope it is about
    assert "$6.99" not in how_long
    assert "$59" not in how_long
    how_much = asked_cells(ROW, frozenset({MONEY}))
    assert "$6.99" in how_much
    assert "$59" in how_much
    assert "7–14" not in how_much
    # both asked, or neither: the whole row
    assert asked_cells(ROW, frozenset({DURATION, MONEY})) == ROW
    assert asked_cells(ROW, frozenset()) == ROW
    # nothing of the kind asked for in the row: it stays whole rather than lose its answer
    assert asked_cells("Zone: 1; Standard fee: $4.99", frozenset({DURATION})) == (
        "Zone: 1; Standard fee: $4.99"
    )
