"""What a stage returns: a Draft of the reply, and the events that stream it."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rag.answer.turn import TurnContext
from rag.guardrails.escalation import Escalation
from rag.ports import Usage

# the modes of a reply that answered the question from the knowledge base
ANSWERED = frozenset({"llm", "faq", "extractive", "facts"})


@dataclass(frozen=True)
class Event:
    """A streaming event: token, replace (the streamed draft was corrected), sources,
    escalation, done (carries the whole Reply), error."""

    type: str
    data: Any


@dataclass(frozen=True)
class Draft:
    """A stage's reply, before the turn is finished (handoff, personal facts, recording)."""

    text: str
    # llm | faq | facts | extractive | fallback | dont_know | small_talk | handoff | order ...
    # (facts: the chosen facts quoted in the shopper's own language, no model needed)
    mode: str
    sources: tuple[dict[str, Any], ...] = ()
    # the facts the reply was written from, each with its scope: why the reply said what it said
    facts: tuple[dict[str, Any], ...] = ()
    intent: str | None = None
    confidence: float = 0.0  # unrounded; the reply shows it to three places
    escalation: Escalation = field(default_factory=lambda: Escalation(False))
    hand_off: bool = False  # finish opens a handoff for `escalation` and tells the shopper
    topic: str | None = None  # the best passage's document type, for the escalation check
    order: str | None = None  # the order number this turn was about
    customer_id: str | None = None  # the customer a verified order identified
    usage: Usage | None = None  # the model's tokens, when a model was asked
    streamed: bool = False  # the text already went out as token/replace events
    timings: Mapping[str, float] = field(default_factory=dict)


# A stage yields the events that stream its text as it is written and returns its Draft.
Drafting = Generator[Event, None, Draft]


class Stage(Protocol):
    def draft(self, turn: TurnContext) -> Drafting: ...


def whole(draft: Draft) -> Drafting:
    """A draft that is not streamed: its text goes out whole when the turn finishes."""
    yield from ()
    return draft


def ms(t: float) -> float:
    """Milliseconds since `t` (a time.perf_counter() value), as the reply's timings show them."""
    return round((time.perf_counter() - t) * 1000, 1)
