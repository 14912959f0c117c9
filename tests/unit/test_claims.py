"""Claim checks on a reply restated from facts (rag/guardrails/claims.py)."""

from __future__ import annotations

import pytest

from rag.guardrails.claims import claim_problem, strip_verdict, verdict_problem

MEXICO_STANDARD = (
    "Shipping zones › Zones, delivery times and fees — Zone: 5 Latin America; Standard carrier: "
    "4PX; Standard time: 10–20 days; Standard fee: $9.99; Free standard shipping from: $79"
)
MEXICO_NOTE = "Mexico usually takes 10–18 business days by standard shipping."
EXPRESS = "Zone: 5 Latin America; Express carrier: DHL Express; Express time: 4–7 days; $34.99"


@pytest.mark.parametrize(
    ("reply", "lang", "expected"),
    [
        ("Yes, shipping is free from $79.", "en", "Shipping is free from $79."),
        ("No. The charger is sold separately.", "en", "The charger is sold separately."),
        ("Sí, el envío tarda 10–18 días.", "es", "El envío tarda 10–18 días."),
        ("是的，运费为9.99美元。", "zh", "运费为9.99美元。"),
        ("はい、送料は無料です。", "ja", "送料は無料です。"),
        ("Ja, der Versand ist kostenlos.", "de", "Der Versand ist kostenlos."),
        ("Evet, kargo ücretsiz.", "tr", "Kargo ücretsiz."),
        ("Ndiyo, usafirishaji ni bure.", "sw", "Usafirishaji ni bure."),
    ],
)
def test_an_opening_verdict_is_removed_in_every_language(
    reply: str, lang: str, expected: str
) -> None:
    assert strip_verdict(reply, lang) == expected


@pytest.mark.parametrize(
    ("reply", "lang"),
    [
        ("Nobody pays duties on orders under $800.", "en"),  # "No" inside a word
        ("不包括充电器。", "zh"),  # 不 opens a verb phrase, not a verdict
        ("Standard shipping takes 10–18 days.", "en"),
    ],
)
def test_words_that_only_start_like_a_verdict_stay(reply: str, lang: str) -> None:
    assert strip_verdict(reply, lang) == reply


def test_a_reply_that_is_only_a_verdict_becomes_empty() -> None:
    assert strip_verdict("Yes.", "en") == ""


def test_the_neighbouring_rows_numbers_are_caught() -> None:
    problem = claim_problem(
        "Standard shipping to Mexico takes 4–7 days.", [MEXICO_STANDARD, MEXICO_NOTE], "Mexico?"
    )
    assert problem == "range not in FACTS: 4–7"


def test_a_restated_fact_passes_in_another_language() -> None:
    reply = "El envío estándar a México tarda de 10 a 18 días hábiles y cuesta 9,99 US$."
    assert claim_problem(reply, [MEXICO_NOTE, MEXICO_STANDARD], "¿Cuánto tarda?") is None


def test_a_range_cut_to_one_end_is_a_dropped_part() -> None:
    problem = claim_problem("Shipping to Mexico takes 18 days.", [MEXICO_NOTE], "How long?")
    assert problem is not None
    assert problem.startswith("range cut")


def test_the_shoppers_own_order_total_may_be_repeated() -> None:
    reply = "Your order of $60 is below the $79 threshold, so standard shipping costs $9.99."
    assert claim_problem(reply, [MEXICO_STANDARD], "My order is $60, is shipping free?") is None


def test_a_fact_without_figures_needs_none() -> None:
    fact = "Express shipping is never free."
    assert claim_problem("Express shipping is never free.", [fact], "Is express free?") is None
    assert claim_problem("Express shipping costs $5.", [fact], "Is express free?") is not None


def test_other_rows_numbers_in_the_chosen_facts_are_allowed_but_not_invented_ones() -> None:
    facts = [MEXICO_NOTE, EXPRESS]
    assert claim_problem("Express takes 4–7 days, standard 10–18.", facts, "How long?") is None
    assert claim_problem("Express takes 3–5 days.", facts, "How long?") is not None


SKILLET = (
    "Frequently asked questions — Can I put the cast iron skillet or the bamboo board in the "
    "dishwasher? No. Hand wash both and dry them right away."
)


def test_a_yes_inside_a_draft_against_the_facts_no_is_caught() -> None:
    """A German restatement that echoes the question twice, "Nein" then "Ja" (seen with the
    1.5B model on the golden set): the "Ja" contradicts the fact's "No"."""
    draft = (
        "Kann ich die Gusseisenpfanne in die Spülmaschine geben? Nein. Kann ich die Pfanne in "
        "die Spülmaschine geben? Ja, von Hand waschen."
    )
    assert verdict_problem(draft, [SKILLET], "de")
    assert verdict_problem("Darf sie in die Spülmaschine? Ja, natürlich.", [SKILLET], "de")
    faithful = "Darf die Pfanne in die Spülmaschine? Nein. Beide von Hand waschen."
    assert verdict_problem(faithful, [SKILLET], "de") is None


def test_a_no_that_opens_a_statement_is_not_a_verdict() -> None:
    """ "No se aceptan devoluciones" is a negation, not an answer; a reply with no yes or no is
    left alone, and facts that give both answers allow both."""
    assert (
        verdict_problem("No se aceptan devoluciones de artículos usados.", [SKILLET], "es") is None
    )
    assert verdict_problem("Enviamos a México en 10–18 días.", [SKILLET], "es") is None
    both = ["Do you ship to Chile? Yes.", "Can I pay in cash? No."]
    assert verdict_problem("¿Envían a Chile? Sí. ¿Puedo pagar en efectivo? No.", both, "es") is None


def test_a_number_given_in_another_unit_of_time_is_caught() -> None:
    """ "10 business days" restated as "10 Geschäftswochen" (seen on the golden set) keeps the
    number and changes the wait tenfold; a battery's runtime in hours is not a runtime in days."""
    from rag.guardrails.claims import unit_problem

    trace = [
        "Tracking — If there is no update for 10 business days (standard) or 5 business days "
        "(express), contact us and we open a trace with the carrier."
    ]
    wrong = "Wenn es 10 Geschäftswochen (Standard) oder 5 Geschäftswochen keine Aktualisierung gibt"
    assert unit_problem(wrong, trace)
    assert unit_problem("Nach 10 Werktagen (Standard) oder 5 Werktagen (Express)", trace) is None
    assert unit_problem("标准快递需要4–8周。", ["Japan — standard 4–8 business days"])
    assert unit_problem("标准快递需要4–8天。", ["Japan — standard 4–8 business days"]) is None
    flask = ["Keeps drinks hot for 12 hours and cold for 24 hours"]
    assert unit_problem("Mantiene caliente 12 días.", flask)
    assert unit_problem("Mantiene caliente 12 horas y frío 24 horas.", flask) is None
