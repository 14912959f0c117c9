"""What kind of quantity a question asks for, and whether a fact states one.

"How long does shipping to Australia take?" asks for a duration: the shipping table's row
("7–14 business days") answers it, a customs page that only names Australia does not, although
both are about Australia and close to the question in embedding space. "What does it cost?"
asks for an amount of money. Fact selection (rag/knowledge/selection.py) ranks a fact that
states the kind asked for above one that does not. Cue words and units are data
(data/asked_words.yaml), in the golden set's languages.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml

from rag.knowledge.entities import amounts_in
from rag.knowledge.regions import norm

DURATION = "duration"
MONEY = "money"


@lru_cache(maxsize=1)
def _words() -> dict[str, Any]:
    data = yaml.safe_load(
        (files("rag.knowledge") / "data" / "asked_words.yaml").read_text(encoding="utf-8")
    )
    assert isinstance(data, dict)
    return data


def _spaced(word: str) -> bool:
    """Whether a cue matches as a whole word (Latin, Cyrillic, Devanagari…); CJK, Thai and
    Burmese cues match as substrings, and so do Arabic ones, whose words take attached
    prefixes and suffixes ("وكم تكلفته": and how much is its cost)."""
    return not any(
        0x0600 <= ord(c) <= 0x06FF
        or 0x0E00 <= ord(c) <= 0x0E7F
        or 0x1000 <= ord(c) <= 0x109F
        or ord(c) >= 0x2E80
        for c in word
    )


def _alternation(words: list[str]) -> str:
    parts = []
    for w in sorted({norm(str(x)) for x in words}, key=len, reverse=True):
        body = re.escape(w)
        parts.append(rf"(?<!\w){body}(?!\w)" if _spaced(w) else body)
    return "|".join(parts)


@lru_cache(maxsize=1)
def _question_patterns() -> dict[str, re.Pattern[str]]:
    return {
        kind: re.compile(_alternation(list(words))) for kind, words in _words()["questions"].items()
    }


@lru_cache(maxsize=1)
def _duration_pattern() -> re.Pattern[str]:
    units = [norm(str(u)) for u in _words()["duration_units"]]
    spaced = sorted((u for u in units if _spaced(u)), key=len, reverse=True)
    unspaced = sorted((u for u in units if not _spaced(u)), key=len, reverse=True)
    alts = [rf"{re.escape(u)}(?!\w)" for u in spaced] + [re.escape(u) for u in unspaced]
    # a number, optionally a range's far end, then the unit ("7–14 business days", "3〜5営業日",
    # "10 a 18 días", "2-3 Werktage")
    to = r"(?:[-–—~〜～]|to|a|bis|à|al|до|ila|hadi)"
    return re.compile(rf"\d+(?:\s*{to}\s*\d+)?\s*(?:{'|'.join(alts)})")


def asked_kinds(question: str) -> frozenset[str]:
    """The kinds of quantity a question asks for (`duration`, `money`); empty when it asks for
    neither (a yes/no or a procedure)."""
    t = norm(question)
    return frozenset(kind for kind, p in _question_patterns().items() if p.search(t))


def stated_kinds(statement: str, *, lang: str = "en") -> frozenset[str]:
    """The kinds of quantity a fact states."""
    kinds = set()
    if _duration_pattern().search(norm(statement)):
        kinds.add(DURATION)
    if amounts_in(statement, lang=lang):
        kinds.add(MONEY)
    return frozenset(kinds)


CELL_SEP = "; "  # between a table row's "header: value" cells (rag/knowledge/facts.py)


def asked_cells(statement: str, asks: frozenset[str], *, lang: str = "en") -> str:
    """A table row's statement cut to what was asked: the cells that state another kind of
    quantity than the one asked for are left out ("how long to Germany?" keeps the zone, the
    countries, the carrier and the delivery time, not the fees). The row stays whole when the
    question asks for no kind, or when no cell states the kind asked for."""
    if not asks:
        return statement
    cells = statement.split(CELL_SEP)
    kinds = [stated_kinds(c, lang=lang) for c in cells]
    if len(cells) < 2 or not any(k & asks for k in kinds):
        return statement
    return CELL_SEP.join(c for c, k in zip(cells, kinds, strict=True) if not k or k & asks)
