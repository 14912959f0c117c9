"""Region membership from data (CLDR + the trade names sellers use), in any language."""

from __future__ import annotations

import pytest

from rag.knowledge.regions import (
    countries_in,
    countries_named,
    find_places,
    regions_of,
    resolve_region,
)


def test_a_country_belongs_to_its_cldr_regions_by_code_and_name() -> None:
    mx = regions_of("MX")
    assert {"Latin America", "Americas", "419", "Central America"} <= mx
    assert "Europe" not in mx
    assert {"Europe", "European Union", "EU", "Europe & UK"} <= regions_of("de")
    assert "European Union" not in regions_of("NO")


@pytest.mark.parametrize(
    ("region", "inside", "outside"),
    [
        # the zone names of the sample store's shipping table
        ("East Asia", {"JP", "KR", "HK", "MO", "TW", "MN"}, {"TH", "IN", "AU"}),
        ("North America", {"US", "CA"}, {"MX", "CU"}),
        ("Europe & UK", {"GB", "NO", "CH", "IS", "DE", "FR"}, {"TR", "US"}),
        ("Oceania", {"AU", "NZ", "FJ"}, {"ID"}),
        ("Latin America", {"MX", "BR", "CO", "CL", "AR", "PE", "UY"}, {"US", "ES"}),
        ("Middle East & Africa", {"AE", "SA", "IL", "TR", "ZA", "EG", "MA", "KE", "NG"}, {"IN"}),
        ("South & Southeast Asia", {"SG", "MY", "TH", "PH", "VN", "ID", "IN"}, {"JP", "CN"}),
        ("Gulf", {"AE", "SA", "QA"}, {"IL", "EG"}),
        ("EU", {"DE", "IE", "CY"}, {"GB", "NO", "CH"}),
    ],
)
def test_store_region_names_resolve_to_their_countries(
    region: str, inside: set[str], outside: set[str]
) -> None:
    members = countries_in(region)
    assert inside <= members
    assert not (outside & members)


@pytest.mark.parametrize(
    ("name", "same_as"),
    [
        ("América Latina", "Latin America"),
        ("Latinoamérica", "Latin America"),
        ("拉丁美洲", "Latin America"),
        ("中东和非洲", "Middle East & Africa"),
        ("Unión Europea", "EU"),
        ("东亚", "East Asia"),
        ("Eastern Asia", "East Asia"),
        ("419", "Latin America"),
    ],
)
def test_region_names_in_other_languages_mean_the_same_countries(name: str, same_as: str) -> None:
    assert countries_in(name) == countries_in(same_as)
    assert countries_in(name)


def test_unknown_names_cover_nothing() -> None:
    assert countries_in("Narnia") == frozenset()
    assert resolve_region("Zone 9") is None
    assert countries_in("uk") == {"GB"}  # the UK's own code


def test_places_are_read_in_the_texts_language_and_in_english() -> None:
    assert countries_named("¿Cuánto tarda el envío a México?", ["es"]) == ["MX"]
    assert countries_named("한국으로 배송하는 데 얼마나 걸려요?", ["ko"]) == ["KR"]
    assert countries_named("대한민국 배송", ["ko"]) == ["KR"]
    assert countries_named("发往日本、韩国和墨西哥", ["zh"]) == ["JP", "KR", "MX"]
    assert countries_named("Japan, South Korea, Hong Kong, Macau, Taiwan", ["en"]) == [
        "JP",
        "KR",
        "HK",
        "MO",
        "TW",
    ]


def test_longer_names_and_carrier_names_are_not_countries() -> None:
    assert countries_named("Papua New Guinea and North Korea") == ["PG", "KP"]
    assert countries_named("Sent by China Post, cut-off 14:00 China Standard Time") == []
    assert countries_named("中国邮政不承运任何含锂电池的商品。", ["zh"]) == []
    assert countries_named("Contact us; fees from US$9.99") == []
    assert countries_named("Standard shipping to PO boxes is possible in the US") == ["US"]


def test_regions_named_in_text_are_found_as_regions() -> None:
    places = find_places("Zone 3 Europe & UK: 27 EU countries, United Kingdom, Norway")
    assert [p.region for p in places if p.region] == ["Europe & UK", "European Union"]
    assert [p.country for p in places if p.country] == ["GB", "NO"]
    assert [p.region for p in find_places("5 Latin America")] == ["Latin America"]


@pytest.mark.parametrize(
    ("text", "langs", "country"),
    [
        # the short names shoppers write, where CLDR has the long one
        ("Gửi hàng sang Nhật mất bao lâu?", ("vi",), "JP"),
        ("Ship đi Úc bao nhiêu tiền?", ("vi",), "AU"),
        ("호주까지 배송비가 얼마예요?", ("ko",), "AU"),
        ("寄到澳洲要多久", ("zh",), "AU"),
        ("Сколько идёт доставка в США?", ("ru",), "US"),
        ("ABD'ye kargo ne kadar sürer?", ("tr",), "US"),
        # scripts without spaces between words: the name inside a run of text
        ("ส่งไปญี่ปุ่นกี่วันคะ", ("th",), "JP"),
        ("ဂျပန်ကို ပို့ရင် ဘယ်လောက်ကြာလဲ", ("my",), "JP"),
    ],
)
def test_short_and_unspaced_country_names_are_found(
    text: str, langs: tuple[str, ...], country: str
) -> None:
    assert countries_named(text, langs) == [country]


def test_words_that_contain_a_short_name_are_not_places() -> None:
    # Vietnamese: Sunday, update, birthday, cosmetics
    for text in ["Có giao hàng vào chủ nhật không?", "Tôi muốn cập nhật địa chỉ", "quà sinh nhật"]:
        assert countries_named(text, ("vi",)) == []
    assert countries_named("Gửi mỹ phẩm sang Nhật được không?", ("vi",)) == ["JP"]
