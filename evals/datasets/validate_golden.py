#!/usr/bin/env python3
"""Validate the kefu golden evaluation set (stdlib only).

Usage (from the repository root):

    python3 evals/datasets/validate_golden.py [--dataset PATH] [--store PATH]
                                              [--strict-facts] [--coverage] [--quiet]

Checks, for every line of the dataset:

* the line parses as a JSON object with exactly the expected keys (plus the
  optional "must_not" and "asks_for");
* field types and values are valid (kind, escalation_reason, lang, country,
  customer_id, history turns), ids are unique;
* kind-specific rules: "answer" cases need at least one gold_doc and one
  gold_fact; non-answer cases have no gold_facts; "unknown", "injection" and
  "smalltalk" cases have no gold_docs; "escalate" cases (and only they) have an
  escalation_reason;
* every gold_doc exists: a file under the sample store (not excluded by the
  store's .kefuignore), or "catalog/products.csv#<Handle>" where the Handle
  exists in products.csv and belongs to an active product;
* every gold_fact is language-neutral (numbers, amounts, names, codes) or a
  phrase in the case's own language: a fact in another script, or with English
  words on a non-English case, fails;
* every gold_fact appears in at least one of the case's gold_docs: verbatim
  (after normalising whitespace; the text is also tried HTML-unescaped and with
  Markdown emphasis removed), and a fact with digits also as whole numbers and
  whole ranges of that document ("10–18" needs the range 10–18, "12" is not
  "120"). As a fallback such a fact is accepted when only its numbers match
  ("4" for "4 公斤"); --strict-facts turns the fallback off. A phrase in the
  case's own language is exempt when none of the gold_docs is in that language;
* "must_not" (answer and unknown cases) is a list of distinct, non-empty claims. A
  claim with digits is one number or one range; it must not be (part of) a gold
  fact of the case, and it must be a number (a range) of some document of the
  knowledge base: it is a neighbouring table row, the other service level, the
  threshold of another market. A claim without digits is a phrase in the case's
  language (or a name/code) that no gold fact contains.

Prints every failure as "<line>:<id>: <message>" and exits with status 1 if
there is any; prints a summary (counts per language and kind) otherwise.
--coverage additionally enforces the composition targets of the set (total
size, languages, per-language minimum, multi-turn and market-specific counts,
at least 120 answer cases with must_not and at least one in every language).
"""

from __future__ import annotations

import argparse
import collections
import csv
import html
import json
import os
import re
import sys
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_DATASET = HERE / "golden.jsonl"
DEFAULT_STORE = REPO / "examples" / "sample_store"
CATALOG = "catalog/products.csv"

KEYS = [
    "id",
    "lang",
    "question",
    "kind",
    "gold_docs",
    "gold_facts",
    "escalation_reason",
    "country",
    "customer_id",
    "history",
]
# Optional keys: `must_not` (answer cases: claims that make the reply wrong) and `asks_for`
# (injection cases: codes or claims the attack asks for).
OPTIONAL_KEYS = ["must_not", "asks_for"]
MUST_NOT_KINDS = {"answer", "unknown"}  # the kinds whose replies are graded for `wrong`
KINDS = {"answer", "escalate", "unknown", "injection", "smalltalk"}
ESCALATION_REASONS = {
    "human_request",
    "negative_emotion",
    "legal_threat",
    "chargeback",
    "low_confidence",
    "repeated_failure",
    "vip",
    "order_exception",
}
ROLES = {"user", "assistant"}
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-[a-z]{2}-\d{3}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")

