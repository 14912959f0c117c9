"""The reply to a verified order question: its state, parcels, last scan and delivery window,
in the shopper's language.

Every sentence is a localised frame filled with order data or figures from the shop's
documents (the delivery window of the shipping policy, the customs page of the destination),
so nothing in an order reply is generated. A late parcel or a failed delivery goes to a person
(`order_exception`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from babel.dates import format_date

from rag.commerce.delivery import Doc, Window, add_business_days, business_days_between, find_window
from rag.commerce.markets import applicable_markets
from rag.commerce.types import Fulfilment, Order
from rag.knowledge.index import DocumentInfo, KnowledgeIndex
from rag.lang.countries import country_name_in
from rag.lang.frames import frame
from rag.settings import CommerceSettings

IN_TRANSIT = {"in_transit", "customs_hold", "partially_shipped", "out_for_delivery"}
PROBLEMS = {"delivery_exception"}


@dataclass
class OrderReply:
    text: str
    mode: str  # order | order_ask | order_unverified | order_locked | order_unavailable
    order_number: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    escalate: str | None = None  # order_exception when a person should take over
    late: bool = False
    customer_id: str | None = None  # the verified order's customer


def describe_order(
    order: Order,
    lang: str,
    *,
    index: KnowledgeIndex,
    settings: CommerceSettings,
    now: datetime,
    order_problem_to_human: bool = False,
) -> OrderReply:
    """The order's state in the shopper's language, from order data and shop documents."""
    n = order.number
    lines: list[str] = []
    sources: list[dict[str, Any]] = [
        {"doc_id": f"order:{n}", "title": f"#{n}", "chunk_id": "", "score": 1.0}
    ]
    shipped = [f for f in order.fulfilments if f.tracking_number]
    status_values: dict[str, str] = {"number": n}
    if order.status == "delivered":
        when = next((f.delivered_at for f in shipped if f.delivered_at), None) or _last_at(shipped)
        status_values["date"] = _date(when or now, lang)
    elif order.status == "cancelled":
        status_values["date"] = _date(order.cancelled_at or order.created_at, lang)
    lines.append(frame(lang, f"order_status_{order.status}", **status_values))
    if order.line_items:
        items = ", ".join(f"{i.quantity} × {i.title}" for i in order.line_items)
        lines.append(frame(lang, "order_items", items=items))

    for f in shipped if order.status not in {"cancelled", "awaiting_payment"} else []:
        lines.append(frame(lang, "order_parcel", carrier=f.carrier, tracking=f.tracking_number))
        if f.tracking_url:
            lines.append(frame(lang, "order_track_link", url=f.tracking_url))
        if (ev := f.last_event) is not None:
            lines.append(
                frame(
                    lang,
                    "order_last_scan",
                    date=_date(ev.at, lang),
                    event=ev.description,
                    location=ev.location,
                ).replace(", .", ".")
            )

    escalate: str | None = None
    late = False
    moving = [f for f in shipped if not f.delivered_at]
    if order.status in IN_TRANSIT and moving:
        docs = index.documents()  # once per reply: windows, customs and tracking pages
        f = moving[0]
        window = _window(index, order, f, docs)
        if window is not None and f.shipped_at is not None:
            start = add_business_days(f.shipped_at.date(), window.low)
            end = add_business_days(f.shipped_at.date(), window.high)
            lines.append(
                frame(
                    lang,
                    "order_window",
                    start=_date(start, lang),
                    end=_date(end, lang),
                    low=str(window.low),
                    high=str(window.high),
                    country=country_name_in(order.country or "", lang),
                )
            )
            sources.append(_doc_source(window.doc_id, window.title))
            if now.date() > end:
                lines.append(frame(lang, "order_window_passed"))
                late = True
        since = f.last_event.at if f.last_event else f.shipped_at
        limit = (
            settings.stale_days_express if f.service == "express" else settings.stale_days_standard
        )
        if since is not None and order.status != "out_for_delivery":
            idle = business_days_between(since, now)
            if idle > limit:
                lines.append(frame(lang, "order_stale", days=str(idle), limit=str(limit)))
                escalate, late = "order_exception", True
                if (doc := _doc_titled("tracking", docs)) is not None:
                    sources.append(doc)
        if order.status == "customs_hold":
            doc = _customs_doc(order.country, docs)
            if doc is not None:
                lines.append(frame(lang, "order_customs_hint", title=doc["title"]))
                sources.append(doc)
    if order.status in PROBLEMS:
        lines.append(frame(lang, "order_exception_hint"))
        escalate = "order_exception"
    if late and escalate is None and order_problem_to_human:
        escalate = "vip"
    return OrderReply("\n".join(lines), "order", n, sources, escalate, late, order.customer_id)


def _window(
    index: KnowledgeIndex, order: Order, f: Fulfilment, docs: list[DocumentInfo]
) -> Window | None:
    country = order.country
    if not country:
        return None
    markets = set(applicable_markets(country))
    shipping = [
        Doc(d.doc_id, d.title, "\n".join(c.text for c in index.document_chunks(d.doc_id)))
        for d in docs
        if d.doc_type == "shipping" and (set(d.markets) & markets or "ALL" in d.markets)
    ]
    # documents written for the destination first: their notes beat the general table
    shipping.sort(key=lambda d: 0 if country.lower() in d.doc_id else 1)
    return find_window(shipping, country, f.service)


def _customs_doc(country: str | None, docs: list[DocumentInfo]) -> dict[str, Any] | None:
    customs = [d for d in docs if d.doc_type == "customs"]
    own = [d for d in customs if country and country.upper() in d.markets]
    pick = own or [d for d in customs if "overview" in d.doc_id] or customs
    return _doc_source(pick[0].doc_id, pick[0].title) if pick else None


def _doc_titled(word: str, docs: list[DocumentInfo]) -> dict[str, Any] | None:
    for d in docs:
        if d.doc_type == "shipping" and word in (d.doc_id + d.title).lower():
            return _doc_source(d.doc_id, d.title)
    return None


def _date(value: datetime | Any, lang: str) -> str:
    try:
        return str(format_date(value, format="long", locale=lang))
    except (ValueError, LookupError):
        return str(value.isoformat()[:10])


def _last_at(fulfilments: list[Fulfilment]) -> datetime | None:
    events = [f.last_event.at for f in fulfilments if f.last_event]
    return max(events) if events else None


def _doc_source(doc_id: str, title: str) -> dict[str, Any]:
    return {"doc_id": doc_id, "title": title, "chunk_id": "", "score": 1.0}
