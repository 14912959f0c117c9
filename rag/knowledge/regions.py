"""Regions: the countries a region covers, the regions a country belongs to, and the places a
text names, in any language.

A shipping table says "5 Latin America" or "Middle East & Africa"; a shopper asks about
"México" or "한국". Matching the two needs region membership from data, not from the document's
wording: CLDR's territory containment (UN M.49, with names in every language from Babel) plus a
short table of the trade names sellers use (data/regions.yaml).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError

from rag.lang.countries import CODE_ALIASES, NAME_ALIASES

# Regions too wide to tell anything about a shipment.
_TOO_WIDE = frozenset({"001"})
_MIN_LATIN_NAME = 4  # shorter Latin names ("Mali" is 4) come only from the alias tables
_MIN_LEN_EXACT = 4  # "US", "EU", "UAE", "GCC": upper-case codes match only as written


def _load(name: str) -> Any:
    return yaml.safe_load((files("rag.knowledge") / "data" / name).read_text(encoding="utf-8"))


def norm(text: str) -> str:
    """The form names are compared in: NFKC, case-folded, typographic quotes made plain."""
    return unicodedata.normalize("NFKC", text).casefold().replace("’", "'")


def spaceless(text: str) -> bool:
    """Whether a name is written in a script without spaces between words (CJK, Thai, Lao,
    Khmer, Burmese), where it is found inside a run of text rather than as a whole word."""
    return any(
        ord(c) > 0x2E80
        or 0x0E00 <= ord(c) <= 0x0EFF
        or 0x1000 <= ord(c) <= 0x109F
        or 0x1780 <= ord(c) <= 0x17FF
        for c in text
    )


@lru_cache(maxsize=1)
def _containment() -> dict[str, tuple[str, ...]]:
    data = _load("territory_containment.yaml")
    return {str(k): tuple(str(v) for v in vs) for k, vs in data.items()}


@lru_cache(maxsize=1)
def _tables() -> dict[str, Any]:
    data = _load("regions.yaml")
    assert isinstance(data, dict)
    return data


def _is_country(code: str) -> bool:
    return len(code) == 2 and code.isalpha() and code.isupper() and code not in _containment()


def _expand(code: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """The countries inside a CLDR region (recursively), or the country itself."""
    if code in seen:
        return frozenset()
    children = _containment().get(code)
    if children is None:
        return frozenset({code}) if _is_country(code) else frozenset()
    out: set[str] = set()
    for child in children:
        out |= _expand(child, seen | {code})
    return frozenset(out)


@lru_cache(maxsize=1)
def _groupings() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for name, spec in _tables()["groupings"].items():
        members: set[str] = set()
        for m in spec["members"]:
            members |= _expand(str(m))
        out[str(name)] = frozenset(members)
    return out


def _name_locales() -> list[str]:
    from rag.lang.frames import languages

    return sorted({"en", *languages()})


@lru_cache(maxsize=1)
def _region_index() -> dict[str, str]:
    """Every name and code of a region, normalised -> its canonical key (a grouping's name, or
    a CLDR code). Groupings come first so that a seller's "North America" is theirs."""
    index: dict[str, str] = {}
    for key, spec in _tables()["groupings"].items():
        index.setdefault(norm(key), key)
        for name in spec.get("names", []):
            index.setdefault(norm(str(name)), key)
    for code in _containment():
        index.setdefault(norm(code), code)
    for lang in _name_locales():
        try:
            names = Locale.parse(lang).territories
        except (ValueError, UnknownLocaleError):
            continue
        for code in _containment():
            if code in names and code not in _TOO_WIDE:
                index.setdefault(norm(names[code]), code)
    return index


def resolve_region(name_or_code: str) -> str | None:
    """The canonical key of a region named in any language ("América Latina" -> "Latin
    America", "419" -> "419", "EU" -> "European Union"), or None when it is not a region."""
    return _region_index().get(norm(name_or_code.strip()))


def countries_in(name_or_code: str) -> frozenset[str]:
    """The ISO countries a region (any name, any language, or a CLDR code) or country code
    covers; empty when nothing is known by that name."""
    raw = name_or_code.strip()
    code = CODE_ALIASES.get(raw.upper(), raw.upper())
    if _is_country(code) and len(raw) == 2:
        return frozenset({code})
    key = resolve_region(raw)
    if key is None:
        return frozenset()
    groupings = _groupings()
    return groupings[key] if key in groupings else _expand(key)