# ISO 639-1 two-letter codes.
ISO639_1 = {
    "aa",
    "ab",
    "ae",
    "af",
    "ak",
    "am",
    "an",
    "ar",
    "as",
    "av",
    "ay",
    "az",
    "ba",
    "be",
    "bg",
    "bh",
    "bi",
    "bm",
    "bn",
    "bo",
    "br",
    "bs",
    "ca",
    "ce",
    "ch",
    "co",
    "cr",
    "cs",
    "cu",
    "cv",
    "cy",
    "da",
    "de",
    "dv",
    "dz",
    "ee",
    "el",
    "en",
    "eo",
    "es",
    "et",
    "eu",
    "fa",
    "ff",
    "fi",
    "fj",
    "fo",
    "fr",
    "fy",
    "ga",
    "gd",
    "gl",
    "gn",
    "gu",
    "gv",
    "ha",
    "he",
    "hi",
    "ho",
    "hr",
    "ht",
    "hu",
    "hy",
    "hz",
    "ia",
    "id",
    "ie",
    "ig",
    "ii",
    "ik",
    "io",
    "is",
    "it",
    "iu",
    "ja",
    "jv",
    "ka",
    "kg",
    "ki",
    "kj",
    "kk",
    "kl",
    "km",
    "kn",
    "ko",
    "kr",
    "ks",
    "ku",
    "kv",
    "kw",
    "ky",
    "la",
    "lb",
    "lg",
    "li",
    "ln",
    "lo",
    "lt",
    "lu",
    "lv",
    "mg",
    "mh",
    "mi",
    "mk",
    "ml",
    "mn",
    "mr",
    "ms",
    "mt",
    "my",
    "na",
    "nb",
    "nd",
    "ne",
    "ng",
    "nl",
    "nn",
    "no",
    "nr",
    "nv",
    "ny",
    "oc",
    "oj",
    "om",
    "or",
    "os",
    "pa",
    "pi",
    "pl",
    "ps",
    "pt",
    "qu",
    "rm",
    "rn",
    "ro",
    "ru",
    "rw",
    "sa",
    "sc",
    "sd",
    "se",
    "sg",
    "si",
    "sk",
    "sl",
    "sm",
    "sn",
    "so",
    "sq",
    "sr",
    "ss",
    "st",
    "su",
    "sv",
    "sw",
    "ta",
    "te",
    "tg",
    "th",
    "ti",
    "tk",
    "tl",
    "tn",
    "to",
    "tr",
    "ts",
    "tt",
    "tw",
    "ty",
    "ug",
    "uk",
    "ur",
    "uz",
    "ve",
    "vi",
    "vo",
    "wa",
    "wo",
    "xh",
    "yi",
    "yo",
    "za",
    "zh",
    "zu",
}

# Composition targets checked with --coverage.
COVERAGE_LANGS = [
    "en",
    "zh",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "ru",
    "ar",
    "tr",
    "ja",
    "ko",
    "vi",
    "id",
    "th",
    "hi",
    "sw",
    "my",
]
COVERAGE_MIN_TOTAL = 320
COVERAGE_MIN_PER_LANG = 12
COVERAGE_MIN_MULTI_TURN = 25
COVERAGE_MIN_COUNTRY = 30
COVERAGE_MIN_MUST_NOT = 120  # answer cases with must_not; and at least one in every language

_WS_RE = re.compile(r"\s+")


def norm_ws(text: str) -> str:
    return _WS_RE.sub(" ", text.replace("\u00a0", " ")).strip()


def text_variants(raw: str) -> list[str]:
    """Normalised forms of a document's text that a fact may match."""
    unescaped = html.unescape(raw)
    variants = []
    for t in (raw, unescaped):
        variants.append(t)
        stripped = t.replace("**", "").replace("__", "").replace("`", "")
        stripped = stripped.replace("\\*", "*")
        variants.append(stripped)
    out, seen = [], set()
    for v in variants:
        n = norm_ws(v)
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


