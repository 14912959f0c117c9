"""Entities: what a question is about (destination, products, service level, order total),
and how well a fact's scope matches them.

"¿Cuánto tarda el envío a México?" is about Mexico (and so Latin America), no product, no
service level. A fact scoped to another market, product or service level must never be chosen
over one that matches: `scope_match` says None for such a fact and ranks the others by how
specifically they match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib.resources import files
from itertools import pairwise
from typing import Any

import yaml
from babel.numbers import get_territory_currencies, list_currencies

from rag.knowledge.regions import countries_in, find_places, norm, regions_of
from rag.knowledge.scope import Scope, segment, service_level, services_compatible
from rag.lang.countries import CODE_ALIASES


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Entities:
    """What a question names, or what the session says when it names nothing.

    country: the destination (ISO code); regions: every region it belongs to, plus regions the
    question names itself (named_regions). products: the catalog names (titles, SKUs) it
    mentions. amounts: the amounts of money it gives, in order."""

    country: str | None = None
    regions: frozenset[str] = frozenset()
    named_regions: frozenset[str] = frozenset()
    products: tuple[str, ...] = ()
    service: str | None = None
    segment: str | None = None
    amounts: tuple[Money, ...] = ()
    asks: frozenset[str] = frozenset()  # kinds of quantity asked for (rag.knowledge.asks)

    @property
    def order_total(self) -> Money | None:
        """The first amount a question gives: "my order is €200" is the order's total."""
        return self.amounts[0] if self.amounts else None


# ---- amounts -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _currency_table() -> dict[str, Any]:
    data = yaml.safe_load(
        (files("rag.knowledge") / "data" / "currencies.yaml").read_text(encoding="utf-8")
    )
    assert isinstance(data, dict)
    return data


@lru_cache(maxsize=1)
def _markers() -> dict[str, str | dict[str, Any]]:
    """Normalised marker -> ISO code, or the ambiguity rule for "$", "¥", "pesos"…"""
    table = _currency_table()
    out: dict[str, str | dict[str, Any]] = {}
    for code, words in table["markers"].items():
        for w in words:
            out[norm(str(w))] = str(code)
    for marker, rule in table["ambiguous"].items():
        out[norm(str(marker))] = dict(rule)
    return out


@lru_cache(maxsize=1)
def _amount_pattern() -> re.Pattern[str]:
    words = sorted(_markers(), key=len, reverse=True)
    alts = "|".join(re.escape(w) for w in words)
    # ISO codes count only in capitals: "CAD 35", "35 EUR" (not "cad", not "eur" inside words)
    codes = "|".join(sorted(_iso_codes()))
    marker = rf"(?:(?<![A-Za-z])(?i:{alts})(?![A-Za-z])|(?<![A-Za-z])(?:{codes})(?![A-Za-z]))"
    number = r"\d{1,3}(?:[,.\u00a0 '’]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
    mults = "|".join(re.escape(str(m)) for m in _currency_table()["multipliers"])
    mult = rf"(?:\s?(?P<{{g}}>{mults})(?![A-Za-z]))?"
    pre = rf"(?P<pre>{marker})\s?(?P<n1>{number}){mult.format(g='m1')}"
    post = rf"(?P<n2>{number}){mult.format(g='m2')}\s?(?P<post>{marker})"
    return re.compile(rf"{pre}|{post}")


@lru_cache(maxsize=1)
def _iso_codes() -> frozenset[str]:
    return frozenset(list_currencies())


def _local_currency(country: str | None) -> str | None:
    if not country:
        return None
    try:
        found = get_territory_currencies(country, tender=True)
    except (KeyError, ValueError):
        return None
    return str(found[0]) if found else None


def _currency(marker: str, *, country: str | None, lang: str) -> str | None:
    if marker.isupper() and len(marker) == 3 and marker in _iso_codes():
        return marker
    rule = _markers().get(norm(marker))
    if rule is None:
        return None
    if isinstance(rule, str):
        return rule
    local = _local_currency(country)
    if local and local in rule.get("local", []):
        return local
    by_lang = rule.get("lang", {})
    return str(by_lang.get(lang.split("-")[0], rule["default"]))