@lru_cache(maxsize=512)
def regions_of(country: str) -> frozenset[str]:
    """Every region a country belongs to, by CLDR code and English name and by the trade names
    in data/regions.yaml: 'MX' -> {'013', 'Central America', '419', 'Latin America', ...}.
    A CLDR English name that a grouping redefines is given only when the grouping agrees."""
    c = CODE_ALIASES.get(country.strip().upper(), country.strip().upper())
    out: set[str] = set()
    groupings = _groupings()
    english = Locale.parse("en").territories
    for code in _containment():
        if code in _TOO_WIDE or c not in _expand(code):
            continue
        out.add(code)
        name = english.get(code)
        if name and (name not in groupings or c in groupings[name]):
            out.add(str(name))
    out.update(key for key, members in groupings.items() if c in members)
    return frozenset(out)


# ---- places named in a text --------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A place named in a text: a country (ISO code) or a region (canonical key)."""

    country: str | None = None
    region: str | None = None


@lru_cache(maxsize=32)
def _place_names(langs: tuple[str, ...]) -> list[tuple[str, Place, bool]]:
    """(normalised name, place, case-sensitive) longest first, for names in these languages."""
    names: dict[str, tuple[Place, bool]] = {}

    def add(name: str, place: Place) -> None:
        exact = len(name) <= _MIN_LEN_EXACT and name.isupper()
        key = name if exact else norm(name)
        names.setdefault(key, (place, exact))

    for code, aliases in _tables().get("country_aliases", {}).items():
        for alias in aliases:
            add(str(alias), Place(country=str(code)))
    for code, aliases in NAME_ALIASES.items():
        for alias in aliases:
            add(alias, Place(country=code))
    add("US", Place(country="US"))
    for name, key in _region_index().items():
        original = _region_original_names().get(name, name)
        if name.isdigit():
            continue  # M.49 codes are not written in prose; "030" is a number there
        if len(name) >= _MIN_LATIN_NAME or spaceless(name) or original.isupper():
            add(original, Place(region=key))
    for lang in sorted({"en", *langs}):
        try:
            territories = Locale.parse(lang.replace("-", "_")).territories
        except (ValueError, UnknownLocaleError):
            continue
        for code, name in territories.items():
            if _is_country(code) and (len(name) >= _MIN_LATIN_NAME or spaceless(name)):
                add(str(name), Place(country=code))
    return sorted(
        ((k, p, exact) for k, (p, exact) in names.items()), key=lambda item: -len(item[0])
    )


@lru_cache(maxsize=1)
def _region_original_names() -> dict[str, str]:
    """Normalised -> as written, for the groupings' short upper-case names ("EU", "MEA")."""
    out: dict[str, str] = {}
    for key, spec in _tables()["groupings"].items():
        for name in [key, *spec.get("names", [])]:
            out.setdefault(norm(str(name)), str(name))
    return out


def find_places(text: str, langs: Iterable[str] = ("en",)) -> list[Place]:
    """The countries and regions a text names, in the order it names them, reading names in
    English and in `langs`. A longer name wins over one inside it ("Papua New Guinea" is not
    Guinea, "Latin America" is not America); "China Post" is a carrier, not China."""
    folded = norm(text)
    exact_text = unicodedata.normalize("NFKC", text)
    if len(exact_text) != len(folded):  # case folding changed lengths (ß): match exact on folded
        exact_text = folded
    taken = [False] * len(folded)
    found: list[tuple[int, Place]] = []
    after = tuple(str(s) for s in _tables().get("not_a_place_after", []))
    before = tuple(norm(str(s)) for s in _tables().get("not_a_place_before", []))
    for name, place, exact in _place_names(tuple(sorted(set(langs)))):
        haystack = exact_text if exact else folded
        if name not in haystack:
            continue
        pattern = re.escape(name) if spaceless(name) else rf"(?<!\w){re.escape(name)}(?![\w$])"
        for m in re.finditer(pattern, haystack):
            start, end = m.span()
            if any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            if folded[end:].startswith(after) or folded[:start].endswith(before):
                continue
            found.append((start, place))
    return [p for _, p in sorted(found, key=lambda item: item[0])]


def countries_named(text: str, langs: Iterable[str] = ("en",)) -> list[str]:
    """The ISO codes of the countries a text names, in order, without repeats."""
    return list(dict.fromkeys(p.country for p in find_places(text, langs) if p.country))