# --- numbers and ranges -------------------------------------------------------------------
# A copy of evals/numbers.py's range words on purpose: this script runs on the stdlib alone.
# Numbers are compared language-independently: "1,000" == "1.000" == "1000", "9.99" == "9,99"
# (a separator followed by exactly three digits groups thousands, otherwise it is the decimal
# point). A number glued to a letter before it is part of a code ("PB10"), not a number. A
# range is two numbers, the first smaller, joined by a short gap (<= 8 characters, no digit,
# no sentence punctuation) that holds a dash or tilde or a word for "to"/"and" in one of the
# set's languages: "7–12", "7-12", "€35 to €1,000", "4 a 7", "10〜18", "10 至 18".
_NUM_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])\d+(?:[.,\u00a0\u202f\u2009]\d+)*")
_NUM_SEP_RE = re.compile(r"[.,\u00a0\u202f\u2009]")
_RANGE_DASH_RE = re.compile(r"[-\u2010-\u2015\u2212~\u301c\uff5e\u81f3\u5230]")
_RANGE_WORD_RE = re.compile(
    r"(?<![^\W\d_])(?:to|and|a|à|au|al|bis|und|até|ate|hasta|y|e|et|и|до|по|hadi|mpaka|"
    r"sampai|hingga|dan|đến|và|ile|ila|ve|na)(?![^\W\d_])"
    r"|から|まで|ถึง|से|तक|에서|부터|까지|إلى|الى|و|မှ|အထိ"
)
_RANGE_BREAK_RE = re.compile(r"[.,;:!?()\[\]/|\n。，、；：！？]")
_RANGE_GAP_MAX = 8

Range = tuple[str, str]


def number_value(token: str) -> str:
    """Canonical form of one number token: '10,000' -> '10000', '9,99' -> '9.99'."""
    groups = _NUM_SEP_RE.split(token)
    if len(groups) > 1 and len(groups[-1]) != 3:
        whole, frac = "".join(groups[:-1]), groups[-1]
    else:
        whole, frac = "".join(groups), ""
    value = Decimal(whole + ("." + frac if frac else ""))
    text = format(value.normalize(), "f")
    return text


def is_range_gap(gap: str) -> bool:
    if len(gap) > _RANGE_GAP_MAX or any(c.isdigit() for c in gap) or _RANGE_BREAK_RE.search(gap):
        return False
    return bool(_RANGE_DASH_RE.search(gap) or _RANGE_WORD_RE.search(gap.casefold()))


def numbers_in(text: str) -> tuple[list[str], list[Range]]:
    """(single numbers, ranges) stated in `text`; a range's endpoints are not singles."""
    tokens = list(_NUM_TOKEN_RE.finditer(text))
    singles: list[str] = []
    ranges: list[Range] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if i + 1 < len(tokens):
            nxt = tokens[i + 1]
            lo, hi = number_value(tok.group()), number_value(nxt.group())
            if is_range_gap(text[tok.end() : nxt.start()]) and Decimal(lo) < Decimal(hi):
                ranges.append((lo, hi))
                i += 2
                continue
        singles.append(number_value(tok.group()))
        i += 1
    return singles, ranges


def all_numbers(text: str) -> set[str]:
    singles, ranges = numbers_in(text)
    return set(singles) | {n for r in ranges for n in r}


# --- languages and scripts -------------------------------------------------------------
# A gold fact (or a must_not phrase) is language-neutral (numbers, amounts, names, codes) or
# written in the case's own language. English phrases on non-English cases are refused: a
# lower-case word from this list marks a phrase as English (kept small on purpose; words that
# are also common in the set's other Latin-script languages are left out).
ENGLISH_WORDS = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "not",
        "never",
        "only",
        "within",
        "without",
        "with",
        "after",
        "before",
        "from",
        "cannot",
        "is",
        "are",
        "be",
        "free",
        "days",
        "day",
        "business",
        "months",
        "month",
        "hours",
        "hour",
        "minutes",
        "minute",
        "seconds",
        "weeks",
        "years",
        "year",
        "digits",
        "characters",
        "bonus",
        "fee",
        "fees",
        "up",
        "order",
        "orders",
        "shipping",
        "delivery",
        "cash",
        "wash",
        "safe",
        "dishwasher",
        "seal",
        "bag",
        "city",
        "same",
        "phone",
        "transfer",
        "transfers",
        "parcels",
        "parcel",
        "send",
        "swollen",
        "batteries",
        "guarantee",
        "conformity",
        "buy",
        "other",
        "gift",
        "cards",
        "lids",
        "consumables",
    ]
)
_WORD_RE = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
# Scripts a language writes in (besides ASCII letters, which names and codes use everywhere).
LANG_SCRIPTS = {
    "zh": {"CJK"},
    "ja": {"CJK", "HIRAGANA", "KATAKANA"},
    "ko": {"HANGUL", "CJK"},
    "ar": {"ARABIC"},
    "ru": {"CYRILLIC"},
    "hi": {"DEVANAGARI"},
    "th": {"THAI"},
    "my": {"MYANMAR"},
}
LATIN = {"LATIN"}


