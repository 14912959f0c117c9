"""Checks on a drafted reply: every number must come from the context, and the language must be
the shopper's."""

from __future__ import annotations

import re

from rag.ports import LanguageDetector
from rag.textutil import numbers_in

_ENUM = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)
_CITATION = re.compile(r"\[\d{1,2}\]")


def ungrounded_numbers(reply: str, allowed_texts: list[str]) -> set[str]:
    """Numbers (prices, fees, durations, amounts) in `reply` that appear in none of the texts."""
    cleaned = _CITATION.sub(" ", _ENUM.sub(" ", reply))
    allowed: set[str] = set()
    for t in allowed_texts:
        allowed |= numbers_in(t)
    return {n for n in numbers_in(cleaned) if n not in allowed}


def wrong_language(
    reply: str, expected: str, detector: LanguageDetector, *, min_confidence: float = 0.8
) -> str | None:
    """The detected language when it is confidently not `expected`, else None."""
    letters = sum(ch.isalpha() for ch in reply)
    if letters < 12:
        return None  # too short to judge
    lang, conf = detector.detect(reply)
    if lang in {expected, "und"} or conf < min_confidence:
        return None
    # languages that are commonly confused for each other in short replies
    close = [{"ms", "id"}, {"no", "da"}, {"hr", "sr", "bs"}, {"zh", "ja"}]
    if any(lang in g and expected in g for g in close[:3]):
        return None
    return lang


def repeats_question(reply: str, question: str) -> bool:
    """Small models sometimes echo the question back instead of answering it."""
    from difflib import SequenceMatcher

    a = "".join(ch for ch in reply.casefold() if ch.isalnum())
    b = "".join(ch for ch in question.casefold() if ch.isalnum())
    if not a or not b:
        return False
    if a in b or (len(b) >= 15 and b in a):
        return True
    return SequenceMatcher(None, a, b).ratio() > 0.8
