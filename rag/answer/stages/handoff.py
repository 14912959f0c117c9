"""The stages that draft no answer: a person has (or gets) the conversation, or the message
tries to instruct the assistant."""

from __future__ import annotations

from rag.answer.draft import Draft, Drafting, whole
from rag.answer.turn import TurnContext
from rag.guardrails.escalation import Escalation
from rag.lang.frames import frame


class HandoffPendingStage:
    """A person has the conversation: the bot says so and stays out of it, no loops."""

    def draft(self, turn: TurnContext) -> Drafting:
        return whole(
            Draft(
                text=frame(turn.language, "handoff_pending"),
                mode="handoff_pending",
                escalation=turn.open_handoff or Escalation(True),
            )
        )


class EscalateStage:
    """The message itself calls for a person: finish opens the handoff."""

    def draft(self, turn: TurnContext) -> Drafting:
        return whole(Draft(text="", mode="handoff", escalation=turn.signals, hand_off=True))


class InjectionStage:
    """A message that tries to instruct the assistant gets a refusal, nothing else."""

    def draft(self, turn: TurnContext) -> Drafting:
        return whole(
            Draft(
                text=frame(turn.language, "injection_refusal"), mode="refused", intent="injection"
            )
        )
