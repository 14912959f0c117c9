#!/usr/bin/env python3
"""Validate the kefu golden evaluation set (stdlib only).

Usage (from the repository root):

    python3 evals/datasets/validate_golden.py [--dataset PATH] [--store PATH]
                                              [--strict-facts] [--coverage] [--quiet]

Checks, for every line of the dataset:

* the line parses as a JSON object with exactly the expected keys;
* field types and values are valid (kind, escalation_reason, lang, country,
  customer_id, history turns), ids are unique;
* kind-specific rules: "answer" cases need at least one gold_doc and one
  gold_fact; non-answer cases have no gold_facts; "unknown", "injection" and
  "smalltalk" cases have no gold_docs; "escalate" cases (and only they) have an
  escalation_reason;
* every gold_doc exists: a file under the sample store (not excluded by the
  store's .kefuignore), or "catalog/products.csv#<Handle>" where the Handle
  exists in products.csv and belongs to an active product;
* every gold_fact appears verbatim (after normalising whitespace) in at least
  one of the case's gold_docs. The document text is also tried HTML-unescaped
  and with Markdown emphasis markers removed. As a fallback, a fact that
  contains digits is accepted when all its digit groups occur as digit groups
  of the document, with thousands/decimal separators normalised
  ("10,000" == "10000"). --strict-facts turns that fallback off.

Prints every failure as "<line>:<id>: <message>" and exits with status 1 if
there is any; prints a summary (counts per language and kind) otherwise.
--coverage additionally enforces the composition targets of the set (total
size, languages, per-language minimum, multi-turn and market-specific counts).
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

_WS_RE = re.compile(r"\s+")
_SEP_RE = re.compile(r"(?<=\d)[,.\u00a0\u202f\u2009' ](?=\d)")
_DIGITS_RE = re.compile(r"\d+")


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


def digit_groups(text: str) -> list[str]:
    return _DIGITS_RE.findall(_SEP_RE.sub("", text))


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
        self._digits: dict[str, set[str]] = {}
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
            groups: set[str] = set()
            for v in variants:
                groups.update(digit_groups(v))
            self._digits[doc_id] = groups
        return self._cache[doc_id]

    def fact_match(self, fact: str, doc_id: str, allow_digits: bool) -> str | None:
        """'verbatim', 'digits' or None."""
        f = norm_ws(fact)
        texts = self.texts(doc_id)
        if any(f in t for t in texts):
            return "verbatim"
        if allow_digits:
            groups = digit_groups(f)
            if groups and all(g in self._digits[doc_id] for g in groups):
                return "digits"
        return None


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
        extra = [k for k in keys if k not in KEYS]
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

        if facts_ok and docs_ok and valid_docs and len(valid_docs) == len(gdocs):
            for fact in gfacts:
                how = None
                for d in valid_docs:
                    m = docs.fact_match(fact, d, allow_digits=not strict_facts)
                    if m == "verbatim":
                        how = m
                        break
                    if m == "digits":
                        how = m
                if how is None:
                    err(f"gold_fact {fact!r} not found in any of {valid_docs}")
                elif how == "digits":
                    notes.append(f"{where}: gold_fact {fact!r} matched by digit groups only")

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
        help="require verbatim facts (no digit-group fallback)",
    )
    ap.add_argument(
        "--coverage",
        action="store_true",
        help="also enforce the set's size / language / multi-turn / market targets",
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
