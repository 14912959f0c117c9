"""rag/lang: the frames and phrase lists are complete for every language kefu speaks, their
language and country codes are real (Babel's), and country names are read from messages."""

from __future__ import annotations

import string

import pytest
from babel import Locale

from rag.commerce.delivery import country_names
from rag.commerce.markets import normalize_market
from rag.lang.countries import (
    CODE_ALIASES,
    EXTRA_NAME_LOCALES,
    NAME_ALIASES,
    country_mentioned,
    country_name_in,
)
from rag.lang.frames import FALLBACK, _frames, frame, languages, phrases

LANGS = languages()
FRAME_KEYS = sorted(k for k in _frames()[FALLBACK] if not k.startswith("_"))
PHRASE_KINDS = sorted(k[1 : -len("_phrases")] for k in _frames() if k.startswith("_"))
ISO_TERRITORIES = set(Locale("en").territories)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_data_holds_languages_frames_and_phrase_lists() -> None:
    assert len(LANGS) >= 18
    assert {"order_status_delivered", "handoff", "dont_know"} <= set(FRAME_KEYS)
    assert {"human_request", "legal_threat", "chargeback", "order_noun"} <= set(PHRASE_KINDS)
    # every top-level key is a language or a phrase list: nothing else hides in the files
    assert set(_frames()) == set(LANGS) | {f"_{k}_phrases" for k in PHRASE_KINDS}


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_is_a_babel_locale(lang: str) -> None:
    assert Locale.parse(lang).language == lang


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_has_every_frame_with_the_same_placeholders(lang: str) -> None:
    table = _frames()[lang]
    assert sorted(table) == FRAME_KEYS
    for key in FRAME_KEYS:
        text = table[key]
        assert isinstance(text, str), (lang, key)
        assert text.strip(), (lang, key)
        assert _placeholders(text) == _placeholders(_frames()[FALLBACK][key]), (lang, key)


@pytest.mark.parametrize("kind", PHRASE_KINDS)
def test_every_phrase_list_covers_every_language(kind: str) -> None:
    lists = phrases(kind)
    assert sorted(lists) == LANGS
    for lang, found in lists.items():
        assert found, (kind, lang)
        # matched on the case-folded message: a capital letter would never match
        assert all(p.strip() and p == p.casefold() for p in found), (kind, lang)


def test_a_language_without_frames_gets_english() -> None:
    assert frame("xx", "dont_know") == frame("en", "dont_know")
    assert frame("es", "source_line", title="Envíos") == _frames()["es"]["source_line"].format(
        title="Envíos"
    )


def test_country_codes_and_locales_are_babels() -> None:
    assert set(NAME_ALIASES) <= ISO_TERRITORIES
    assert set(CODE_ALIASES.values()) <= ISO_TERRITORIES
    assert not set(CODE_ALIASES) & ISO_TERRITORIES  # an alias never shadows a real code
    for code in EXTRA_NAME_LOCALES:
        assert Locale.parse(code).language == code
    assert not set(EXTRA_NAME_LOCALES) & set(LANGS)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("¿Cuánto tarda el envío a México?", "MX"),
        ("I moved from Canada to the USA, where do you ship?", "US"),
        ("Do you deliver to Britain?", "GB"),
        ("do you ship to Korea", "KR"),
        ("do you ship to North Korea", "KP"),  # not the "Korea" inside it
        ("shipping to Papua New Guinea", "PG"),  # not Guinea
        ("配送到日本需要多久？", "JP"),
        ("what is your returns policy", None),
    ],
)
def test_the_last_country_named_in_a_message(message: str, code: str | None) -> None:
    assert country_mentioned(message) == code


def test_one_alias_table_serves_messages_policies_and_market_codes() -> None:
    for code, aliases in NAME_ALIASES.items():
        assert set(aliases) <= set(country_names(code))  # shipping policies
        for alias in aliases:
            assert country_mentioned(f"shipping to {alias} please") == code  # messages
    assert normalize_market("uk") == "GB"
    assert normalize_market("EL") == "GR"
    assert country_name_in("MX", "es") == "México"
