"""Checks on a finished draft. Each returns a verdict and changes nothing; finish acts on them.

(The checks on the model's own text, claims, language and leaks, run inside generation,
since a failed one is retried there: rag/answer/generation.py.)"""

from __future__ import annotations

from collections.abc import Callable

from rag.answer.draft import ANSWERED, Draft
from rag.answer.turn import TurnContext
from rag.guardrails.escalation import Escalation, EscalationPolicy
from rag.ports import ConversationStore

Check = Callable[[TurnContext, Draft], Escalation]


class EscalationCheck:
    """After an answer from the knowledge base: should a person take over? (kefu failed too
    often in this session, it is unsure on a sensitive topic, or a seller's rule says so)."""

    def __init__(self, policy: EscalationPolicy, conversations: ConversationStore) -> None:
        self.policy = policy
        self.conversations = conversations

    def __call__(self, turn: TurnContext, draft: Draft) -> Escalation:
        return self.policy.after_answer(
            valence=turn.signals.score,
            confidence=draft.confidence,
            topic=draft.topic,
            failures=self.conversations.failures_since_handoff(turn.session_id),
            answered=draft.mode in ANSWERED,
            routing=turn.personal.routing,
        )
