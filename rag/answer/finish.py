"""Finishing a turn: the one place that opens a handoff, adds the seller's personal facts,
records the turn and emits the closing events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rag.answer.draft import ANSWERED, Draft, Event, ms
from rag.answer.turn import TurnContext, Understanding
from rag.commerce.personalisation import Personal
from rag.conversations.types import Turn
from rag.guardrails.escalation import Escalation
from rag.lang.frames import country_name_in, frame, language_name_in
from rag.ports import ConversationStore

# the modes of a reply that the seller's personal facts are added to
PERSONAL_MODES = frozenset({*ANSWERED, "fallback", "order"})


@dataclass
class Reply:
    reply: str
    language: str
    sources: list[dict[str, Any]]
    escalation: dict[str, Any]
    intent: str | None
    confidence: float
    prompt_version: str
    model: str
    timings_ms: dict[str, float]
    session_id: str
    # llm | faq | facts | extractive | fallback | dont_know | small_talk | handoff | order ...
    # (facts: the chosen facts quoted in the shopper's own language, no model needed)
    mode: str
    usage: dict[str, int] = field(default_factory=dict)
    country: str | None = None
    personalisation: list[str] = field(default_factory=list)  # ids of the rules that applied
    order: str | None = None  # the order number this turn was about
    # the facts the reply was written from ({"text", "doc_id", "scope"}): what it said and why
    facts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Handoffs:
    """Opens a handoff for the seller's agents, with a summary in the seller's language."""

    def __init__(
        self, conversations: ConversationStore, *, seller_language: str, support_hours: str
    ) -> None:
        self.conversations = conversations
        self.seller_language = seller_language
        self.support_hours = support_hours

    def open(self, turn: TurnContext, draft: Draft) -> str:
        """Open the handoff `draft.escalation` asks for; returns what the shopper is told."""
        seller, reason = self.seller_language, str(draft.escalation.reason)
        first = next((t.content for t in turn.history if t.role == "user"), turn.message)
        summary = frame(
            seller,
            "handoff_summary",
            reason=reason,
            language=language_name_in(turn.language, seller),
            country=country_name_in(turn.country, seller) if turn.country else "-",
            turns=str(len(turn.history) // 2 + 1),
            order=f"#{draft.order}" if draft.order else "-",
            first=repr(first[:200]),
            last=repr(turn.message[:200]),
        )
        self.conversations.open_handoff(
            turn.session_id,
            reason=reason,
            language=turn.language,
            summary=summary,
            customer_id=turn.request.customer_id,
        )
        return frame(turn.language, "handoff", hours=self.support_hours)


class Finisher:
    def __init__(
        self,
        *,
        conversations: ConversationStore,
        handoffs: Handoffs,
        understanding: Understanding,
        prompt_version: str,
        model: str,
    ) -> None:
        self.conversations = conversations
        self.handoffs = handoffs
        self.understanding = understanding
        self.prompt_version = prompt_version
        self.model = model

    def finish(
        self, turn: TurnContext, draft: Draft, verdicts: Sequence[Escalation]
    ) -> Iterator[Event]:
        """The closing events: corrections of streamed text (replace), the text itself when
        it was not streamed (token), then sources, escalation and done (the Reply)."""
        sent = draft.streamed
        escalated = self._escalated(draft, verdicts)
        if escalated is not None:
            draft = escalated
        if draft.hand_off:
            notice = self.handoffs.open(turn, draft)
            draft = replace(draft, text=f"{draft.text}\n\n{notice}" if draft.text else notice)
        if escalated is not None:  # an answer may already be on screen: it is replaced
            yield Event("replace", draft.text)
            sent = True
        personal = self._personal(turn, draft)
        text = draft.text
        if personal.facts and draft.mode in PERSONAL_MODES:
            text = f"{text}\n\n{frame(turn.language, 'personal_intro')} {' '.join(personal.facts)}"
            if sent:
                yield Event("replace", text)
        reply = self._reply(turn, draft, text, personal)
        self._record(turn, reply, customer_id=draft.customer_id or turn.customer_key)
        if not sent:  # replies that were not generated token by token arrive whole
            yield Event("token", reply.reply)
        yield Event("sources", reply.sources)
        yield Event("escalation", reply.escalation)
        yield Event("done", reply)

    @staticmethod
    def _escalated(draft: Draft, verdicts: Sequence[Escalation]) -> Draft | None:
        """The draft handed to a person, when a check says so: what it answered is kept."""
        verdict = next((v for v in verdicts if v.escalate), None)
        if verdict is None or draft.hand_off:
            return None
        kept = draft.text if draft.mode in ANSWERED else ""
        return replace(draft, text=kept, mode="handoff", escalation=verdict, hand_off=True)

    def _personal(self, turn: TurnContext, draft: Draft) -> Personal:
        """The turn's personalisation, or that of the customer a verified order identified."""
        key = draft.customer_id
        if key and key != turn.customer_key and not turn.personal.rule_ids:
            return self.understanding.personal(key, turn.language)
        return turn.personal

    def _reply(self, turn: TurnContext, draft: Draft, text: str, personal: Personal) -> Reply:
        return Reply(
            reply=text,
            language=turn.language,
            sources=list(draft.sources),
            escalation=draft.escalation.to_dict(),
            intent=draft.intent,
            confidence=round(draft.confidence, 3),
            prompt_version=self.prompt_version,
            model=self.model,
            timings_ms={**draft.timings, "total": ms(turn.started)},
            session_id=turn.session_id,
            mode=draft.mode,
            usage=draft.usage.to_dict() if draft.usage else {},
            country=turn.country,
            personalisation=personal.rule_ids,
            order=draft.order,
            facts=list(draft.facts),
        )

    def _record(self, turn: TurnContext, reply: Reply, *, customer_id: str | None) -> None:
        """The shopper's message and the reply: exactly one user and one assistant turn."""
        self.conversations.append(
            turn.session_id,
            Turn(role="user", content=turn.message, language=reply.language),
            customer_id=customer_id,
            country=turn.country,
        )
        meta = {
            "mode": reply.mode,
            "sources": [s["doc_id"] for s in reply.sources],
            "confidence": reply.confidence,
            "prompt_version": reply.prompt_version,
            "model": reply.model,
            "personalisation": reply.personalisation,
            "order": reply.order,
            "facts": reply.facts,
            "usage": reply.usage,
            "timings_ms": reply.timings_ms,
        }
        self.conversations.append(
            turn.session_id,
            Turn(role="assistant", content=reply.reply, language=reply.language, meta=meta),
        )
