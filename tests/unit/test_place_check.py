"""A translated fact may not name a country the facts do not name: a small model turned
"Switzerland" into "Suède" (Sweden) in a French reply, a claim no number check sees."""

from __future__ import annotations

import pytest

from rag.guardrails.claims import place_problem

ZONE = (
    "Zones, delivery times and fees — Zone: 3 Europe & UK; Countries (examples): 27 EU "
    "countries, United Kingdom, Norway, Switzerland, Iceland; Standard time: 7–14 days"
)


def test_a_country_swapped_in_translation_is_caught() -> None:
    swapped = "Zone 3 : 27 pays de l'UE, Royaume-Uni, Norvège, Suède, Islande ; 7–14 jours"
    assert place_problem(swapped, [ZONE], "fr") == "countries not in FACTS: SE"
    # a country the facts do not name, added to a rule written for a zone, is a claim too
    added = "Zone 3 Europa (Deutschland, Schweiz, Norwegen): 7–14 Tage"
    assert place_problem(added, [ZONE], "de") == "countries not in FACTS: DE"


@pytest.mark.parametrize(
    ("lang", "reply"),
    [
        ("fr", "Zone 3 : 27 pays de l'UE, Royaume-Uni, Norvège, Suisse, Islande ; 7–14 jours"),
        (
            "ja",
            "ゾーン3：EU27か国、イギリス、ノルウェー、スイス、アイスランド。7–14日",
        ),
        ("zh", "第3区 欧洲和英国：欧盟27国、英国、挪威、瑞士、冰岛；标准 7–14 天"),
        ("es", "Zona 3: 27 países de la UE, Reino Unido, Noruega, Suiza, Islandia; 7–14 días"),
        ("vi", "Khu vực 3 Châu Âu & Anh: 27 nước EU, Anh, Na Uy, Thụy Sĩ, Iceland; 7–14 ngày"),
        ("tr", "Bölge 3: 27 AB ülkesi, Birleşik Krallık, Norveç, İsviçre, İzlanda; 7–14 gün"),
        ("ar", "المنطقة 3: المملكة المتحدة، النرويج، سويسرا، أيسلندا؛ 7–14 يومًا"),
        ("th", "โซน 3 ยุโรป: สหราชอาณาจักร นอร์เวย์ สวิตเซอร์แลนด์ ไอซ์แลนด์ 7–14 วัน"),
        ("ko", "3구역 유럽 및 영국: EU 27개국, 영국, 노르웨이, 스위스, 아이슬란드; 7–14일"),
        ("sw", "Eneo 3 Ulaya: Uingereza, Norwe, Uswisi, Aislandi; siku 7–14"),
    ],
)
def test_a_faithful_translation_names_the_same_countries(lang: str, reply: str) -> None:
    assert place_problem(reply, [ZONE], lang) is None


def test_carriers_and_regions_are_not_countries() -> None:
    fact = (
        "Standard carrier: China Post Registered Air Mail to the Middle East & Africa: 12–25 days"
    )
    reply = "Transporteur standard : China Post vers le Moyen-Orient et l'Afrique : 12–25 jours"
    assert place_problem(reply, [fact], "fr") is None


def test_the_country_a_fact_is_about_may_be_named() -> None:
    """ "Japanese shoppers" in a fact from the Japan page becomes "shoppers in Japan" in a
    Japanese reply: the fact's document title (passed with the facts) puts Japan in scope."""
    fact = "Paying for your order — Japanese shoppers can pay at convenience stores (Konbini)."
    reply = "日本のお客様はコンビニ（Konbini）でお支払いいただけます。"
    assert place_problem(reply, [fact], "ja") == "countries not in FACTS: JP"
    assert place_problem(reply, [fact, "Japan consumption tax and import duty"], "ja") is None
