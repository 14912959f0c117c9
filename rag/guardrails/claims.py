"""Claim checks on a reply drafted from facts: the model is not a source of facts.

A reply may state only numbers that the selected facts (or the shopper's own question) state;
a range is stated whole or not at all ("10–18" cut to "10" is a dropped part, "4–7" where the
facts say "4–8" is a wrong row); and an opening verdict ("Yes, …", "No, …")
is removed, since the restated fact carries the answer and a small model says "Yes" where the
policy says no.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files

import yaml

from rag.guardrails.grounding import ungrounded_numbers
from rag.knowledge.blocks import quantities_in
from rag.knowledge.regions import countries_named
from rag.textutil import numbers_in


@lru_cache(maxsize=1)
def _verdict_words() -> dict[str, list[str]]:
    raw = (files("rag.guardrails") / "data" / "verdicts.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    assert isinstance(data, dict)
    return {str(k): [str(w) for w in v] for k, v in data.items()}


@lru_cache(maxsize=64)
def _opener(lang: str) -> re.Pattern[str] | None:
    words = _verdict_words().get(lang.split("-")[0])
    if not words:
        return None
    alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    # the word, then punctuation, a space or the end: "No," and "はい、" but not "Nobody"
    return re.compile(rf"^\s*(?:{alts})(?:\s*[,.!、，。！;:：—–-]+\s*|\s+|$)", re.IGNORECASE)


def strip_verdict(reply: str, lang: str) -> str:
    """The reply without an opening yes/no word (the first letter of the rest capitalised);
    "" when the reply was only a verdict."""
    pattern = _opener(lang)
    text = unicodedata.normalize("NFC", reply)
    m = pattern.match(text) if pattern is not None else None
    if m is None:
        return reply
    rest = text[m.end() :].strip()
    return rest[:1].upper() + rest[1:]


def _ranges(texts: Sequence[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for t in texts:
        for q in quantities_in(t):
            if "–" in q:
                a, b = q.split("–", 1)
                out.append((next(iter(numbers_in(a)), a), next(iter(numbers_in(b)), b)))
    return out


def _singles(texts: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for t in texts:
        for q in quantities_in(t):
            if "–" not in q:
                out |= numbers_in(q)
    return out


def claim_problem(reply: str, facts: Sequence[str], question: str) -> str | None:
    """Why a reply drafted from `facts` (statements, the answer fact first) cannot be shipped,
    or None. Numbers the shopper wrote in the question may be repeated."""
    known = set(_ranges([*facts, question]))
    for a, b in _ranges([reply]):
        if (a, b) not in known:
            return f"range not in FACTS: {a}–{b}"
    bad = ungrounded_numbers(reply, [*facts, question])
    if bad:
        return "numbers not in FACTS: " + ", ".join(sorted(bad))
    said = numbers_in(reply)
    singles = _singles([*facts, question])
    ranges = _ranges(facts)
    whole = {n for a, b in ranges if a in said and b in said for n in (a, b)}
    for a, b in ranges:
        for x, y in ((a, b), (b, a)):
            if x in said and y not in said and x not in singles | whole:
                return f"range cut: give {a}–{b} whole"
    return None


def place_problem(reply: str, facts: Sequence[str], lang: str) -> str | None:
    """A country the reply names that none of `facts` names (a translation that turned
    Switzerland into Sweden, or Mexico into the USA), or None. Names are read in the reply's
    language and in English; regions ("EU", "Europe") are not checked."""
    langs = tuple(dict.fromkeys((lang.split("-")[0], "en")))
    known = set(countries_named("\n".join(facts), langs))
    extra = [c for c in countries_named(reply, langs) if c not in known]
    if extra:
        return "countries not in FACTS: " + ", ".join(extra)
    return None
