"""Script-aware text helpers that need no model: lexical tokens, normalisation, hashing."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Scripts written without spaces between words: Han, Hiragana, Katakana, Thai, Lao,
# Myanmar, Khmer. Their runs become overlapping character bigrams.
_NOSPACE = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
)
_NOSPACE_RUN = re.compile(f"[{_NOSPACE}]+")
_WORD = re.compile(rf"[^\W{_NOSPACE}]+(?:[-./][^\W{_NOSPACE}]+)*", re.UNICODE)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def fold(text: str) -> str:
    """Normalised, case-folded, whitespace collapsed: the form phrase lists are matched in."""
    return " ".join(normalize(text).split())


def lexical_tokens(text: str) -> list[str]:
    """Tokens for lexical matching in any script: words (and SKU-like compounds), CJK bigrams."""
    t = normalize(text)
    out: list[str] = []
    for m in _WORD.finditer(t):
        w = m.group(0)
        out.append(w)
        if any(c in w for c in "-./"):
            out.extend(p for p in re.split(r"[-./]", w) if p)
    for m in _NOSPACE_RUN.finditer(t):
        run = m.group(0)
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


_NAME = re.compile(r"(?<![\w])([A-Z][\w]*(?:[-/][\w]+)*|[\w]*\d[\w]*(?:[-/.][\w]+)*)", re.UNICODE)


def salient_terms(text: str) -> list[str]:
    """Tokens that survive translation: SKUs, order numbers, numbers, names (capitalised
    words that do not start a sentence). These drive the lexical signal of retrieval, which
    complements cross-lingual dense search instead of echoing the question's function words."""
    out: list[str] = []
    t = unicodedata.normalize("NFKC", text)
    for m in _NAME.finditer(t):
        w = m.group(0)
        start = m.start()
        before = t[:start].rstrip()
        sentence_start = not before or before[-1] in ".!?¿¡:;\n\"'“«(「"
        has_digit = any(c.isdigit() for c in w)
        compound = "-" in w or "/" in w
        if has_digit or (len(w) > 1 and (compound or not sentence_start or w.isupper())):
            out.extend(lexical_tokens(w))
    return list(dict.fromkeys(out))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_NUM = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")


def numbers_in(text: str) -> set[str]:
    """Numbers as canonical digit strings ("1,000.50" and "1.000,50" both give "1000.5")."""
    out: set[str] = set()
    for m in _NUM.finditer(unicodedata.normalize("NFKC", text)):
        raw = m.group(0).strip()
        out.add(canonical_number(raw))
    return out


def canonical_number(raw: str) -> str:
    s = re.sub(r"\s", "", raw)
    if "," in s and "." in s:
        # the later separator is the decimal one
        if s.rfind(",") > s.rfind("."):
            s = s.replace(".", "").replace(",", ".")
        else:
            s = s.replace(",", "")
    elif "," in s:
        head, _, tail = s.rpartition(",")
        s = s.replace(",", "") if len(tail) == 3 else head.replace(",", "") + "." + tail
    elif s.count(".") == 1:
        head, _, tail = s.partition(".")
        if len(tail) == 3 and len(head) <= 3 and head != "0":
            # 1.000 in de/es/pt style: a thousands separator (ambiguous; prices rarely have
            # three decimals)
            s = head + tail
    elif s.count(".") > 1:
        s = s.replace(".", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    s = s.lstrip("0") or "0"
    if s.startswith("."):
        s = "0" + s
    return s
