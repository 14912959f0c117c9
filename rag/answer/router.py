"""Which stage drafts a turn. The first route that applies wins, in this order:

handoff_open  a person has the conversation: the bot stays silent, no loops
injection     the message tries to instruct the assistant: a refusal
escalate      the message asks for a person (or is angry, a legal threat, a chargeback)
small_talk    a greeting, thanks, goodbye, "are you a bot?", "how are you": a friendly frame
order         the turn is about an order's whereabouts (or answers kefu's question on it)
knowledge     everything else is answered from the knowledge base
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from rag.answer.turn import TurnContext
from rag.commerce.orders import OrderAssistant
from rag.guardrails.injection import looks_like_injection
from rag.guardrails.smalltalk import SmallTalk

# the small-talk verdict on a turn's message, from the turn's vector (memoised: the router and
# the stage ask the same)
SmallTalkVerdict = Callable[[TurnContext], SmallTalk]


class Route(StrEnum):
    HANDOFF_OPEN = "handoff_open"
    INJECTION = "injection"
    ESCALATE = "escalate"
    SMALL_TALK = "small_talk"
    ORDER = "order"
    KNOWLEDGE = "knowledge"


class Router:
    def __init__(
        self, orders: OrderAssistant | None = None, small_talk: SmallTalkVerdict | None = None
    ) -> None:
        self.orders = orders
        self.small_talk = small_talk

    def route(self, turn: TurnContext) -> Route:
        if turn.open_handoff is not None:
            return Route.HANDOFF_OPEN
        if looks_like_injection(turn.message):
            return Route.INJECTION
        if turn.signals.escalate:
            return Route.ESCALATE
        if self.small_talk is not None and self.small_talk(turn).is_small_talk:
            return Route.SMALL_TALK
        if self.orders is not None and self.orders.wants(turn.message, turn.session_id):
            return Route.ORDER
        return Route.KNOWLEDGE
