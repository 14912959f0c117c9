"""Whether a reply states a claim: a gold fact (to be present) or a `must_not` claim (a wrong
answer), by its whole numbers and ranges, or as a phrase in any script."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from evals.numbers import numbers_of, read_numbers

UNSPACED = re.compile(  # scripts written without spaces between words: plain substring
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uf900-\ufaff\uff66-\uff9f]"
)
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−", "-") | {"’": "'", "‘": "'", "“": '"', "”": '"'})


def fold(text: str, *, accents: bool = False) -> str:
    """Case- and width-insensitive form, spaces collapsed; without `accents`, Latin letters'
    accents are dropped too."""
    t = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    out: list[str] = []
    for ch in t:
        if (
            not accents
            and unicodedata.combining(ch)
            and out
            and (out[-1] < "\u0250" or "\u1e00" <= out[-1] <= "\u1eff")
        ):
            continue  # a Latin letter's accent (é, ñ, ş, ệ)
        out.append(ch)
    t = unicodedata.normalize("NFC", "".join(out)).translate(_DASHES)
    return re.sub(r"[*_`]+", "", re.sub(r"\s+", " ", t)).strip()


def _wordish(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN" or ch == "_"


def phrase_stated(phrase: str, reply: str) -> bool:
    """The phrase stands in the reply as a whole word or phrase (case and width aside; a phrase
    written without accents matches with or without them, one written with accents needs them,
    so "sí" is not the "si" of "si esto no responde"); in Chinese, Japanese, Thai and Burmese,
    as a substring; in Korean, at the start of a word (particles attach to the end)."""
    accents = fold(phrase, accents=True) != fold(phrase)
    p, r = fold(phrase, accents=accents), fold(reply, accents=accents)
    if not p:
        return False
    if UNSPACED.search(p):
        return p in r
    left_only = bool(_HANGUL.search(p))
    start = r.find(p)
    while start >= 0:
        end = start + len(p)
        before_ok = start == 0 or not _wordish(r[start - 1])
        after_ok = left_only or end == len(r) or not _wordish(r[end])
        if before_ok and after_ok:
            return True
        start = r.find(p, start + 1)
    return False


def claim_stated(claim: str, reply: str) -> bool:
    """Whether the reply states the claim. A claim with numbers is stated when every range of
    the claim is a range of the reply (same endpoints) and every single number of the claim
    stands in the reply outside a range (`4` is stated by "tarda 4 días", not by "4–7 días").
    A claim without numbers is a phrase (see `phrase_stated`)."""
    want = read_numbers(claim)
    if not (want.singles or want.ranges):
        return phrase_stated(claim, reply)
    have = read_numbers(reply, claims_only=True)
    return set(want.ranges) <= set(have.ranges) and set(want.singles) <= set(have.singles)


def fact_present(fact: str, reply: str) -> bool:
    """A gold fact is in the reply: a fact with numbers by its numbers, as whole ranges and
    whole single numbers (a currency or unit around them may differ: "$69" is matched by
    "69 USD"); a fact without numbers as a phrase."""
    return claim_stated(fact, reply)


def fact_coverage(reply: str, facts: Sequence[str]) -> float:
    """Fraction of gold facts present in the reply (1.0 when there are none)."""
    if not facts:
        return 1.0
    return sum(fact_present(f, reply) for f in facts) / len(facts)


def stated_claims(reply: str, claims: Sequence[str]) -> list[str]:
    """The claims (`must_not`) the reply states."""
    return [c for c in claims if claim_stated(c, reply)]


def invented_numbers(
    reply: str, allowed_texts: Iterable[str] = (), *, allowed: set[str] | None = None
) -> set[str]:
    """Numbers (and range endpoints) of the reply found in none of the allowed texts (or the
    `allowed` set of canonical numbers). List markers and citation marks are not claims."""
    ok = set(allowed or ()) | numbers_of(allowed_texts)
    return {n for n in read_numbers(reply, claims_only=True).values() if n not in ok}
