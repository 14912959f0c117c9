"""What a question is about, and which facts may answer it (the sample store's real files)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.loaders import load_file
from rag.knowledge.entities import Entities, amounts_in, extract_entities, scope_match
from rag.knowledge.facts import Fact, compile_facts
from tests.conftest import SAMPLE_STORE

CATALOG = (
    "Slim Power Bank 10000 mAh",
    "True Wireless Earbuds TW2",
    "Harbor Glaze Ceramic Mug 350 ml",
    "JH-CER-MUG-BLU",
    "JH-CER-MUG-WHT",
)


def _facts(*rels: str) -> list[Fact]:
    out: list[Fact] = []
    for rel in rels:
        for doc in load_file(SAMPLE_STORE / rel, rel):
            out.extend(compile_facts(doc, catalog_names=CATALOG))
    return out


@pytest.fixture(scope="module")
def shipping() -> list[Fact]:
    return _facts("docs/shipping/shipping-zones.md", "docs/es/envios-mexico.md")


def _ranked(facts: list[Fact], entities: Entities) -> list[tuple[float, Fact]]:
    scored = [(scope_match(f.scope, entities), f) for f in facts]
    return sorted(((s, f) for s, f in scored if s is not None), key=lambda x: -x[0])


def test_spanish_question_about_mexico() -> None:
    e = extract_entities("¿Cuánto tarda el envío a México?", lang="es")
    assert e.country == "MX"
    assert {"Latin America", "419"} <= e.regions
    assert e.service is None
    assert e.products == ()
    assert e.amounts == ()


def test_korean_question_names_korea_in_korean() -> None:
    e = extract_entities("한국으로 배송하는 데 얼마나 걸려요?", lang="ko")
    assert e.country == "KR"
    assert "East Asia" in e.regions


def test_the_question_country_wins_over_the_session_hint_which_fills_in_otherwise() -> None:
    assert extract_entities("Shipping to Japan?", lang="en", country_hint="US").country == "JP"
    hinted = extract_entities("How long does shipping take?", lang="en", country_hint="au")
    assert hinted.country == "AU"
    assert "Oceania" in hinted.regions
    assert extract_entities("How long does shipping take?", lang="en").country is None


def test_service_level_products_and_regions_named_in_the_question() -> None:
    e = extract_entities(
        "Can I send a power bank to Brazil by express?", lang="en", catalog_names=CATALOG
    )
    assert (e.country, e.service, e.products) == ("BR", "express", ("Slim Power Bank 10000 mAh",))
    assert extract_entities("envío exprés a Chile", lang="es").service == "express"
    assert extract_entities("标准运输要几天？", lang="zh").service == "standard"
    latam = extract_entities("Do you ship to Latin America?", lang="en")
    assert latam.country is None
    assert latam.named_regions == {"Latin America"}
    sku = extract_entities("Is JH-CER-MUG-WHT back in stock?", lang="en", catalog_names=CATALOG)
    assert sku.products == ("JH-CER-MUG-WHT",)
    assert extract_entities("Do you sell knives?", lang="en", catalog_names=CATALOG).products == ()


@pytest.mark.parametrize(
    ("text", "lang", "country", "amount", "currency"),
    [
        ("My order is US$ 300, is shipping free?", "en", None, "300", "USD"),
        ("Mi pedido es de 300 dólares", "es", "MX", "300", "USD"),
        ("¥20,000の注文は送料無料ですか", "ja", None, "20000", "JPY"),
        ("2万円以上なら送料無料ですか", "ja", None, "20000", "JPY"),
        ("订单¥200包邮吗", "zh", None, "200", "CNY"),
        ("订单满300美元包邮吗", "zh", None, "300", "USD"),
        ("Bestellung über €200", "de", None, "200", "EUR"),
        ("Заказ на 200 евро", "ru", None, "200", "EUR"),
        ("Is CAD 35 enough for free shipping?", "en", None, "35", "CAD"),
        ("5만원 이상 무료배송인가요?", "ko", None, "50000", "KRW"),
        ("pedido de R$ 1.500,50", "pt", "BR", "1500.50", "BRL"),
        ("une commande de 1 234,56 €", "fr", None, "1234.56", "EUR"),
        ("I spent $35", "en", "CA", "35", "CAD"),  # a Canadian's dollars
        ("I spent $35", "en", "US", "35", "USD"),
        ("£135 order", "en", "GB", "135", "GBP"),
    ],
)
def test_amounts_in_many_languages(
    text: str, lang: str, country: str | None, amount: str, currency: str
) -> None:
    e = extract_entities(text, lang=lang, country_hint=country)
    assert e.order_total is not None
    assert (e.order_total.amount, e.order_total.currency) == (Decimal(amount), currency)


def test_numbers_without_a_currency_are_not_amounts() -> None:
    assert amounts_in("I ordered 3 mugs on 12 May, order 1042") == ()


def test_mexico_question_rejects_other_markets_and_prefers_mexico(shipping: list[Fact]) -> None:
    e = extract_entities("¿Cuánto tarda el envío a México?", lang="es")
    germany = [f for f in shipping if f.kind == "row" and "3 Europe & UK" in f.text]
    assert germany
    assert all(scope_match(f.scope, e) is None for f in germany)
    ranked = _ranked([f for f in shipping if f.kind == "row"], e)
    assert ranked
    for _, fact in ranked:  # every row still in play is about Mexico
        assert "MX" in fact.scope.markets
    # the Mexico page's own rows outrank the six-country Latin America zone row
    assert "Envíos a México" in ranked[0][1].heading_path
    # a fact restricted to no market is still usable, below those that match
    general = [f for f in shipping if "Business days are Monday to Friday" in f.text]
    assert scope_match(general[0].scope, e) == 1.0
    assert ranked[0][0] > 1.0


def test_service_level_in_the_question_rejects_the_other_service(shipping: list[Fact]) -> None:
    express_q = extract_entities("How long does express shipping to Mexico take?", lang="en")
    ranked = _ranked([f for f in shipping if f.kind == "row"], express_q)
    assert ranked
    assert all(f.scope.service == "express" for _, f in ranked)
    assert any("4–7" in f.numbers for _, f in ranked)
    standard_q = extract_entities("¿Cuánto tarda el envío estándar a México?", lang="es")
    top = _ranked([f for f in shipping if f.kind == "row"], standard_q)[0][1]
    assert top.scope.service == "standard"
    assert "10–18" in top.numbers


def test_a_question_without_service_level_keeps_both(shipping: list[Fact]) -> None:
    e = extract_entities("¿Cuánto tarda el envío a México?", lang="es")
    services = {f.scope.service for _, f in _ranked([f for f in shipping if f.kind == "row"], e)}
    assert services == {"standard", "express"}


def test_a_region_question_keeps_that_regions_zone_only(shipping: list[Fact]) -> None:
    e = extract_entities("How long does shipping to the Middle East & Africa take?", lang="en")
    rows = [f for _, f in _ranked([f for f in shipping if f.kind == "row"], e)]
    assert rows
    assert all("6 Middle East & Africa" in f.text for f in rows)


def test_product_scoped_facts_are_rejected_for_another_product() -> None:
    facts = _facts("docs/zh/shipping-faq-zh.md", "catalog/products.csv")
    earbuds = extract_entities(
        "真无线耳机可以发到巴西吗？ Wireless Earbuds", lang="zh", catalog_names=CATALOG
    )
    assert earbuds.products == ("True Wireless Earbuds TW2",)
    [bank_row] = [f for f in facts if f.kind == "row" and "超薄充电宝" in f.text]
    [earbud_row] = [f for f in facts if f.kind == "row" and "真无线耳机" in f.text]
    assert scope_match(bank_row.scope, earbuds) is None
    assert scope_match(earbud_row.scope, earbuds) is not None
    white = extract_entities("Is JH-CER-MUG-WHT in stock?", lang="en", catalog_names=CATALOG)
    variants = [f for f in facts if f.kind == "variant" and "Harbor Glaze" in f.text]
    kept = [f for f in variants if scope_match(f.scope, white) is not None]
    assert [("JH-CER-MUG-WHT" in f.text) for f in kept] == [True]


def test_eu_question_matches_the_eu_row_and_not_mexicos() -> None:
    facts = _facts("docs/customs/customs-overview.md")
    e = extract_entities("Do I pay VAT on delivery in Germany?", lang="en")
    [eu] = [f for f in facts if f.kind == "row" and "European Union" in f.text]
    [mx] = [f for f in facts if f.kind == "row" and "Destination: Mexico" in f.text]
    assert scope_match(eu.scope, e) is not None
    assert scope_match(mx.scope, e) is None


def test_words_that_look_like_codes_do_not_hide_an_amount() -> None:
    assert [(m.amount, m.currency) for m in amounts_in("VAT 20 EUR on top")] == [
        (Decimal(20), "EUR")
    ]
    assert extract_entities("How long to ship?", lang="en", country_hint="uk").country == "GB"


def test_an_order_total_keeps_only_the_rules_for_orders_of_its_size() -> None:
    facts = _facts("docs/customs/eu-ioss.md")
    below = [f for f in facts if f.scope.band == ("EUR", None, 150.0)]
    above = [f for f in facts if f.scope.band == ("EUR", 150.0, None)]
    assert below
    assert above
    q = extract_entities("I order for €120 to Lyon, do I pay customs on delivery?", lang="en")
    assert q.order_total is not None
    assert all(scope_match(f.scope, q) is not None for f in below)
    assert all(scope_match(f.scope, q) is None for f in above)
    big = extract_entities("my order is €200, what do I pay on delivery in France?", lang="en")
    assert all(scope_match(f.scope, big) is None for f in below)
    # no total in the question: both bands stay
    none = extract_entities("do I pay customs on delivery in France?", lang="en")
    assert all(scope_match(f.scope, none) is not None for f in below + above)


def test_a_statements_own_threshold_is_no_band() -> None:
    # "free standard shipping from $79" answers a question with any order total
    facts = _facts("docs/shipping/shipping-zones.md")
    rows = [f for f in facts if f.kind == "row"]
    assert rows
    assert all(f.scope.band is None for f in rows)


def _named_by_scanning(text: str, names: tuple[str, ...]) -> list[str]:
    """What a text names, checked against every name in turn (the matcher's reference)."""
    import re
    from itertools import pairwise

    from rag.knowledge.regions import norm

    t = norm(text)
    out = []
    whole = [n for n in names if re.search(rf"(?<!\w){re.escape(norm(n))}(?!\w)", t)]
    for n in whole:  # a name stated whole does not also name others by its words
        t = re.sub(rf"(?<!\w){re.escape(norm(n))}(?!\w)", " | ", t)
    for name in names:
        words = [
            w
            for w in re.findall(r"[^\W\d_]{3,}", norm(name))
            if w not in {"the", "and", "for", "with", "set", "pack", "size", "of"}
            and w not in {"de", "la", "el", "con", "para"}
        ]
        if name in whole or any(
            re.search(rf"(?<!\w){re.escape(f'{a} {b}')}(?:e?s)?(?!\w)", t)
            for a, b in pairwise(words)
        ):
            out.append(name)
    return out


def test_a_large_catalog_names_the_same_products_as_checking_every_name() -> None:
    """A 10,000-product catalog: the indexed matcher finds exactly the names a scan of every
    name finds (whole titles, SKUs, two words in a row, plurals, CJK titles inside a run)."""
    from rag.knowledge.entities import products_named

    adjectives = ["Slim", "Harbor", "Nordic", "Solar", "Compact", "Velvet", "Cedar", "Quartz"]
    nouns = ["Power Bank", "Ceramic Mug", "Desk Lamp", "Travel Adapter", "Yoga Mat", "Kettle"]
    names = [f"{a} {n} {i}" for i, (a, n) in enumerate((a, n) for a in adjectives for n in nouns)]
    names += [f"JH-SKU-{i:05d}" for i in range(10_000 - len(names) - 2)]
    names += ["真无线耳机", "ชุดหูฟังไร้สาย"]
    catalog = tuple(names)
    questions = [
        "Can I take two power banks on a plane?",
        "Is JH-SKU-00042 back in stock? And JH-SKU-09000?",
        "Does the Slim Power Bank 0 come in red?",
        "真无线耳机可以发到巴西吗？",
        "ชุดหูฟังไร้สายส่งไปไทยได้ไหม",
        "how long is shipping to Mexico",
        "Compact Yoga Mat 28, or a travel adapters set?",
    ]
    for q in questions:
        assert products_named(q, catalog) == _named_by_scanning(q, catalog), q
    assert products_named(questions[1], catalog) == ["JH-SKU-00042", "JH-SKU-09000"]
    assert products_named(questions[5], catalog) == []
    # the title stated whole names that product, not every power bank
    assert products_named(questions[2], catalog) == ["Slim Power Bank 0"]
    assert "Compact Yoga Mat 28" in products_named(questions[6], catalog)
    assert len(products_named("Can I take two power banks on a plane?", catalog)) == 8