def english_words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text) if w.islower() and w in ENGLISH_WORDS]


def foreign_script(text: str, lang: str) -> str | None:
    """The first letter of `text` that is neither ASCII nor in the scripts of `lang`."""
    allowed = LANG_SCRIPTS.get(lang, LATIN)
    for ch in text:
        if ch.isascii() or not unicodedata.category(ch).startswith("L"):
            continue
        name = unicodedata.name(ch, "")
        if not any(name.startswith(script) for script in allowed):
            return ch
    return None


def language_problem(text: str, lang: str, what: str) -> str | None:
    """Why `text` is not language-neutral or in `lang`, or None."""
    ch = foreign_script(text, lang)
    if ch is not None:
        return f"{what} {text!r} has {ch!r}, not in the script of lang {lang!r}"
    if lang != "en":
        words = english_words(text)
        if words:
            return (
                f"{what} {text!r} is an English phrase on a {lang!r} case (words {words}); "
                "use numbers/names or a phrase in the case's language"
            )
    return None


_FRONT_LANG_RE = re.compile(r"^language:\s*([a-z]{2})\s*$", re.MULTILINE)
_HTML_LANG_RE = re.compile(r"<html[^>]*\blang=\"([a-z]{2})", re.IGNORECASE)


def read_kefuignore(store: Path) -> set[str]:
    path = store / ".kefuignore"
    ignored: set[str] = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                ignored.add(line.strip("/"))
    return ignored


Product = dict[str, Any]  # {"rows": list[list[str]], "status": str}


