"""Scope: whom and what a fact applies to (markets, products, service level, customer segment),
and the multilingual words that put a text in a service level or segment (data/scope_words.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml

from rag.knowledge.regions import countries_in, norm


@dataclass(frozen=True)
class Scope:
    """What a fact applies to. Empty fields mean "not restricted".

    countries and regions are the markets the fact is *about* (a table row's countries, a
    heading's or a document's markets); mentions are countries a sentence only names in
    passing ("ships from Shenzhen, China"), which make it relevant to them but do not exclude
    anyone else."""

    countries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    mentions: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    service: str | None = None
    segment: str | None = None
    # the orders a fact is about, by total: (currency, above, up_to); from a heading such as
    # "Orders up to €150" or "Orders above ¥10,000" (never from a statement's own threshold:
    # "free from $79" answers every order total)
    band: tuple[str, float | None, float | None] | None = None

    @property
    def markets(self) -> frozenset[str]:
        """Every country the fact applies to: those it names and those of its regions."""
        out = set(self.countries)
        for region in self.regions:
            out |= countries_in(region)
        return frozenset(out)

    @property
    def is_market_specific(self) -> bool:
        return bool(self.countries or self.regions)


@lru_cache(maxsize=1)
def _words() -> dict[str, Any]:
    data = yaml.safe_load(
        (files("rag.knowledge") / "data" / "scope_words.yaml").read_text(encoding="utf-8")
    )
    assert isinstance(data, dict)
    return data


def _cjk(text: str) -> bool:
    return any(ord(c) > 0x2E80 for c in text)


@lru_cache(maxsize=8)
def _pattern(table: str) -> list[tuple[re.Pattern[str], str]]:
    out: list[tuple[re.Pattern[str], str]] = []
    for key, words in _words()[table].items():
        for word in sorted((norm(str(w)) for w in words), key=len, reverse=True):
            body = re.escape(word)
            out.append((re.compile(body if _cjk(word) else rf"(?<!\w){body}(?!\w)"), str(key)))
    return out


def _found(table: str, text: str) -> list[str]:
    t = norm(text)
    for phrase in _words().get("not_a_service", []):
        t = t.replace(norm(str(phrase)), " ")
    return list(dict.fromkeys(key for pattern, key in _pattern(table) if pattern.search(t)))


def service_levels_in(text: str) -> list[str]:
    """The service levels a text names ("standard", "express", "economy"), in table order."""
    return _found("service_levels", text)


def service_level(text: str) -> str | None:
    """The one service level a text is about, or None when it names none or several."""
    found = service_levels_in(text)
    return found[0] if len(found) == 1 else None


def segment(text: str) -> str | None:
    """The customer segment a text is about ("business"), or None."""
    found = _found("segments", text)
    return found[0] if len(found) == 1 else None


def services_compatible(a: str, b: str) -> bool:
    """True when a question about service `a` may be answered by a fact about service `b`."""
    if a == b:
        return True
    return any({a, b} <= set(pair) for pair in _words().get("compatible", []))
