"""Order tracking: "where is my order #1042?" answered from live order data.

The flow per session: find the order number (or ask for it), ask for proof of ownership (the
order's e-mail or shipping postcode), look the order up through the storefront connector, and
reply with its state, parcels, last scan and the delivery window the shop's shipping policy
gives for the destination (rag/commerce/order_reply.py: frames filled with order data, so no
status, date or number can be invented). A failed check reads the same whether the order
exists or not (no enumeration), and after `max_verification_failures` in a session kefu stops
checking and hands the chat to a person. Failed checks are also counted across sessions, per
order number, per customer and per client address: a key that reaches its limit is locked out
(exponentially longer each time), and a check on a locked key fails like any other (the right
proof included), so a new chat per guess gains nothing and the reply tells nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from rag.commerce.order_reply import OrderReply, describe_order
from rag.commerce.types import Order, normalise_order_number
from rag.conversations.types import attempt_key
from rag.errors import ConnectorUnavailable
from rag.guardrails.escalation import PhraseMatcher
from rag.guardrails.pii import EMAIL
from rag.knowledge.index import KnowledgeIndex
from rag.lang.frames import frame, phrases
from rag.ports import ConversationStore, OrderConnector
from rag.settings import CommerceSettings
from rag.textutil import fold

log = logging.getLogger(__name__)

_HASH_NUMBER = re.compile(r"#\s*([A-Za-z]{0,4}-?\d{3,12})\b")
_NUMBER_AFTER_NOUN = re.compile(
    r"[^\d@]{0,14}?(?<![A-Za-z0-9])([A-Za-z]{0,4}-?\d{4,12})(?![A-Za-z0-9@])"
)


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
        return bool(pending and (EMAIL.search(message) or self._proof_tokens(message)))

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

    def describe(
        self, order: Order, lang: str, *, order_problem_to_human: bool = False
    ) -> OrderReply:
        """The order's state in the shopper's language, from order data and shop documents."""
        return describe_order(
            order,
            lang,
            index=self.index,
            settings=self.settings,
            now=self.now(),
            order_problem_to_human=order_problem_to_human,
        )

    # -- helpers ------------------------------------------------------------------------------
    def _proofs(self, message: str, number: str, email: str | None) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        if "email" in self.settings.verify_with:
            emails = {e.casefold() for e in EMAIL.findall(message)}
            if email:
                emails.add(email.strip().casefold())
            if emails:
                out["email"] = emails
        if "postcode" in self.settings.verify_with:
            tokens = {
                t for t in self._proof_tokens(EMAIL.sub(" ", message)) if number.upper() not in t
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