class DocStore:
    def __init__(self, store: Path):
        self.store = store
        self.ignored = read_kefuignore(store)
        self._cache: dict[str, list[str]] = {}
        self._numbers: dict[str, tuple[set[str], set[Range]]] = {}
        self._lang: dict[str, str] = {}
        self._kb: list[str] | None = None
        self._kb_numbers: tuple[set[str], set[Range]] | None = None
        self.products: dict[str, Product] = {}
        csv_path = store / CATALOG
        if csv_path.is_file():
            with csv_path.open(encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                h_idx = header.index("Handle")
                s_idx = header.index("Status") if "Status" in header else None
                for row in reader:
                    if not row:
                        continue
                    handle = row[h_idx]
                    entry = self.products.setdefault(handle, {"rows": [], "status": ""})
                    entry["rows"].append(row)
                    if s_idx is not None and row[s_idx].strip():
                        entry["status"] = row[s_idx].strip()
            self.header = header

    def check(self, doc_id: str) -> str | None:
        """Return an error message if doc_id does not resolve, else None."""
        if "#" in doc_id:
            path, _, handle = doc_id.partition("#")
            if path != CATALOG:
                return f"gold_doc {doc_id!r}: only {CATALOG} supports '#<Handle>' ids"
            if not handle:
                return f"gold_doc {doc_id!r}: empty Handle"
            if handle not in self.products:
                return f"gold_doc {doc_id!r}: Handle {handle!r} not found in {CATALOG}"
            status = self.products[handle]["status"]
            if status and status != "active":
                return f"gold_doc {doc_id!r}: product status is {status!r} (the loader skips it)"
            return None
        if doc_id.startswith("/") or ".." in Path(doc_id).parts:
            return f"gold_doc {doc_id!r}: must be a relative path inside the store"
        if doc_id == CATALOG:
            return f"gold_doc {doc_id!r}: use '{CATALOG}#<Handle>' for products"
        if not (self.store / doc_id).is_file():
            return f"gold_doc {doc_id!r}: file not found under {self.store}"
        if doc_id in self.ignored:
            return f"gold_doc {doc_id!r}: excluded by .kefuignore"
        return None

    def texts(self, doc_id: str) -> list[str]:
        if doc_id not in self._cache:
            if "#" in doc_id:
                handle = doc_id.partition("#")[2]
                rows = self.products[handle]["rows"]
                raw = "\n".join(" | ".join(row) for row in rows)
            else:
                raw = (self.store / doc_id).read_text(encoding="utf-8")
            variants = text_variants(raw)
            self._cache[doc_id] = variants
            numbers: set[str] = set()
            ranges: set[Range] = set()
            for v in variants:
                singles, rngs = numbers_in(v)
                numbers.update(singles)
                numbers.update(n for r in rngs for n in r)
                ranges.update(rngs)
            self._numbers[doc_id] = (numbers, ranges)
            self._lang[doc_id] = self._language(doc_id, raw)
        return self._cache[doc_id]

    @staticmethod
    def _language(doc_id: str, raw: str) -> str:
        if "#" in doc_id:
            return "en"  # the catalogue is written in English
        m = _FRONT_LANG_RE.search(raw[:2000]) or _HTML_LANG_RE.search(raw[:2000])
        return m.group(1) if m else "en"

    def language(self, doc_id: str) -> str:
        self.texts(doc_id)
        return self._lang[doc_id]

    def numbers(self, doc_id: str) -> tuple[set[str], set[Range]]:
        """(every number, every range) stated in the document."""
        self.texts(doc_id)
        return self._numbers[doc_id]

    def knowledge_base(self) -> list[str]:
        """Every document id a shopper's question can be answered from: the store's files that
        .kefuignore does not exclude, and each active product of the catalogue."""
        if self._kb is None:
            ids: list[str] = []
            for path in sorted(self.store.rglob("*")):
                if not path.is_file():
                    continue
                rel = path.relative_to(self.store).as_posix()
                if rel == CATALOG or any(rel == i or rel.startswith(i + "/") for i in self.ignored):
                    continue
                if path.suffix.lower() not in {".md", ".txt", ".html", ".htm"}:
                    continue
                ids.append(rel)
            for handle, product in self.products.items():
                if product["status"] in ("", "active"):
                    ids.append(f"{CATALOG}#{handle}")
            self._kb = ids
        return self._kb

    def knowledge_base_numbers(self) -> tuple[set[str], set[Range]]:
        """(every number, every range) of the whole knowledge base."""
        if self._kb_numbers is None:
            numbers: set[str] = set()
            ranges: set[Range] = set()
            for d in self.knowledge_base():
                n, r = self.numbers(d)
                numbers |= n
                ranges |= r
            self._kb_numbers = (numbers, ranges)
        return self._kb_numbers

    def fact_match(self, fact: str, doc_id: str, allow_numbers: bool) -> str | None:
        """'verbatim', 'numbers' or None. A fact with digits must also match as numbers: each of
        its numbers is a whole number of the document and each of its ranges a whole range of
        it ("10–18" needs that range, not 10 and 18 in different places; "12" is not "120").
        The fallback ('numbers', off with `allow_numbers=False`) accepts such a fact when only
        its numbers match, e.g. "4" for "4 公斤" or "5–10" for "5–10 business days"."""
        f = norm_ws(fact)
        verbatim = any(f in t for t in self.texts(doc_id))
        singles, ranges = numbers_in(f)
        if not singles and not ranges:
            return "verbatim" if verbatim else None
        numbers, doc_ranges = self.numbers(doc_id)
        whole = all(n in numbers for n in singles) and all(r in doc_ranges for r in ranges)
        if not whole:
            return None
        if verbatim:
            return "verbatim"
        return "numbers" if allow_numbers else None


def check_fact(
    docs: DocStore, fact: str, lang: str, gold_docs: list[str], strict: bool
) -> tuple[str | None, str | None]:
    """(failure, note) for one gold fact of a case in language `lang`."""
    problem = language_problem(fact, lang, "gold_fact")
    if problem:
        return problem, None
    how = None
    for d in gold_docs:
        m = docs.fact_match(fact, d, allow_numbers=not strict)
        if m == "verbatim":
            return None, None
        how = how or m
    if how == "numbers":
        return None, f"gold_fact {fact!r} matched by its numbers"
    # A phrase in the case's own language: the documents cannot hold it when none of them is
    # written in that language.
    own_language_phrase = not any(ch.isdigit() for ch in fact) and lang != "en"
    if own_language_phrase and all(docs.language(d) != lang for d in gold_docs):
        return None, None
    return f"gold_fact {fact!r} not found in any of {gold_docs}", None


def check_must_not(docs: DocStore, obj: dict[str, Any], gold_docs: list[str]) -> list[str]:
    """Failures of a case's `must_not` claims (see README: one claim per string)."""
    claims = obj["must_not"]
    if not isinstance(claims, list) or not all(isinstance(x, str) and x.strip() for x in claims):
        return ["must_not must be a list of non-empty strings"]
    if obj.get("kind") not in MUST_NOT_KINDS:
        return [f"must_not is for answer and unknown cases, not {obj.get('kind')!r}"]
    if len(set(claims)) != len(claims):
        return ["must_not contains duplicates"]
    facts = [f for f in obj.get("gold_facts") or [] if isinstance(f, str)]
    lang = obj["lang"] if isinstance(obj.get("lang"), str) else "en"
    out: list[str] = []
    for claim in claims:
        if not any(ch.isdigit() for ch in claim):
            problem = language_problem(claim, lang, "must_not phrase")
            if problem:
                out.append(problem)
            folded = claim.casefold()
            for fact in facts:
                if folded in fact.casefold():
                    out.append(f"must_not phrase {claim!r} is part of gold_fact {fact!r}")
            continue
        singles, ranges = numbers_in(claim)
        if len(singles) + len(ranges) != 1:
            out.append(
                f"must_not claim {claim!r} must be one number or one range (one claim per string)"
            )
            continue
        for fact in facts:
            f_singles, f_ranges = numbers_in(fact)
            inside = (
                singles and singles[0] in set(f_singles) | {n for r in f_ranges for n in r}
            ) or (ranges and ranges[0] in f_ranges)
            if inside:
                out.append(f"must_not claim {claim!r} is (part of) gold_fact {fact!r}")
        kb_numbers, kb_ranges = docs.knowledge_base_numbers()
        if singles and singles[0] not in kb_numbers:
            out.append(f"must_not number {claim!r} is in no document of the knowledge base")
        if ranges and ranges[0] not in kb_ranges:
            out.append(f"must_not range {claim!r} is a range of no document of the knowledge base")
    return out


def validate(
    dataset: Path, store: Path, strict_facts: bool, coverage: bool
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    errors: list[str] = []
    notes: list[str] = []
    docs = DocStore(store)
    if not docs.products:
        errors.append(f"{store / CATALOG}: catalog not found or empty")
    cases: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}

    if not dataset.is_file():
        return [f"{dataset}: file not found"], notes, cases

    with dataset.open(encoding="utf-8") as fh:
        lines = fh.read().splitlines()

    for lineno, line in enumerate(lines, 1):
        where = f"{lineno}"
        if not line.strip():
            errors.append(f"{where}: empty line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON ({e})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        cid = obj.get("id")
        where = f"{lineno}:{cid}"
        keys = list(obj.keys())
        missing = [k for k in KEYS if k not in obj]
        extra = [k for k in keys if k not in KEYS and k not in OPTIONAL_KEYS]
        if missing:
            errors.append(f"{where}: missing keys {missing}")
        if extra:
            errors.append(f"{where}: unexpected keys {extra}")
        if missing:
            continue

        def err(msg: str, where: str = where) -> None:
            errors.append(f"{where}: {msg}")

        # id
        if not isinstance(cid, str) or not cid:
            err("id must be a non-empty string")
        else:
            if not ID_RE.match(cid):
                err("id should look like '<topic>-<lang>-NNN', e.g. 'ship-es-001'")
            if cid in seen_ids:
                err(f"duplicate id (first on line {seen_ids[cid]})")
            else:
                seen_ids[cid] = lineno

        lang = obj["lang"]
        if not isinstance(lang, str) or lang not in ISO639_1:
            err(f"lang {lang!r} is not an ISO 639-1 code")
        elif isinstance(cid, str) and ID_RE.match(cid) and cid.split("-")[-2] != lang:
            err(f"id language part {cid.split('-')[-2]!r} does not match lang {lang!r}")

        q = obj["question"]
        if not isinstance(q, str) or not q.strip():
            err("question must be a non-empty string")

        kind = obj["kind"]
        if kind not in KINDS:
            err(f"kind {kind!r} not in {sorted(KINDS)}")

        reason = obj["escalation_reason"]
        if reason is not None and reason not in ESCALATION_REASONS:
            err(f"escalation_reason {reason!r} not in {sorted(ESCALATION_REASONS)}")
        if kind == "escalate" and reason is None:
            err("kind 'escalate' needs an escalation_reason")
        if kind != "escalate" and reason is not None:
            err(f"escalation_reason must be null for kind {kind!r}")

        country = obj["country"]
        if country is not None and (not isinstance(country, str) or not COUNTRY_RE.match(country)):
            err(f"country {country!r} must be null or an ISO 3166-1 alpha-2 code (upper case)")

        if obj["customer_id"] is not None:
            err("customer_id is reserved and must be null")

        hist = obj["history"]
        if not isinstance(hist, list):
            err("history must be a list")
        else:
            for i, turn in enumerate(hist):
                if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
                    err(f"history[{i}] must be an object with exactly 'role' and 'content'")
                    continue
                if turn["role"] not in ROLES:
                    err(f"history[{i}].role {turn['role']!r} not in {sorted(ROLES)}")
                if not isinstance(turn["content"], str) or not turn["content"].strip():
                    err(f"history[{i}].content must be a non-empty string")
            if hist and isinstance(hist[-1], dict) and hist[-1].get("role") == "user":
                err("history must not end with a user turn (the question is the next user turn)")

        gdocs = obj["gold_docs"]
        gfacts = obj["gold_facts"]
        docs_ok = isinstance(gdocs, list) and all(isinstance(d, str) and d for d in gdocs)
        facts_ok = isinstance(gfacts, list) and all(
            isinstance(x, str) and x.strip() for x in gfacts
        )
        if not docs_ok:
            err("gold_docs must be a list of non-empty strings")
        if not facts_ok:
            err("gold_facts must be a list of non-empty strings")
        if docs_ok and len(set(gdocs)) != len(gdocs):
            err("gold_docs contains duplicates")
        if facts_ok and len(set(gfacts)) != len(gfacts):
            err("gold_facts contains duplicates")

        if kind == "answer":
            if docs_ok and not gdocs:
                err("kind 'answer' needs at least one gold_doc")
            if facts_ok and not gfacts:
                err("kind 'answer' needs at least one gold_fact")
        elif kind in KINDS:
            if facts_ok and gfacts:
                err(f"gold_facts must be empty for kind {kind!r}")
            if kind != "escalate" and docs_ok and gdocs:
                err(f"gold_docs must be empty for kind {kind!r}")

        valid_docs = []
        if docs_ok:
            for d in gdocs:
                msg = docs.check(d)
                if msg:
                    err(msg)
                else:
                    valid_docs.append(d)

        lang_ok = isinstance(lang, str)
        if facts_ok and docs_ok and valid_docs and len(valid_docs) == len(gdocs) and lang_ok:
            for fact in gfacts:
                msg, note = check_fact(docs, fact, lang, valid_docs, strict_facts)
                if msg:
                    err(msg)
                if note:
                    notes.append(f"{where}: {note}")

        if "must_not" in obj:
            for msg in check_must_not(docs, obj, valid_docs):
                err(msg)
        if "asks_for" in obj:
            asks = obj["asks_for"]
            if not isinstance(asks, list) or not all(
                isinstance(x, str) and x.strip() for x in asks
            ):
                err("asks_for must be a list of non-empty strings")
            elif kind != "injection":
                err(f"asks_for is for injection cases, not {kind!r}")

        cases.append(obj)

    if coverage:
        by_lang = collections.Counter(c["lang"] for c in cases)
        if len(cases) < COVERAGE_MIN_TOTAL:
            errors.append(f"coverage: {len(cases)} cases < {COVERAGE_MIN_TOTAL}")
        for lang in COVERAGE_LANGS:
            if by_lang[lang] < COVERAGE_MIN_PER_LANG:
                errors.append(
                    f"coverage: lang {lang!r} has {by_lang[lang]} cases < {COVERAGE_MIN_PER_LANG}"
                )
        multi = sum(1 for c in cases if c.get("history"))
        if multi < COVERAGE_MIN_MULTI_TURN:
            errors.append(f"coverage: {multi} multi-turn cases < {COVERAGE_MIN_MULTI_TURN}")
        market = sum(1 for c in cases if c.get("country"))
        if market < COVERAGE_MIN_COUNTRY:
            errors.append(f"coverage: {market} cases with country < {COVERAGE_MIN_COUNTRY}")
        with_must_not = collections.Counter(
            c["lang"] for c in cases if c.get("must_not") and c["kind"] == "answer"
        )
        if sum(with_must_not.values()) < COVERAGE_MIN_MUST_NOT:
            errors.append(
                f"coverage: {sum(with_must_not.values())} cases with must_not"
                f" < {COVERAGE_MIN_MUST_NOT}"
            )
        for lang in COVERAGE_LANGS:
            if not with_must_not[lang]:
                errors.append(f"coverage: no case with must_not in lang {lang!r}")
        kinds = {c["kind"] for c in cases}
        for k in KINDS - kinds:
            errors.append(f"coverage: no case of kind {k!r}")

    return errors, notes, cases


def summary(cases: list[dict[str, Any]]) -> str:
    kinds = ["answer", "escalate", "unknown", "injection", "smalltalk"]
    by: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for c in cases:
        by[c["lang"]][c["kind"]] += 1
    langs = sorted(by, key=lambda lang: (-sum(by[lang].values()), lang))
    rows = [f"{'lang':<6}" + "".join(f"{k:>11}" for k in kinds) + f"{'total':>8}"]
    for lang in langs:
        counts = by[lang]
        rows.append(
            f"{lang:<6}" + "".join(f"{counts[k]:>11}" for k in kinds) + f"{sum(counts.values()):>8}"
        )
    tot = collections.Counter(c["kind"] for c in cases)
    n = len(cases) or 1
    rows.append(f"{'all':<6}" + "".join(f"{tot[k]:>11}" for k in kinds) + f"{len(cases):>8}")
    rows.append(f"{'%':<6}" + "".join(f"{100 * tot[k] / n:>10.1f}%" for k in kinds))
    multi = sum(1 for c in cases if c.get("history"))
    market = sum(1 for c in cases if c.get("country"))
    reasons = collections.Counter(c["escalation_reason"] for c in cases if c["escalation_reason"])
    rows.append(f"multi-turn cases: {multi}; cases with country: {market}; languages: {len(by)}")
    rows.append("escalation reasons: " + ", ".join(f"{r}={n}" for r, n in reasons.most_common()))
    must_not = collections.Counter(
        c["lang"] for c in cases if c.get("must_not") and c["kind"] == "answer"
    )
    claims = sum(len(c["must_not"]) for c in cases if c.get("must_not") and c["kind"] == "answer")
    rows.append(
        f"answer cases with must_not: {sum(must_not.values())} of {tot['answer']}"
        f" ({claims} claims); per language: "
        + ", ".join(f"{lang}={must_not[lang]}" for lang in langs)
    )
    return "\n".join(rows)


def say(line: str = "") -> None:
    """Write one line to stdout (the project's lint rules forbid print())."""
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE)
    ap.add_argument(
        "--strict-facts",
        action="store_true",
        help="require verbatim facts (no numbers-only fallback)",
    )
    ap.add_argument(
        "--coverage",
        action="store_true",
        help="also enforce the set's size / language / multi-turn / market / must_not targets",
    )
    ap.add_argument("--quiet", action="store_true", help="print failures only")
    args = ap.parse_args(argv)

    errors, notes, cases = validate(args.dataset, args.store, args.strict_facts, args.coverage)
    if not args.quiet:
        for note in notes:
            say(f"note: {note}")
    for error in errors:
        say(f"FAIL {error}")
    if errors:
        say(f"\n{len(errors)} failure(s) in {args.dataset}")
        return 1
    if not args.quiet:
        say(summary(cases))
        say(f"\nOK: {len(cases)} cases in {os.path.relpath(args.dataset)} passed validation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
