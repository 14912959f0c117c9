"""Facts: a document compiled into self-contained statements, each with its scope.

A small model copies the number of a neighbouring table row ("4 days" from the express row
for a standard question) because a chunk holds the whole table. A fact holds one row, with the
table's heading and every column header beside its cell, or one sentence with its heading path,
or one product variant; its scope says which markets, products, service level and segment it
is about, so selection can prefer facts that match the question and drop those that cannot.
Chunks stay for citations: a fact's `span` is where it came from in the document's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from rag.knowledge.blocks import (
    ITEM,
    SEPARATOR,
    Block,
    blocks,
    cells,
    clean_inline,
    join_lines,
    quantities_in,
    sentences,
)
from rag.knowledge.entities import products_named
from rag.knowledge.html_tables import html_table_cells, html_tables_markdown
from rag.knowledge.regions import Place, countries_in, find_places, norm, resolve_region
from rag.knowledge.scope import Scope, segment, service_level
from rag.types import SourceDocument

FactKind = Literal["row", "sentence", "variant"]
PATH_SEP = " › "
_LONG_ITEM = 200
STATEMENT_SEP = " — "


@dataclass(frozen=True)
class Fact:
    """One self-contained statement from a document.

    text: the statement as the model reads it, prefixed with its heading path.
    numbers: the numbers it states ("10–18", "9.99"), as written but with thousands separators
    removed and ranges written with an en dash, for checking a reply's figures against it.
    span: where it came from in the document's text (start, end), for the citation; None for
    facts read from a form the loaded text does not keep (an HTML table)."""

    text: str
    doc_id: str
    heading_path: tuple[str, ...]
    scope: Scope
    numbers: tuple[str, ...]
    kind: FactKind
    source: str = ""
    language: str = "und"
    span: tuple[int, int] | None = None

    @property
    def statement(self) -> str:
        """The text without its heading path."""
        head = PATH_SEP.join(self.heading_path)
        if head and self.text.startswith(head + STATEMENT_SEP):
            return self.text[len(head) + len(STATEMENT_SEP) :]
        return self.text


# ---- scope -------------------------------------------------------------------------------


def _market_codes(markets: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """A document's market tags ("MX", "EU", "ALL") as (countries, regions); "ALL" is no
    restriction."""
    countries: set[str] = set()
    regions: set[str] = set()
    for tag in markets:
        tag = tag.strip()
        if not tag or tag.upper() == "ALL":
            continue
        members = countries_in(tag)
        key = resolve_region(tag)
        if len(members) == 1 and len(tag) == 2:
            countries |= members
        elif key is not None:
            regions.add(key)
    return frozenset(countries), frozenset(regions)


def _split_places(places: Iterable[Place]) -> tuple[frozenset[str], frozenset[str]]:
    countries = frozenset(p.country for p in places if p.country)
    regions = frozenset(p.region for p in places if p.region)
    return countries, regions


@dataclass(frozen=True)
class _Context:
    """What a statement inherits from where it stands: document, headings, catalog."""

    doc: SourceDocument
    langs: tuple[str, ...]
    catalog_names: tuple[str, ...]
    _by_path: dict[tuple[str, ...], tuple[frozenset[str], frozenset[str]]] = field(
        default_factory=dict, compare=False
    )

    def heading_scope(self, path: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
        """The markets the innermost heading naming any gives, else the document's own."""
        key = tuple(path)
        if key not in self._by_path:
            self._by_path[key] = _market_codes(self.doc.markets)
            for heading in reversed(key):
                countries, regions = _split_places(find_places(heading, self.langs))
                if countries or regions:
                    self._by_path[key] = (countries, regions)
                    break
        return self._by_path[key]

    def products_in(self, text: str) -> frozenset[str]:
        if not self.catalog_names:
            return frozenset()
        return frozenset(products_named(text, self.catalog_names))

    def scope(
        self,
        path: Sequence[str],
        text: str,
        *,
        about: Iterable[Place] = (),
        service: str | None = None,
    ) -> Scope:
        countries, regions = _split_places(about)
        if not (countries or regions):
            countries, regions = self.heading_scope(path)
        mentions = frozenset(p.country for p in find_places(text, self.langs) if p.country)
        if service is None:
            service = service_level(text) or _path_service(path)
        return Scope(
            countries=countries,
            regions=regions,
            mentions=mentions - countries,
            products=self.products_in(text),
            service=service,
            segment=segment(text) or segment(" ".join(path)),
            band=_path_band(path, self.doc.markets, self.langs),
        )


