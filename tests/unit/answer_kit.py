"""A light answer pipeline for the stage tests: the sample store behind the hash embedder,
the sample orders in SQLite, and the scripted chat model when a test gives one."""

from __future__ import annotations

from pathlib import Path

from rag.answer.draft import Draft, Drafting, Event
from rag.answer.pipeline import AnswerPipeline, AskRequest
from rag.answer.turn import TurnContext
from rag.container import Container
from rag.guardrails.escalation import EmotionScorer, EscalationPolicy
from rag.guardrails.smalltalk import SmallTalkClassifier
from rag.ports import ChatModel
from tests.conftest import SAMPLE_STORE, make_settings

COMMERCE = SAMPLE_STORE / "commerce"


def light_store(data: Path) -> Container:
    """The sample store ingested with the hash embedder, with the sample orders imported."""
    from ingest.service import build_ingestor

    c = Container(
        make_settings(
            data,
            embeddings={"provider": "hash"},
            llm={"provider": "none"},
            guardrails={"escalation": False},
            # no FAQ fast path: the model is asked; the hash embedder's similarities are on
            # another scale than the floor under which kefu says it does not know
            answer={"faq_threshold": 2.0, "min_fact_score": 0.0},
            models_dir=data / "models",
            commerce={"rules_file": str(COMMERCE / "personalisation.yaml")},
        )
    )
    assert build_ingestor(c).sync(SAMPLE_STORE).ok
    for name in ("customers.csv", "orders.csv", "tracking.csv"):
        c.commerce.import_csv(COMMERCE / name)  # type: ignore[union-attr]
    return c


def pipeline(
    c: Container,
    llm: ChatModel | None = None,
    *,
    escalation: bool = False,
    small_talk: bool = False,
) -> AnswerPipeline:
    return AnswerPipeline(
        retriever=c.retriever,
        detector=c.detector,
        counter=c.tokens,
        conversations=c.conversations,
        llm=llm,
        settings=c.settings.answer,
        llm_settings=c.settings.llm,
        escalation=EscalationPolicy(EmotionScorer(c.embedder)) if escalation else None,
        orders=c.orders,
        customers=c.commerce,
        personaliser=c.personaliser,
        small_talk=SmallTalkClassifier(c.embedder) if small_talk else None,
    )


def drafted(drafting: Drafting) -> tuple[list[Event], Draft]:
    """Run a stage: the events it streamed and the Draft it returned."""
    events: list[Event] = []
    while True:
        try:
            events.append(next(drafting))
        except StopIteration as end:
            return events, end.value


def understood(p: AnswerPipeline, message: str, session: str, **kw: str) -> TurnContext:
    return p.understanding.understand(AskRequest(message=message, session_id=session, **kw))
