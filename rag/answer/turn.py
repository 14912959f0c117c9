"""Understanding a turn: what the shopper asked, in which language and market, who is asking,
and what the session already holds. The result is a frozen value every later step reads."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.commerce.personalisation import Personal, Personaliser
from rag.conversations.types import Turn
from rag.errors import KefuError
from rag.guardrails.escalation import Escalation, EscalationPolicy
from rag.guardrails.knn import Mode, embed_texts
from rag.lang.frames import country_mentioned
from rag.ports import ConversationStore, Embedder, LanguageDetector, OrderConnector
from rag.textutil import lexical_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AskRequest:
    message: str
    session_id: str | None = None
    customer_id: str | None = None
    country: str | None = None
    locale: str | None = None
    email: str | None = None  # the shopper's e-mail, when the storefront or shopper gave it
    # the real client address (the server resolves trusted proxies); failed order checks are
    # also counted per address
    client_address: str | None = None


@dataclass(frozen=True)
class TurnContext:
    """One turn as understood before any answer is drafted."""

    request: AskRequest
    session_id: str
    language: str
    country: str | None  # ISO code, upper case
    query: str  # what retrieval searches for (a follow-up joined to the previous question)
    history: tuple[Turn, ...]
    customer_key: str | None  # customer id or e-mail, from the request or the session
    personal: Personal  # the seller's rules for this shopper
    open_handoff: Escalation | None  # a person already has the conversation (and why)
    signals: Escalation  # what the message itself says about escalating
    started: float  # time.perf_counter() when the turn began
    # the message embedded once for the whole turn (emotion, small talk and injection screening
    # share it; retrieval too when the classifiers were built in query mode); None when nothing
    # needs it (a person has the conversation, or no embedder was given)
    vector: tuple[float, ...] | None = None
    vector_mode: Mode = "document"
    # the message embedded as a search query, when it was embedded with the document vector in
    # one model call (the embedder offers `embed_query_and_document`)
    search_vector: tuple[float, ...] | None = None

    @property
    def message(self) -> str:
        return self.request.message

    @property
    def query_vector(self) -> list[float] | None:
        """The turn's vector where retrieval can use it as the search vector: embedded as a
        query, and the search is for the message itself (not a follow-up joined to the
        previous question)."""
        if self.query != self.message:
            return None
        if self.search_vector is not None:
            return list(self.search_vector)
        if self.vector is None or self.vector_mode != "query":
            return None
        return list(self.vector)


class Said(Protocol):
    """A turn of a conversation, as the store or a golden case holds it."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


def standalone_query(message: str, history: Sequence[Said]) -> str:
    """A follow-up ("and to Canada?") is searched together with the previous question."""
    prev = next((t.content for t in reversed(history) if t.role == "user"), None)
    if prev and len(lexical_tokens(message)) <= 6:
        return f"{prev}\n{message}"
    return message


class Understanding:
    """Reads the session once and turns a request into a TurnContext."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        detector: LanguageDetector,
        history_turns: int,
        escalation: EscalationPolicy | None = None,
        customers: OrderConnector | None = None,
        personaliser: Personaliser | None = None,
        embedder: Embedder | None = None,
        vector_mode: Mode = "document",
    ) -> None:
        self.conversations = conversations
        self.detector = detector
        self.history_turns = history_turns
        self.escalation = escalation
        self.customers = customers
        self.personaliser = personaliser
        # embeds the message once per turn, in the mode the classifiers were built in
        self.embedder = embedder
        self.vector_mode: Mode = vector_mode

    def understand(self, req: AskRequest) -> TurnContext:
        started = time.perf_counter()
        session_id = req.session_id or uuid.uuid4().hex
        history = self.conversations.history(session_id, self.history_turns)
        session = self.conversations.session(session_id) or {}
        hint = (req.locale or "").split("-")[0] or next(
            (t.language for t in reversed(history) if t.role == "user" and t.language), None
        )
        lang, _ = self.detector.detect(req.message, hint=hint)
        if lang == "und":
            lang = hint or "en"
        country = req.country or country_mentioned(req.message) or session.get("country") or None
        query = standalone_query(req.message, history)
        customer_key = req.customer_id or req.email or session.get("customer_id")
        personal = self.personal(customer_key, lang)
        active = self.conversations.active_handoff(session_id)
        vector: tuple[float, ...] | None = None
        search: tuple[float, ...] | None = None
        pair = getattr(self.embedder, "embed_query_and_document", None)
        if self.embedder is not None and active is None:
            if pair is not None and self.vector_mode == "document" and query == req.message:
                # the search vector too, in the same forward pass (one model call per turn)
                q, d = pair(req.message)
                vector, search = tuple(d), tuple(q)
            else:
                vector = tuple(embed_texts(self.embedder, [req.message], self.vector_mode)[0])
        signals = (
            self.escalation.before_answer(
                req.message,
                personal.routing,
                vector=vector if self.escalation.emotion.knn.mode == self.vector_mode else None,
            )
            if self.escalation and active is None
            else Escalation(False)
        )
        return TurnContext(
            request=req,
            session_id=session_id,
            language=lang,
            country=country.upper() if country else None,
            query=query,
            history=tuple(history),
            customer_key=customer_key,
            personal=personal,
            open_handoff=None if active is None else Escalation(True, str(active["reason"])),
            signals=signals,
            started=started,
            vector=vector,
            vector_mode=self.vector_mode,
            search_vector=search,
        )

    def personal(self, key: str | None, lang: str) -> Personal:
        """The seller's personalisation rules applied to this shopper's profile, if known."""
        if self.personaliser is None or self.customers is None or not key:
            return Personal()
        try:
            customer = self.customers.get_customer(key)
        except KefuError as exc:  # the storefront is down: answer without personalisation
            log.warning("customer lookup failed (%s)", exc.__class__.__name__)
            return Personal()
        return self.personaliser.apply(customer, lang)
