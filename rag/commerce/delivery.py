"""Delivery windows read from the seller's own shipping documents, and business-day arithmetic.

kefu does not keep a shipping table of its own: the window it quotes for an order is the
transit time the shop's shipping policy states for the order's destination and service, either
in a sentence ("Mexico usually takes 10–18 business days by standard shipping") or in a
Markdown table row that names the country (or its region: "27 EU countries"). A country note
wins over a zone row, because sellers write notes for the exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from babel import Locale

from rag.commerce.markets import EU
from rag.lang.countries import NAME_ALIASES

_RANGE = re.compile(
    r"(\d{1,3})\s*(?:–|—|-|to|~|～)\s*(\d{1,3})\s*(?:business\s+|working\s+)?days?", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


@dataclass(frozen=True)
class Window:
    low: int  # business days in transit
    high: int
    doc_id: str
    title: str


@dataclass(frozen=True)
class Doc:
    doc_id: str
    title: str
    text: str


@lru_cache(maxsize=512)
def country_names(code: str) -> tuple[str, ...]:
    """The English names a shipping policy may use for a country, its region last."""
    en = Locale("en")
    names = [en.territories.get(code.upper(), code.upper()), *NAME_ALIASES.get(code.upper(), ())]
    if code.upper() in EU:
        names += ["EU", "European Union"]
    return tuple(names)


def _mentions(text: str, names: Iterable[str]) -> int | None:
    """Position just after the first name mentioned as a whole word, else None."""
    best: int | None = None
    for name in names:
        m = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.I)
        if m and (best is None or m.end() < best):
            best = m.end()
    return best


def _service_ok(text: str, service: str) -> bool:
    other = "standard" if service == "express" else "express"
    low = text.lower()
    return service in low or other not in low


def find_window(docs: Iterable[Doc], country: str, service: str) -> Window | None:
    """The transit time (business days) the shop's documents give for a destination."""
    names = country_names(country)
    own = names[: len(names) - (2 if country.upper() in EU else 0)]
    table_hit: Window | None = None
    for doc in docs:
        lines = doc.text.splitlines()
        header: list[str] | None = None
        for line in lines:
            if line.lstrip().startswith("|"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if header is None:
                    header = [c.lower() for c in cells]
                    continue
                if set("".join(cells)) <= set("-: "):
                    continue
                where = [i for i, h in enumerate(header) if "countr" in h or "destination" in h]
                scope = " | ".join(cells[i] for i in where if i < len(cells)) if where else line
                if table_hit is None and _mentions(scope, names) is not None:
                    table_hit = _from_row(cells, header, service, doc)
                continue
            header = None
            for sentence in _SENTENCE_END.split(line):
                at = _mentions(sentence, own)
                if at is None or not _service_ok(sentence, service):
                    continue
                m = _RANGE.search(sentence, at)
                if m:
                    return Window(int(m.group(1)), int(m.group(2)), doc.doc_id, doc.title)
    return table_hit


def _from_row(cells: list[str], header: list[str], service: str, doc: Doc) -> Window | None:
    for i, name in enumerate(header):
        if i < len(cells) and service in name and "time" in name:
            m = _RANGE.search(cells[i])
            if m:
                return Window(int(m.group(1)), int(m.group(2)), doc.doc_id, doc.title)
    return None


def add_business_days(start: date, days: int) -> date:
    d = start
    while days > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d


def business_days_between(start: datetime, end: datetime) -> int:
    """Whole business days after `start` up to `end` (Monday to Friday)."""
    d, n = start.date(), 0
    while d < end.date():
        d += timedelta(days=1)
        if d.weekday() < 5:
            n += 1
    return n
