"""Documents compiled into self-contained, scoped facts (the sample store's real files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import load_file
from rag.knowledge.facts import Fact, compile_facts, quantities_in
from tests.conftest import SAMPLE_STORE


def _facts(rel: str, *, catalog_names: tuple[str, ...] = ()) -> list[Fact]:
    path = SAMPLE_STORE / rel
    html = path.read_text(encoding="utf-8") if path.suffix == ".html" else None
    out: list[Fact] = []
    for doc in load_file(path, rel):
        out.extend(compile_facts(doc, html=html, catalog_names=catalog_names))
    return out


@pytest.fixture(scope="module")
def zones() -> list[Fact]:
    return _facts("docs/shipping/shipping-zones.md")


@pytest.fixture(scope="module")
def mexico() -> list[Fact]:
    return _facts("docs/es/envios-mexico.md")


def _rows(facts: list[Fact], *words: str) -> list[Fact]:
    return [f for f in facts if f.kind == "row" and all(w in f.text for w in words)]


def test_mexico_standard_row_states_its_own_numbers_scoped_mx_standard(
    mexico: list[Fact],
) -> None:
    [standard] = _rows(mexico, "Estándar")
    assert "10–18" in standard.numbers
    assert "9.99" in standard.numbers
    assert "4–7" not in standard.text
    assert "34.99" not in standard.text
    assert standard.scope.countries == {"MX"}
    assert standard.scope.service == "standard"
    # the row carries its table's heading and every column header beside its cell
    assert standard.heading_path == ("Envíos a México", "Paquetería y tiempos de entrega")
    assert standard.text.startswith("Envíos a México › Paquetería y tiempos de entrega — ")
    assert "Tiempo de tránsito: 10–18 días hábiles" in standard.text
    assert "Envío gratis: En pedidos desde US$79" in standard.text


def test_mexico_express_row_is_scoped_express(mexico: list[Fact]) -> None:
    [express] = _rows(mexico, "Servicio: Express")
    assert express.scope.service == "express"
    assert "4–7" in express.numbers
    assert "10–18" not in express.text


def test_a_row_with_standard_and_express_columns_becomes_one_fact_per_service(
    zones: list[Fact],
) -> None:
    zone5 = _rows(zones, "5 Latin America")
    assert sorted(f.scope.service or "" for f in zone5) == ["express", "standard"]
    [standard] = [f for f in zone5 if f.scope.service == "standard"]
    [express] = [f for f in zone5 if f.scope.service == "express"]
    assert "Standard time: 10–20 days" in standard.text
    assert "Free standard shipping from: $79" in standard.text
    assert "Express" not in standard.text
    assert "4–7" not in standard.numbers
    assert "Express time: 4–7 days" in express.text
    assert "10–20" not in express.numbers
    for fact in zone5:  # both keep the columns that say which zone and countries
        assert "Countries (examples): Mexico, Brazil" in fact.text
        assert "Zones, delivery times and fees" in fact.heading_path


def test_multi_country_rows_are_scoped_to_those_countries_and_their_zone(
    zones: list[Fact],
) -> None:
    [zone5] = [f for f in _rows(zones, "5 Latin America") if f.scope.service == "standard"]
    assert {"MX", "BR", "CO", "CL", "AR", "PE"} <= zone5.scope.countries
    assert "Latin America" in zone5.scope.regions
    assert "UY" in zone5.scope.markets  # the countries are examples; the zone covers them all
    assert "US" not in zone5.scope.markets
    [zone3] = [f for f in _rows(zones, "3 Europe & UK") if f.scope.service == "standard"]
    assert {"DE", "FR", "GB", "NO", "CH"} <= zone3.scope.markets
    assert "MX" not in zone3.scope.markets
    # a carrier's name in another column is not a market: zone 6's standard carrier is China Post
    [zone6] = [f for f in _rows(zones, "6 Middle East") if f.scope.service == "standard"]
    assert "CN" not in zone6.scope.markets


def test_sentences_carry_their_heading_path_and_mention_countries_without_excluding(
    zones: list[Fact],
) -> None:
    [note] = [f for f in zones if "Mexico usually takes" in f.text]
    assert note.kind == "sentence"
    assert note.text.startswith(
        "Shipping zones, carriers and delivery times › Zones, delivery times and fees — "
    )
    assert "10–18" in note.numbers
    assert {"MX", "BR"} <= note.scope.mentions
    assert not note.scope.is_market_specific  # a sentence naming a country does not exclude others
    assert note.scope.service == "standard"
    [origin] = [f for f in zones if "warehouse in Shenzhen, China" in f.text]
    assert not origin.scope.is_market_specific


def test_a_documents_markets_scope_its_facts(mexico: list[Fact]) -> None:
    [tax] = [f for f in mexico if "tasa global del 19%" in f.text]
    assert tax.scope.countries == {"MX"}
    eu = _facts("docs/customs/eu-ioss.md")
    [rate] = [f for f in eu if "19% for Germany" in f.text]
    assert "European Union" in rate.scope.regions
    assert "DE" in rate.scope.markets
    assert "NO" not in rate.scope.markets


def test_customs_table_rows_are_scoped_by_their_destination() -> None:
    facts = _facts("docs/customs/customs-overview.md")
    [mx] = _rows(facts, "Destination: Mexico")
    assert mx.scope.countries == {"MX"}
    assert "1000" in mx.numbers
    [eu] = _rows(facts, "Destination: European Union")
    assert "European Union" in eu.scope.regions
    assert "DE" in eu.scope.markets
    assert "GB" not in eu.scope.markets


def test_chinese_document_keeps_its_headers_and_scopes_rows_to_catalog_products() -> None:
    names = ("Slim Power Bank 10000 mAh", "True Wireless Earbuds TW2", "Foldable LED Desk Lamp")
    facts = _facts("docs/zh/shipping-faq-zh.md", catalog_names=names)
    [bank] = _rows(facts, "超薄充电宝")
    assert bank.heading_path[-1] == "四、含锂电池商品的运输限制"
    assert "商品: 超薄充电宝（Slim Power Bank）" in bank.text
    assert "电池参数: 10,000 mAh，37 Wh" in bank.text
    assert bank.scope.products == {"Slim Power Bank 10000 mAh"}
    [brazil] = [f for f in facts if "巴西和阿根廷" in f.text and "第 6 区" in f.text]
    assert {"BR", "AR"} <= brazil.scope.mentions


def test_catalog_variants_become_facts_with_price_and_stock() -> None:
    facts = _facts("catalog/products.csv")
    white = [f for f in facts if f.kind == "variant" and "JH-CER-MUG-WHT" in f.text]
    assert len(white) == 1
    assert white[0].text.startswith("Harbor Glaze Ceramic Mug 350 ml — Color: Ash White")
    assert "sold out" in white[0].text
    assert "16.00" in white[0].numbers
    assert "JH-CER-MUG-WHT" in white[0].scope.products
    assert "JH-CER-MUG-BLU" not in white[0].scope.products
    [large] = [f for f in facts if f.kind == "variant" and "JH-CI-SKL-26" in f.text]
    assert "Size: 26 cm" in large.text
    assert "44.00" in large.numbers
    # the product's described features are facts about that product too
    [care] = [f for f in facts if "dishwasher safe (top rack)" in f.text]
    assert "Harbor Glaze Ceramic Mug 350 ml" in care.scope.products
    assert care.kind == "sentence"


def test_html_tables_are_compiled_from_the_page_not_the_flattened_text(tmp_path: Path) -> None:
    page = tmp_path / "rates.html"
    page.write_text(
        "<html lang='en'><body><h1>Rates</h1><h2>Express to Asia</h2>"
        "<p>Prices are per order.</p><table>"
        "<tr><th>Destination</th><th>Time</th><th>Fee</th></tr>"
        "<tr><td>Japan</td><td>2&ndash;4 days</td><td>$14.99</td></tr>"
        "<tr><td>Thailand</td><td>3&ndash;5 days</td><td>$19.99</td></tr>"
        "</table></body></html>",
        encoding="utf-8",
    )
    [doc] = load_file(page, "rates.html")
    facts = compile_facts(doc, html=page.read_text(encoding="utf-8"))
    rows = [f for f in facts if f.kind == "row"]
    assert [f.text for f in rows] == [
        "Rates › Express to Asia — Destination: Japan; Time: 2–4 days; Fee: $14.99",
        "Rates › Express to Asia — Destination: Thailand; Time: 3–5 days; Fee: $19.99",
    ]
    assert [f.scope.countries for f in rows] == [{"JP"}, {"TH"}]
    assert all(f.scope.service == "express" for f in rows)  # from the heading
    sentences = [f for f in facts if f.kind == "sentence"]
    assert [f.statement for f in sentences] == ["Prices are per order."]
    assert sentences[0].span is not None
    start, end = sentences[0].span
    assert "Prices are per order." in doc.text[start:end]


def test_sample_about_page_sentences_keep_their_sections() -> None:
    facts = _facts("docs/other/about-us.html")
    [warehouse] = [f for f in facts if "4,800 m² warehouse" in f.text]
    assert warehouse.heading_path == ("About Jade Harbor Goods", "Our warehouse")
    assert "4800" in warehouse.numbers


def test_docx_style_tables_without_a_separator_row_are_rows() -> None:
    from rag.types import SourceDocument

    doc = SourceDocument(
        doc_id="fees.docx",
        source="fees.docx",
        title="Fees",
        text="# Fees\n\nCountry | Standard fee\n\nCanada | $6.99\n\nJapan | $4.99",
        language="en",
    )
    # the DOCX loader separates rows with blank lines only between paragraphs, not table rows
    doc2 = SourceDocument(**{**doc.__dict__, "text": doc.text.replace("\n\nCanada", "\nCanada")})
    doc2 = SourceDocument(**{**doc2.__dict__, "text": doc2.text.replace("\n\nJapan", "\nJapan")})
    rows = [f for f in compile_facts(doc2) if f.kind == "row"]
    assert [f.statement for f in rows] == [
        "Country: Canada; Standard fee: $6.99",
        "Country: Japan; Standard fee: $4.99",
    ]
    assert [f.scope.countries for f in rows] == [{"CA"}, {"JP"}]
    assert all(f.scope.service == "standard" for f in rows)


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("10–18 días hábiles, US$9.99", ("10–18", "9.99")),
        ("limit US$1,000 per order", ("1000",)),
        ("carrier 4PX, 2-3 business days", ("2–3",)),
        ("cut-off 14:00 (UTC+8)", ("14:00", "8")),
    ],
)
def test_numbers_a_fact_states(text: str, numbers: tuple[str, ...]) -> None:
    assert quantities_in(text) == numbers


def test_every_sample_store_document_compiles_into_facts_that_point_back_to_it() -> None:
    for path in sorted(p for p in (SAMPLE_STORE / "docs").rglob("*") if p.is_file()):
        rel = str(path.relative_to(SAMPLE_STORE))
        html = path.read_text(encoding="utf-8") if path.suffix == ".html" else None
        for doc in load_file(path, rel):
            facts = compile_facts(doc, html=html)
            assert facts, rel
            for fact in facts:
                assert fact.doc_id == doc.doc_id
                assert fact.statement.strip()
                if fact.span is not None:
                    start, end = fact.span
                    assert 0 <= start < end <= len(doc.text)


def test_json_catalog_variants_carry_their_options(tmp_path: Path) -> None:
    catalog = tmp_path / "products.json"
    catalog.write_text(
        '{"products": [{"title": "Travel Adapter", "handle": "adapter",'
        ' "options": [{"name": "Plug"}, {"name": "Voltage"}],'
        ' "variants": [{"option1": "EU", "option2": "230 V", "sku": "AD-EU", "price": "29.99",'
        ' "inventory_quantity": 4},'
        ' {"option1": "UK", "option2": "230 V", "sku": "AD-UK", "price": "31.50",'
        ' "inventory_quantity": 0}]}]}',
        encoding="utf-8",
    )
    [doc] = load_file(catalog, "products.json")
    variants = [f for f in compile_facts(doc) if f.kind == "variant"]
    assert [f.statement for f in variants] == [
        "Plug: EU / Voltage: 230 V, SKU AD-EU, price 29.99 USD, in stock",
        "Plug: UK / Voltage: 230 V, SKU AD-UK, price 31.50 USD, sold out",
    ]
    assert [f.numbers for f in variants] == [("230", "29.99"), ("230", "31.50")]
    assert [sorted(f.scope.products) for f in variants] == [
        ["AD-EU", "Travel Adapter", "adapter"],
        ["AD-UK", "Travel Adapter", "adapter"],
    ]


def test_a_variant_is_scoped_to_the_markets_its_description_ties_it_to() -> None:
    from rag.knowledge.entities import extract_entities, scope_match

    docs = load_file(SAMPLE_STORE / "catalog/products.csv", "catalog/products.csv")
    charger = next(d for d in docs if d.doc_id.endswith("#gan-wall-charger-30w"))
    variants = {f.statement.split(",")[0]: f for f in compile_facts(charger) if f.kind == "variant"}
    assert variants["Plug: UK (Type G)"].scope.countries >= {"SA", "AE", "GB"}
    assert "MX" in variants["Plug: US (Type A)"].scope.countries
    riyadh = extract_entities("which charger do I need?", lang="en", country_hint="SA")
    hamburg = extract_entities("welches Ladegerät brauche ich?", lang="de", country_hint="DE")
    fits = {k for k, f in variants.items() if scope_match(f.scope, riyadh) is not None}
    assert fits == {"Plug: UK (Type G)"}
    fits = {k for k, f in variants.items() if scope_match(f.scope, hamburg) is not None}
    assert fits == {"Plug: EU (Type C)"}  # Germany is in the European Union
    # a variant whose option no description clause ties to markets is for everyone
    mug = next(d for d in docs if d.doc_id.endswith("#harbor-glaze-ceramic-mug"))
    assert all(not f.scope.countries for f in compile_facts(mug) if f.kind == "variant")
