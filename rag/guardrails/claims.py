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
from rag.knowledge.regions import countries_named, spaceless
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


@lru_cache(maxsize=1)
def _polarity_words() -> dict[str, dict[str, list[str]]]:
    raw = (files("rag.guardrails") / "data" / "verdict_polarity.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    assert isinstance(data, dict)
    return {
        str(k): {p: [str(w) for w in v.get(p, [])] for p in ("yes", "no")} for k, v in data.items()
    }


@lru_cache(maxsize=64)
def _sentence_verdicts(langs: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    """(polarity, pattern of a yes/no word opening a sentence) for these languages."""
    out: list[tuple[str, re.Pattern[str]]] = []
    for polarity in ("yes", "no"):
        words = {w for lang in langs for w in _polarity_words().get(lang, {}).get(polarity, [])}
        if not words:
            continue
        alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        out.append(
            (
                polarity,
                re.compile(
                    rf"(?:^|[.?!。？！؟]\s*|\n\s*)(?:{alts})(?=\s*[,.!、，。！;:：]|\s*$)",
                    re.IGNORECASE | re.MULTILINE,
                ),
            )
        )
    return out


def _polarities(text: str, langs: tuple[str, ...]) -> set[str]:
    t = unicodedata.normalize("NFC", text)
    return {polarity for polarity, p in _sentence_verdicts(langs) if p.search(t)}


def verdict_problem(reply: str, facts: Sequence[str], lang: str) -> str | None:
    """A yes or no the reply states against the facts: both ("? Nein. … ? Ja, …"), or the one
    the facts do not give where they give the other (a fact "… dishwasher? No. Hand wash" restated
    with "Ja"). A verdict where the facts state none is left to the opening-verdict removal."""
    langs = tuple(dict.fromkeys((lang.split("-")[0], "en")))
    said = _polarities(reply, langs)
    if not said:
        return None
    given = _polarities("\n".join(facts), tuple(dict.fromkeys((*langs, "es", "zh"))))
    if len(said) > 1 and not said <= given:
        return "states both yes and no: restate the FACTS' answer only"
    if given and not said & given:
        return f"says {next(iter(said))} where the FACTS say {next(iter(given))}"
    return None


@lru_cache(maxsize=1)
def _unit_kinds() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(alphabetic unit -> kind, [(unit in a script without spaces, kind)] longest first)."""
    raw = (files("rag.guardrails") / "data" / "units.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    assert isinstance(data, dict)
    words: dict[str, str] = {}
    glyphs: list[tuple[str, str]] = []
    for kind, units in data.items():
        for u in units:
            u = unicodedata.normalize("NFC", str(u)).casefold()
            if spaceless(u):
                glyphs.append((u, str(kind)))
            else:
                words.setdefault(u, str(kind))
    glyphs.sort(key=lambda g: -len(g[0]))
    return words, glyphs


_QUANTITY = re.compile(r"(\d+(?:[.,]\d+)?)(?:\s*[–—~〜-]\s*(\d+(?:[.,]\d+)?))?")


def _unit_after(text: str) -> str | None:
    """The kind of the time unit that follows a number ("business days", "Geschäftswochen",
    "天"), looking at most two words ahead; None when none follows."""
    words, glyphs = _unit_kinds()
    head = text.lstrip()
    for glyph, kind in glyphs:
        if head.startswith(glyph):
            return kind
    tokens = re.findall(r"[^\W\d_]+", head[:60])[:2]
    for i, tok in enumerate(tokens):
        for n in (2, 1):  # "business days", then "days"
            phrase = " ".join(tokens[i : i + n])
            if phrase in words:
                return words[phrase]
        for unit, kind in words.items():  # the end of a compound: "geschäftswochen"
            if len(unit) >= 4 and " " not in unit and tok.endswith(unit):
                return kind
    return None


def _timed(text: str) -> set[tuple[str, str]]:
    """(number, kind of time unit) pairs a text states: "10–18 business days" gives
    ("10", "day") and ("18", "day")."""
    t = unicodedata.normalize("NFC", text).casefold()
    out: set[tuple[str, str]] = set()
    for m in _QUANTITY.finditer(t):
        kind = _unit_after(t[m.end() :])
        if kind:
            out |= {(n, kind) for n in m.groups() if n}
    return out


def unit_problem(reply: str, facts: Sequence[str]) -> str | None:
    """A number the facts give in one unit of time that the reply gives in another ("10
    business days" restated as "10 Geschäftswochen"), or None."""
    given = _timed("\n".join(facts))
    if not given:
        return None
    kinds: dict[str, set[str]] = {}
    for n, kind in given:
        kinds.setdefault(n, set()).add(kind)
    for n, kind in sorted(_timed(reply)):
        if n in kinds and kind not in kinds[n]:
            return (
                f"unit changed: {n} is in {'/'.join(sorted(kinds[n]))}s in the FACTS, not {kind}s"
            )
    return None