_ABOVE = r"above|over|more than|exceeding|from|at least|más de|superior(?:es)? a|a partir de|desde"
_UP_TO = r"up to|under|below|less than|at most|not more than|hasta|menos de|inferior(?:es)? a"
_BAND = re.compile(
    rf"(?i)(?<!\w)(?:(?P<above>{_ABOVE})|(?P<up_to>{_UP_TO}))\s+(?P<money>\S+(?:\s?\S+)?)"
)


def _path_band(
    path: Sequence[str], markets: Iterable[str], langs: Sequence[str]
) -> tuple[str, float | None, float | None] | None:
    """The order-total band the innermost heading that states one gives ("Orders up to
    €150" -> ("EUR", None, 150)), or None."""
    from rag.knowledge.entities import amounts_in

    country = next((m for m in markets if len(m) == 2 and m.upper() != "ALL"), None)
    for heading in reversed(path):
        for m in _BAND.finditer(heading):
            money = amounts_in(m.group("money"), country=country, lang=langs[-1])
            if not money:
                continue
            value = float(money[0].amount)
            if m.group("above"):
                return (money[0].currency, value, None)
            return (money[0].currency, None, value)
    return None


def _path_service(path: Sequence[str]) -> str | None:
    for heading in reversed(path):
        level = service_level(heading)
        if level:
            return level
    return None


def _statement(path: Sequence[str], body: str) -> str:
    head = PATH_SEP.join(path)
    return f"{head}{STATEMENT_SEP}{body}" if head else body


