"""How the eval reads numbers: one spelling per number, whatever the script, separators or
ranges ("1.000,50", "٧–١٤", "7 a 12").

This is the judge's own reader, on purpose not `rag.textutil.numbers_in`, which the answer
pipeline's grounding check uses: a metric never grades a reply with the code that produced it
(STYLE.md section 8). The two also read differently (this one knows ranges, digits of other
scripts and codes like "PB10"), so a blind spot of one is caught by the other instead of
passing both the check and its judge.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# 1 000 (fr) with a no-break or thin space: kept apart from other spaces (NFKC would make them
# plain spaces) as a thousands mark; Arabic decimal and thousands marks as "." and ",".
_GROUP = "\x1e"
_SEPARATORS = str.maketrans(
    {"\u00a0": _GROUP, "\u202f": _GROUP, "\u2009": _GROUP, "٫": ".", "٬": ","}
)
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_])"  # not the tail of a code ("PB10") or of another number
    rf"(?:\d{{1,3}}(?:[,.{_GROUP}]\d{{3}})+(?![0-9])(?:[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?)"
    r"(?![0-9]|[A-Z]{2})"  # nor the head of a code ("4PX", the carrier)
)
# A range: two numbers, the first smaller, joined by a short gap (<= 8 characters, no digit,
# no sentence punctuation) that holds a dash or tilde, or a word that means "to", "and" or
# "from … to" in one of the golden set's languages.
_RANGE_MAX_GAP = 8
_RANGE_DASH = re.compile(r"[-‐‑‒–—―−~〜～至到]")
_RANGE_WORDS = re.compile(
    r"(?<![^\W\d_])(?:to|and|a|à|au|al|bis|und|até|ate|hasta|y|e|et|и|до|по|hadi|mpaka|"
    r"sampai|hingga|dan|đến|và|ile|ila|ve|na)(?![^\W\d_])"
    r"|から|まで|ถึง|से|तक|에서|부터|까지|إلى|الى|و|မှ|အထိ"
)
_RANGE_BREAK = re.compile(r"[.,;:!?()\[\]/|\n。，、；：！？]")
_LIST_MARKER = re.compile(r"^(\s*)\d{1,2}[.)](?=\s)", re.MULTILINE)
_CITATION = re.compile(r"\[\d{1,2}\]")


def _ascii_digits(text: str) -> str:
    """NFKC (full-width digits), then every decimal digit of any script as 0-9."""
    t = unicodedata.normalize("NFKC", text.translate(_SEPARATORS))
    if t.isascii():
        return t
    out = []
    for ch in t:
        d = unicodedata.decimal(ch, None) if not ch.isascii() else None
        out.append(str(d) if d is not None else ch)
    return "".join(out)


def canonical(raw: str) -> str:
    """A number as written -> one spelling: `1,000` = `1.000` = `1 000` -> `1000`;
    `9,99` = `9.99`; `10.00` -> `10`. A single `.` or `,` followed by exactly three digits
    is a thousands separator (`1.000`), as prices rarely have three decimals."""
    s = re.sub(rf"[\s{_GROUP}]", "", raw)
    if "," in s and "." in s:
        dec = "," if s.rfind(",") > s.rfind(".") else "."
        whole, _, frac = s.rpartition(dec)
        s = re.sub(r"[.,]", "", whole) + "." + frac
    elif "," in s or "." in s:
        sep = "," if "," in s else "."
        parts = s.split(sep)
        if len(parts) > 2 or (len(parts[-1]) == 3 and parts[0] not in {"0", ""}):
            s = "".join(parts)
        else:
            s = parts[0] + "." + parts[1]
    whole, _, frac = s.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


@dataclass(frozen=True)
class Numbers:
    """The numbers of a text: ranges (pairs of canonical endpoints) and single numbers that
    are not the endpoint of a range."""

    singles: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str], ...] = ()

    def values(self) -> set[str]:
        """Every number, range endpoints included."""
        return {*self.singles, *(v for r in self.ranges for v in r)}


def _is_range_gap(gap: str, lo: str, hi: str) -> bool:
    if len(gap) > _RANGE_MAX_GAP or any(c.isdigit() for c in gap) or _RANGE_BREAK.search(gap):
        return False
    if not (_RANGE_DASH.search(gap) or _RANGE_WORDS.search(gap.casefold())):
        return False
    return float(lo) < float(hi)


def read_numbers(text: str, *, claims_only: bool = False) -> Numbers:
    """Numbers and ranges in `text`, compared across scripts and separators (`٧–١٤` = `7-14`).
    With `claims_only`, list markers ("1. ", "2) ") and citation marks ("[1]") are skipped:
    they are not claims of a reply."""
    t = _ascii_digits(text)
    if claims_only:
        t = _CITATION.sub(" ", _LIST_MARKER.sub(r"\1 ", t))
    found = [(canonical(m.group(0)), m.start(), m.end()) for m in _NUMBER.finditer(t)]
    singles: list[str] = []
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(found):
        value, _, end = found[i]
        if i + 1 < len(found):
            nxt, start, _ = found[i + 1]
            if _is_range_gap(t[end:start], value, nxt):
                ranges.append((value, nxt))
                i += 2
                continue
        singles.append(value)
        i += 1
    return Numbers(tuple(singles), tuple(ranges))


def numbers_of(texts: Iterable[str]) -> set[str]:
    """Every number (range endpoints included) in any of `texts`."""
    out: set[str] = set()
    for t in texts:
        out |= read_numbers(t).values()
    return out
