"""The stages that draft no answer from the knowledge base: a person has (or gets) the
conversation, the message tries to instruct the assistant, or it is small talk."""

from __future__ import annotations

from rag.answer.draft import Draft, Drafting, whole
from rag.answer.router import SmallTalkVerdict
from rag.answer.turn import TurnContext
from rag.guardrails.escalation import Escalation
from rag.guardrails.smalltalk import reply
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


class SmallTalkStage:
    """Greetings, thanks, goodbyes, "are you a bot?": a short friendly frame in the shopper's
    language; no model call, never a handoff, never counted as a failure."""

    def __init__(self, verdict: SmallTalkVerdict) -> None:
        self.verdict = verdict

    def draft(self, turn: TurnContext) -> Drafting:
        kind = self.verdict(turn).kind or "greeting"
        return whole(
            Draft(text=reply(kind, turn.language), mode="small_talk", intent=f"small_talk:{kind}")
        )