def _number(text: str) -> Decimal | None:
    t = re.sub(r"[\u00a0 '’]", "", text)
    if "," in t and "." in t:
        decimal = "," if t.rfind(",") > t.rfind(".") else "."
        t = t.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif "," in t or "." in t:
        sep = "," if "," in t else "."
        if re.fullmatch(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+", t):
            t = t.replace(sep, "")  # 20,000 / 20.000: thousands
        else:
            t = t.replace(",", ".")
    try:
        return Decimal(t)
    except InvalidOperation:
        return None


def amounts_in(text: str, *, country: str | None = None, lang: str = "en") -> tuple[Money, ...]:
    """The amounts of money a text gives, in any of the ways shoppers write them: "US$ 300",
    "300 dólares", "¥20,000", "2万円", "€200", "200 евро", "CAD 35". "$" and "¥" are read as
    the shopper's own currency when it is written that way there (a Canadian's "$35" is CAD)."""
    out: list[Money] = []
    multipliers = {str(k): int(v) for k, v in _currency_table()["multipliers"].items()}
    for m in _amount_pattern().finditer(text):
        marker = m.group("pre") or m.group("post")
        raw = m.group("n1") or m.group("n2")
        mult = m.group("m1") or m.group("m2")
        currency = _currency(marker, country=country, lang=lang)
        value = _number(raw)
        if currency is None or value is None:
            continue
        if mult:
            value *= multipliers[mult]
        out.append(Money(amount=value, currency=currency))
    return tuple(out)


# ---- products ----------------------------------------------------------------------------

# words too common in product names to name one ("Set of 3", "Pack of 10")
_STOP = frozenset(
    {"the", "and", "for", "with", "set", "pack", "size", "of", "de", "la", "el", "con", "para"}
)


def _content_words(name: str) -> list[str]:
    return [w for w in re.findall(r"[^\W\d_]{3,}", norm(name)) if w not in _STOP]


class CatalogMatcher:
    """Finds the catalog names (product titles, SKUs) a text mentions: the whole name, or two
    of its words in a row ("power bank" names "Slim Power Bank 10000 mAh"; "power banks" too).

    Built once per catalog: names are indexed by their words and by their word pairs, so a
    text is checked only against the names whose words it holds in a row (a 10,000-product
    catalog costs a few dictionary look-ups per text, not 20,000 regex searches). A name is
    matched only where it starts and ends at a word boundary, so a text that holds it holds its
    words as whole tokens in a row, in every script; only names that do not start with a word
    character are checked against every text."""

    def __init__(self, catalog_names: Iterable[str]) -> None:
        self.names = tuple(dict.fromkeys(catalog_names))
        self._whole: dict[tuple[str, ...], list[int]] = {}
        self._lengths: dict[str, set[int]] = {}  # first word -> lengths of names starting so
        self._pairs: dict[str, list[int]] = {}
        self._always: list[int] = []
        for i, name in enumerate(self.names):
            n = norm(name).strip()
            if not n:
                continue
            for a, b in pairwise(_content_words(name)):
                self._pairs.setdefault(f"{a} {b}", []).append(i)
            if not re.match(r"\w", n):
                self._always.append(i)
                continue
            key = tuple(re.findall(r"\w+", n))
            self._whole.setdefault(key, []).append(i)
            self._lengths.setdefault(key[0], set()).add(len(key))

    def _whole_candidates(self, t: str) -> set[int]:
        found = set(self._always)
        tokens = re.findall(r"\w+", t)
        for i, tok in enumerate(tokens):
            for n in self._lengths.get(tok, ()):
                found.update(self._whole.get(tuple(tokens[i : i + n]), ()))
        return found

    def _pair_names(self, t: str) -> set[int]:
        """The names two of whose words the text holds in a row ("power banks" too)."""
        found: set[int] = set()
        words = re.findall(r"[^\W\d_]{3,}", t)
        for a, b in pairwise(words):
            for second in {b, b[:-1], b[:-2]}:  # "power banks", "boxes"
                pair = f"{a} {second}"
                names = self._pairs.get(pair)
                if names and re.search(rf"(?<!\w){re.escape(pair)}(?:e?s)?(?!\w)", t):
                    found.update(names)
        return found

    def named(self, text: str) -> list[str]:
        """Names the text states whole first, then names two of whose words in a row it states
        outside those: "Nordic Oak Desk Lamp 17" names that lamp, not every desk lamp."""
        t = norm(text)
        whole: set[int] = set()
        spans: list[tuple[int, int]] = []
        for i in self._whole_candidates(t):
            n = norm(self.names[i]).strip()
            for m in re.finditer(rf"(?<!\w){re.escape(n)}(?!\w)", t):
                whole.add(i)
                spans.append(m.span())
        pieces: list[str] = []
        at = 0
        for a, b in sorted(spans):  # each stated name (or names overlapping) becomes " | "
            if b <= at:
                continue
            pieces += [t[at:a], " | "] if a >= at else []
            at = b
        rest = "".join([*pieces, t[at:]])
        found = whole | self._pair_names(rest)
        return [self.names[i] for i in sorted(found)]


@lru_cache(maxsize=8)
def catalog_matcher(catalog_names: tuple[str, ...]) -> CatalogMatcher:
    """The matcher of a catalog (cached: a store's names change only when it is synced)."""
    return CatalogMatcher(catalog_names)


def products_named(text: str, catalog_names: Iterable[str]) -> list[str]:
    """The catalog names (product titles, SKUs) a text mentions: the whole name, or two of its
    words in a row ("power bank" names "Slim Power Bank 10000 mAh"; "power banks" too)."""
    names = catalog_names if isinstance(catalog_names, tuple) else tuple(catalog_names)
    if not names:
        return []
    return catalog_matcher(names).named(text)


# ---- questions ---------------------------------------------------------------------------


def extract_entities(
    question: str,
    *,
    lang: str,
    country_hint: str | None = None,
    catalog_names: Sequence[str] = (),
) -> Entities:
    """What a question is about. The country it names (the last one, in its language or in
    English) wins over the session's country_hint; with neither, no market is assumed."""
    langs = tuple(sorted({"en", lang.split("-")[0]}))
    places = find_places(question, langs)
    named = [p.country for p in places if p.country]
    hint = CODE_ALIASES.get(country_hint.upper(), country_hint.upper()) if country_hint else None
    country = named[-1] if named else hint
    named_regions = frozenset(p.region for p in places if p.region)
    regions = set(named_regions)
    if country:
        regions |= regions_of(country)
    return Entities(
        country=country,
        regions=frozenset(regions),
        named_regions=named_regions,
        products=tuple(products_named(question, catalog_names)),
        service=service_level(question),
        segment=segment(question),
        amounts=amounts_in(question, country=country, lang=lang),
    )


# ---- matching ----------------------------------------------------------------------------


def scope_match(scope: Scope, entities: Entities) -> float | None:
    """How well a fact's scope fits a question: None when it contradicts it (another market,
    product, service level or segment), else a score that grows with how specifically it
    matches (1.0 for a fact restricted in nothing the question names). A fact about the
    question's country itself beats one about a region that contains it, and a fact about one
    country beats a row listing six."""
    score = 1.0
    if entities.country:
        c = entities.country
        if scope.is_market_specific:
            markets = scope.markets
            if c in scope.countries:
                score += 2.0 + 1.0 / max(1, len(markets))
            elif c in markets:
                score += 1.0 + 1.0 / max(1, len(markets))
            else:
                return None
        elif c in scope.mentions:
            score += 0.5
    elif entities.named_regions:
        wanted: set[str] = set()
        for region in entities.named_regions:
            wanted |= countries_in(region)
        if scope.is_market_specific:
            markets = scope.markets
            if scope.regions & entities.named_regions:
                score += 2.0
            elif markets and (markets <= wanted or wanted <= markets):
                score += 1.0  # a part of that region, or an area containing all of it
            else:
                return None  # another area, even where the two overlap at an edge
        elif scope.mentions & wanted:
            score += 0.5
    if entities.products and scope.products:
        if not {norm(p) for p in entities.products} & {norm(p) for p in scope.products}:
            return None
        score += 2.0
    if entities.service and scope.service:
        if not services_compatible(entities.service, scope.service):
            return None
        score += 1.0 if entities.service == scope.service else 0.5
    total = entities.order_total
    if total is not None and scope.band is not None and scope.band[0] == total.currency:
        _, above, up_to = scope.band
        amount = float(total.amount)
        if (above is not None and amount <= above) or (up_to is not None and amount > up_to):
            return None  # a rule for orders of another size
        score += 1.0
    if entities.segment and scope.segment:
        if entities.segment != scope.segment:
            return None
        score += 0.5
    return score
