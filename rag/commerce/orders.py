"""Order tracking: "where is my order #1042?" answered from live order data.

The flow per session: find the order number (or ask for it), ask for proof of ownership (the
order's e-mail or shipping postcode), look the order up through the storefront connector, and
reply with its state, parcels, last scan and the delivery window the shop's shipping policy
gives for the destination. A late parcel or a failed delivery goes to a person
(`order_exception`).

Every sentence is a localised frame filled with order data or figures from the shop's
documents, so nothing in an order reply is generated: no status, date or number can be
invented. A failed check reads the same whether the order exists or not (no enumeration), and
after `max_verification_failures` in a session kefu stops checking and hands the chat to a
person. Failed checks are also counted across sessions, per order number, per customer and per
client address: a key that reaches its limit is locked out (exponentially longer each time),
and a check on a locked key fails like any other (the right proof included), so a new chat
per guess gains nothing and the reply tells nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from babel.dates import format_date

from rag.commerce.delivery import Doc, Window, add_business_days, business_days_between, find_window
from rag.commerce.markets import applicable_markets
from rag.commerce.types import Fulfilment, Order, normalise_order_number
from rag.conversations.store import ConversationStore, attempt_key
from rag.errors import ConnectorUnavailable
from rag.guardrails.escalation import PhraseMatcher
from rag.knowledge.index import DocumentInfo, KnowledgeIndex
from rag.lang.frames import country_name_in, frame, phrases
from rag.ports import OrderConnector
from rag.settings import CommerceSettings
from rag.textutil import fold

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HASH_NUMBER = re.compile(r"#\s*([A-Za-z]{0,4}-?\d{3,12})\b")
_NUMBER_AFTER_NOUN = re.compile(
    r"[^\d@]{0,14}?(?<![A-Za-z0-9])([A-Za-z]{0,4}-?\d{4,12})(?![A-Za-z0-9@])"
)
IN_TRANSIT = {"in_transit", "customs_hold", "partially_shipped", "out_for_delivery"}
PROBLEMS = {"delivery_exception"}


@lru_cache(maxsize=1)
def _nouns() -> list[str]:
    return sorted({fold(p) for ps in phrases("order_noun").values() for p in ps})


def find_order_number(message: str) -> str | None:
    """An order number the shopper wrote: "#1042", or digits right after "order"/"pedido"/
    "订单"… Quantities, postcodes and amounts elsewhere in the message are not taken."""
    if m := _HASH_NUMBER.search(message):
        return normalise_order_number(m.group(1))
    t = fold(message)
    for noun in _nouns():
        i = t.find(noun)
        while i >= 0:
            tail = t[i + len(noun) : i + len(noun) + 24]
            before = t[i - 1 : i] if i else ""
            # whole words in scripts with spaces: "ordered 2500 units" is not an order
            latin = noun[-1].isascii()
            if not (latin and (tail[:1].isalpha() or before.isalpha())):
                # four digits at least: "order 100 mugs" is a quantity, not order #100
                m = _NUMBER_AFTER_NOUN.match(tail)
                if m:
                    return normalise_order_number(m.group(1))
            i = t.find(noun, i + 1)
    return None


@dataclass
class OrderReply:
    text: str
    mode: str  # order | order_ask | order_unverified | order_locked | order_unavailable
    order_number: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    escalate: str | None = None  # order_exception when a person should take over
    late: bool = False
    customer_id: str | None = None  # the verified order's customer


class OrderAssistant:
    def __init__(
        self,
        connector: OrderConnector,
        *,
        index: KnowledgeIndex,
        conversations: ConversationStore,
        settings: CommerceSettings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.connector = connector
        self.index = index
        self.conversations = conversations
        self.settings = settings
        self.now = now
        self.intent = PhraseMatcher("order_status")
        self.other = PhraseMatcher("order_other")

    # -- detection ----------------------------------------------------------------------------
    def wants(self, message: str, session_id: str) -> bool:
        """Is this turn about an order's whereabouts (or the answer to kefu's question)?"""
        if find_order_number(message):
            return True
        if self.intent.match(message):
            # "can I cancel my order?" is about the policy, not the parcel
            return self.other.match(message) is None
        pending = self.conversations.state(session_id).get("order", {}).get("pending")
        return bool(pending and (_EMAIL.search(message) or self._proof_tokens(message)))

    # -- the flow -----------------------------------------------------------------------------
    def handle(
        self,
        message: str,
        *,
        lang: str,
        session_id: str,
        email: str | None = None,
        customer_id: str | None = None,
        order_problem_to_human: bool = False,
        client_address: str | None = None,
    ) -> OrderReply:
        state = self.conversations.state(session_id)
        st: dict[str, Any] = state.setdefault("order", {})
        verified: list[str] = st.setdefault("verified", [])
        if st.get("failures", 0) >= self.settings.max_verification_failures:
            return OrderReply(f"{frame(lang, 'order_locked')}", "order_locked")

        number = find_order_number(message) or st.get("pending")
        if number is None and len(verified) == 1:
            number = verified[0]  # "and when will it arrive?" about the order we just checked
        if number is None:
            self._save(session_id, state)
            return OrderReply(frame(lang, "ask_order_number"), "order_ask")

        try:
            if number not in verified:
                proofs = self._proofs(message, number, email)
                trusted = customer_id if self.settings.trust_customer_id else None
                if not proofs and trusted is None:
                    st["pending"] = number
                    self._save(session_id, state)
                    return OrderReply(
                        frame(lang, "order_ask_verification", number=number), "order_ask", number
                    )
                limits = self._attempt_limits(number, email, customer_id, client_address)
                now = self.now()
                locked = self.conversations.locked(limits, now)
                order = self.connector.get_order(number) if trusted or not locked else None
                owner: dict[str, int] = {}
                if order is not None and order.customer_id:
                    owner = {attempt_key("customer", order.customer_id): self._limit}
                # a signed-in shopper's own order (the storefront vouches) is no guess
                by_account = bool(order and trusted and order.customer_id == trusted)
                if order is None or not (
                    by_account
                    or (
                        not locked
                        and not self.conversations.locked(owner, now)
                        and self._owns(order, proofs, None)
                    )
                ):
                    # the same path for an unknown order, a wrong proof and a locked key
                    return self._failed(lang, session_id, state, number, {**limits, **owner})
                verified.append(number)
                st["pending"] = None
                self._save(session_id, state)
            else:
                order = self.connector.get_order(number)
                if order is None:  # deleted since it was checked
                    return OrderReply(frame(lang, "verification_failed"), "order_unverified")
        except ConnectorUnavailable as exc:
            log.warning("order connector %s unavailable: %s", self.connector.name, exc)
            return OrderReply(frame(lang, "order_unavailable"), "order_unavailable", number)
        return self.describe(order, lang, order_problem_to_human=order_problem_to_human)

    @property
    def _limit(self) -> int:
        return self.settings.verification_limit

    def _attempt_limits(
        self,
        number: str,
        email: str | None,
        customer_id: str | None,
        client_address: str | None,
    ) -> dict[str, int]:
        """The keys a failed check counts against (hashed), with their limits: the order
        number always, the customer who asks when known, the client address when given."""
        out = {attempt_key("order", number): self._limit}
        for who in (customer_id, email):
            if who and who.strip():
                out[attempt_key("customer", who)] = self._limit
        if client_address and client_address.strip():
            out[attempt_key("client", client_address)] = self.settings.verification_limit_per_client
        return out

    def _failed(
        self,
        lang: str,
        session_id: str,
        state: dict[str, Any],
        number: str,
        limits: dict[str, int],
    ) -> OrderReply:
        st: dict[str, Any] = state["order"]
        st["failures"] = st.get("failures", 0) + 1
        st["pending"] = None
        self._save(session_id, state)
        s = self.settings
        if self.conversations.record_failure(
            limits,
            now=self.now(),
            lock_s=s.verification_lock_s,
            max_lock_s=s.verification_lock_max_s,
            window_s=s.verification_window_s,
        ):
            log.warning("order checks locked out after repeated failures (order #%s)", number)
        log.info("order check failed (%d in session)", st["failures"])
        if st["failures"] >= s.max_verification_failures:
            # a person takes over: they can check the shopper's identity another way
            return OrderReply(
                frame(lang, "order_locked"), "order_locked", escalate="order_verification"
            )
        return OrderReply(frame(lang, "verification_failed"), "order_unverified")

    # -- the reply ----------------------------------------------------------------------------
    def describe(
        self, order: Order, lang: str, *, order_problem_to_human: bool = False
    ) -> OrderReply:
        """The order's state in the shopper's language, from order data and shop documents."""
        n = order.number
        now = self.now()
        lines: list[str] = []
        sources: list[dict[str, Any]] = [
            {"doc_id": f"order:{n}", "title": f"#{n}", "chunk_id": "", "score": 1.0}
        ]
        shipped = [f for f in order.fulfilments if f.tracking_number]
        status_values: dict[str, str] = {"number": n}
        if order.status == "delivered":
            when = next((f.delivered_at for f in shipped if f.delivered_at), None) or _last_at(
                shipped
            )
            status_values["date"] = self._date(when or now, lang)
        elif order.status == "cancelled":
            status_values["date"] = self._date(order.cancelled_at or order.created_at, lang)
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
                        date=self._date(ev.at, lang),
                        event=ev.description,
                        location=ev.location,
                    ).replace(", .", ".")
                )

        escalate: str | None = None
        late = False
        moving = [f for f in shipped if not f.delivered_at]
        if order.status in IN_TRANSIT and moving:
            docs = self.index.documents()  # once per reply: windows, customs and tracking pages
            f = moving[0]
            window = self._window(order, f, docs)
            if window is not None and f.shipped_at is not None:
                start = add_business_days(f.shipped_at.date(), window.low)
                end = add_business_days(f.shipped_at.date(), window.high)
                lines.append(
                    frame(
                        lang,
                        "order_window",
                        start=self._date(start, lang),
                        end=self._date(end, lang),
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
                self.settings.stale_days_express
                if f.service == "express"
                else self.settings.stale_days_standard
            )
            if since is not None and order.status != "out_for_delivery":
                idle = business_days_between(since, now)
                if idle > limit:
                    lines.append(frame(lang, "order_stale", days=str(idle), limit=str(limit)))
                    escalate, late = "order_exception", True
                    if (doc := self._doc_titled("tracking", docs)) is not None:
                        sources.append(doc)
            if order.status == "customs_hold":
                doc = self._customs_doc(order.country, docs)
                if doc is not None:
                    lines.append(frame(lang, "order_customs_hint", title=doc["title"]))
                    sources.append(doc)
        if order.status in PROBLEMS:
            lines.append(frame(lang, "order_exception_hint"))
            escalate = "order_exception"
        if late and escalate is None and order_problem_to_human:
            escalate = "vip"
        return OrderReply("\n".join(lines), "order", n, sources, escalate, late, order.customer_id)

    # -- helpers ------------------------------------------------------------------------------
    def _proofs(self, message: str, number: str, email: str | None) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        if "email" in self.settings.verify_with:
            emails = {e.casefold() for e in _EMAIL.findall(message)}
            if email:
                emails.add(email.strip().casefold())
            if emails:
                out["email"] = emails
        if "postcode" in self.settings.verify_with:
            tokens = {
                t for t in self._proof_tokens(_EMAIL.sub(" ", message)) if number.upper() not in t
            }
            if tokens:
                out["postcode"] = tokens
        return out

    @staticmethod
    def _proof_tokens(message: str) -> set[str]:
        """Tokens (and pairs, for "SW1A 2AA") that could be a postcode: they contain a digit."""
        words = re.findall(r"[A-Za-z0-9-]+", message.upper())
        digit = [any(ch.isdigit() for ch in w) for w in words]
        pairs = {
            words[i] + words[i + 1] for i in range(len(words) - 1) if digit[i] and digit[i + 1]
        }
        cands = set(words) | pairs
        return {
            c.replace("-", "")
            for c in cands
            if any(ch.isdigit() for ch in c) and 3 <= len(c.replace("-", "")) <= 10
        }

    @staticmethod
    def _owns(order: Order, proofs: dict[str, set[str]], customer_id: str | None) -> bool:
        if customer_id and order.customer_id and customer_id == order.customer_id:
            return True
        if order.email and order.email.casefold() in proofs.get("email", set()):
            return True
        postcode = (order.postcode or "").upper().replace(" ", "").replace("-", "")
        return bool(postcode) and postcode in proofs.get("postcode", set())

    def _save(self, session_id: str, state: dict[str, Any]) -> None:
        self.conversations.set_state(session_id, state)

    def _window(self, order: Order, f: Fulfilment, docs: list[DocumentInfo]) -> Window | None:
        country = order.country
        if not country:
            return None
        markets = set(applicable_markets(country))
        shipping = [
            Doc(d.doc_id, d.title, "\n".join(c.text for c in self.index.document_chunks(d.doc_id)))
            for d in docs
            if d.doc_type == "shipping" and (set(d.markets) & markets or "ALL" in d.markets)
        ]
        # documents written for the destination first: their notes beat the general table
        shipping.sort(key=lambda d: 0 if country.lower() in d.doc_id else 1)
        return find_window(shipping, country, f.service)

    @staticmethod
    def _customs_doc(country: str | None, docs: list[DocumentInfo]) -> dict[str, Any] | None:
        customs = [d for d in docs if d.doc_type == "customs"]
        own = [d for d in customs if country and country.upper() in d.markets]
        pick = own or [d for d in customs if "overview" in d.doc_id] or customs
        return _doc_source(pick[0].doc_id, pick[0].title) if pick else None

    @staticmethod
    def _doc_titled(word: str, docs: list[DocumentInfo]) -> dict[str, Any] | None:
        for d in docs:
            if d.doc_type == "shipping" and word in (d.doc_id + d.title).lower():
                return _doc_source(d.doc_id, d.title)
        return None

    @staticmethod
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