def _has_words(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _table_facts(
    block: Block, path: tuple[str, ...], ctx: _Context, *, with_span: bool = True
) -> list[Fact]:
    rows = [cells(ln) for ln in block.lines if not SEPARATOR.match(ln)]
    if len(rows) < 2:
        return []
    header, body = rows[0], rows[1:]
    width = len(header)
    body = [(r + [""] * width)[:width] for r in body]
    # A column is about places when most of its cells name one: that column, not a carrier's
    # name in another ("China Post"), says which markets the row is for.
    place_cols = {
        c
        for c in range(width)
        if 2 * sum(bool(find_places(r[c], ctx.langs)) for r in body) >= len(body)
        and any(find_places(r[c], ctx.langs) for r in body)
    }
    col_service = [service_level(h) for h in header]
    levels = list(dict.fromkeys(s for s in col_service if s))
    groups: list[tuple[str | None, list[int]]]
    if len(levels) >= 2:  # one row, several services: one fact per service
        shared = [c for c in range(width) if col_service[c] is None]
        groups = [
            (lvl, sorted(shared + [c for c in range(width) if col_service[c] == lvl]))
            for lvl in levels
        ]
    else:
        groups = [(levels[0] if levels else None, list(range(width)))]
    span = (block.start, block.end) if with_span else None
    facts: list[Fact] = []
    for row in body:
        if not any(row):
            continue
        about = [p for c in sorted(place_cols) for p in find_places(row[c], ctx.langs)]
        for level, cols in groups:
            pairs = [(header[c], row[c]) for c in cols if row[c]]
            if not pairs:
                continue
            text = "; ".join(f"{h}: {v}" if h else v for h, v in pairs)
            cells_text = " ".join(v for _, v in pairs)
            service = level or service_level(cells_text) or _path_service(path)
            statement = _statement(path, text)
            facts.append(
                Fact(
                    text=statement,
                    doc_id=ctx.doc.doc_id,
                    heading_path=path,
                    scope=ctx.scope(path, text, about=about, service=service),
                    numbers=quantities_in(text),
                    kind="row",
                    source=ctx.doc.source,
                    language=ctx.doc.language,
                    span=span,
                )
            )
    return facts


def _text_facts(
    block: Block, path: tuple[str, ...], ctx: _Context, *, kind: FactKind = "sentence"
) -> list[Fact]:
    if block.kind == "item":
        first = ITEM.match(block.lines[0])
        lines = [first.group(1) if first else block.lines[0], *block.lines[1:]]
        item = clean_inline(join_lines(lines))
        # a long item is several statements; a short one stays whole ("Label: value. Why.")
        parts = sentences(item) if len(item) > _LONG_ITEM else [item]
    else:
        parts = sentences(clean_inline(join_lines(block.lines)))
    facts = []
    for part in parts:
        if not _has_words(part):
            continue
        facts.append(
            Fact(
                text=_statement(path, part),
                doc_id=ctx.doc.doc_id,
                heading_path=path,
                scope=ctx.scope(path, part),
                numbers=quantities_in(part),
                kind=kind,
                source=ctx.doc.source,
                language=ctx.doc.language,
                span=(block.start, block.end),
            )
        )
    return facts


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _compile_text(ctx: _Context, text: str, *, tables_only: bool = False) -> list[Fact]:
    # a comment is invisible to the shop's readers and states nothing to them (it may hide an
    # order to the assistant); blanked, not removed, so that spans still point into the text
    text = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    title = ctx.doc.title.strip()
    headings: list[tuple[int, str]] = []
    facts: list[Fact] = []
    for block in blocks(text):
        if block.kind == "heading":
            headings = [h for h in headings if h[0] < block.level]
            headings.append((block.level, clean_inline(block.lines[0])))
            continue
        path = tuple(h for _, h in headings) or ((title,) if title else ())
        if block.kind == "table":
            facts.extend(_table_facts(block, path, ctx, with_span=not tables_only))
        elif not tables_only:
            facts.extend(_text_facts(block, path, ctx))
    return facts


# ---- product catalogs --------------------------------------------------------------------

_VARIANT_SKU = re.compile(r"(?:^|,\s*)SKU\s+(\S+?)(?:,|$)")


def _product_facts(ctx: _Context) -> list[Fact]:
    """A product document as the catalog loader renders it: its fields and description as
    sentences about the product, and one fact per variant (options, SKU, price, stock)."""
    doc = ctx.doc
    title = doc.title.strip()
    handle = str(doc.extra.get("handle", ""))
    skus = [s for s in str(doc.extra.get("skus", "")).split(",") if s]
    product = frozenset(x for x in (title, handle, *skus) if x)
    head, sep, variants = doc.text.partition("\nVariants:\n")
    path = (title,)
    facts: list[Fact] = []
    offset = 0
    for line in head.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        body = clean_inline(line.strip().removeprefix("- "))
        if not _has_words(body) or body.startswith("Product:"):
            continue  # the title alone states nothing
        parts = sentences(body.removeprefix("Description:").strip())
        for part in parts:
            scope = ctx.scope(path, part)
            facts.append(
                Fact(
                    text=_statement(path, part),
                    doc_id=doc.doc_id,
                    heading_path=path,
                    scope=replace(scope, products=product | scope.products),
                    numbers=quantities_in(part),
                    kind="sentence",
                    source=doc.source,
                    language=doc.language,
                    span=(start, offset),
                )
            )
    offset = len(head) + len(sep)
    clauses = _market_clauses(head, ctx.langs)
    for line in variants.splitlines(keepends=True):
        body = line.strip().removeprefix("- ").strip()
        start, offset = offset, offset + len(line)
        if not body:
            continue
        m = _VARIANT_SKU.search(body)
        names = {title, handle} | ({m.group(1)} if m else set(skus))
        markets = _variant_markets(body, clauses)
        facts.append(
            Fact(
                text=_statement(path, body),
                doc_id=doc.doc_id,
                heading_path=path,
                scope=Scope(
                    countries=markets[0],
                    regions=markets[1],
                    products=frozenset(n for n in names if n),
                    service=None,
                ),
                numbers=quantities_in(body),
                kind="variant",
                source=doc.source,
                language=doc.language,
                span=(start, offset),
            )
        )
    return facts


def _words_of(text: str) -> set[str]:
    return set(re.findall(r"\w+", norm(text)))


def _market_clauses(
    text: str, langs: Sequence[str]
) -> list[tuple[set[str], tuple[frozenset[str], frozenset[str]]]]:
    """The clauses of a product's description that name markets ("EU plug (Type C) for the
    European Union, Norway, …"), as (their words, (countries, regions))."""
    out = []
    for clause in re.split(r"[;\n]|(?<=[.!?])\s", text):
        places = find_places(clause, langs)
        if places:
            out.append((_words_of(clause), _split_places(places)))
    return out


def _variant_markets(
    body: str, clauses: list[tuple[set[str], tuple[frozenset[str], frozenset[str]]]]
) -> tuple[frozenset[str], frozenset[str]]:
    """The markets of a variant whose option value ("Plug: EU (Type C)") one description clause
    ties to markets; none when no clause or several do (a variant is then for every market)."""
    options = body.split(", SKU")[0]
    values = [v.split(":", 1)[1] for v in options.split(", ") if ":" in v]
    empty: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    for value in values:
        words = _words_of(value)
        if not words:
            continue
        hits = [markets for clause_words, markets in clauses if words <= clause_words]
        if len(hits) == 1:
            return hits[0]
    return empty


# ---- entry points ------------------------------------------------------------------------


def _context(doc: SourceDocument, catalog_names: Iterable[str]) -> _Context:
    lang = doc.language if doc.language and doc.language != "und" else "en"
    return _Context(doc=doc, langs=tuple(sorted({"en", lang})), catalog_names=tuple(catalog_names))


def compile_facts(
    doc: SourceDocument, *, html: str | None = None, catalog_names: Iterable[str] = ()
) -> list[Fact]:
    """Every fact a loaded document states.

    Policy text gives one fact per table row (per service level when the columns are split by
    service) and per sentence or list item; a catalog product gives its described features and
    one fact per variant. `html` is the raw page of an HTML document: its tables are compiled
    from it (the loaded text has lost their rows and columns). `catalog_names` (product titles,
    SKUs) scope policy statements that name a product to that product."""
    ctx = _context(doc, catalog_names)
    if doc.doc_type == "product" and "\nVariants:\n" in doc.text:
        return _product_facts(ctx)
    if html is None:
        return _compile_text(ctx, doc.text)
    table_facts = _compile_text(ctx, html_tables_markdown(html), tables_only=True)
    return _compile_text(ctx, _without_flattened_tables(doc.text, html)) + table_facts


def _without_flattened_tables(text: str, html: str) -> str:
    """The loaded text, less the lines that are an HTML table's cells (one per line there)."""
    cells = {norm(c) for c in html_table_cells(html)}
    if not cells:
        return text
    # blanked, not removed, so that the other facts' spans still point into the loaded text
    return "".join(
        ln if norm(ln.strip()) not in cells else re.sub(r"[^\n]", " ", ln)
        for ln in text.splitlines(keepends=True)
    )


# ---- storage -----------------------------------------------------------------------------

# bump when the compiler's output changes: stores recompile their facts on the next sync
FACTS_VERSION = "5"


def fact_to_dict(f: Fact) -> dict[str, object]:
    s = f.scope
    return {
        "text": f.text,
        "doc_id": f.doc_id,
        "heading_path": list(f.heading_path),
        "scope": {
            "countries": sorted(s.countries),
            "regions": sorted(s.regions),
            "mentions": sorted(s.mentions),
            "products": sorted(s.products),
            "service": s.service,
            "segment": s.segment,
            "band": list(s.band) if s.band else None,
        },
        "numbers": list(f.numbers),
        "kind": f.kind,
        "source": f.source,
        "language": f.language,
        "span": list(f.span) if f.span else None,
    }


def fact_from_dict(d: dict[str, object]) -> Fact:
    s = d["scope"]
    assert isinstance(s, dict)
    span = d.get("span")
    return Fact(
        text=str(d["text"]),
        doc_id=str(d["doc_id"]),
        heading_path=tuple(d["heading_path"]),  # type: ignore[arg-type]
        scope=Scope(
            countries=frozenset(s["countries"]),
            regions=frozenset(s["regions"]),
            mentions=frozenset(s["mentions"]),
            products=frozenset(s["products"]),
            service=s["service"],
            segment=s["segment"],
            band=tuple(s["band"]) if s.get("band") else None,
        ),
        numbers=tuple(d["numbers"]),  # type: ignore[arg-type]
        kind=d["kind"],  # type: ignore[arg-type]
        source=str(d.get("source") or ""),
        language=str(d.get("language") or "und"),
        span=(int(span[0]), int(span[1])) if isinstance(span, list) else None,
    )
