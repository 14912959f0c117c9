"""The answer pipeline: a turn is understood, routed to one stage that drafts the reply,
checked, and finished (rag/answer/__init__.py draws the flow).

`AnswerPipeline` wires the steps; the server, the CLI and the eval runner all answer through
`answer` / `stream`, so they run the same stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

from rag.answer.checks import Check, EscalationCheck
from rag.answer.draft import Event, Stage
from rag.answer.finish import Finisher, Handoffs, Reply
from rag.answer.generation import NO_ANSWER, Generation
from rag.answer.prompts import Prompt, load_prompt
from rag.answer.router import Route, Router
from rag.answer.stages.handoff import (
    EscalateStage,
    HandoffPendingStage,
    InjectionStage,
    SmallTalkStage,
)
from rag.answer.stages.knowledge import KnowledgeStage
from rag.answer.stages.order import OrderStage
from rag.answer.turn import AskRequest, TurnContext, Understanding
from rag.commerce.orders import OrderAssistant
from rag.commerce.personalisation import Personaliser
from rag.errors import KefuError
from rag.guardrails.escalation import EscalationPolicy
from rag.guardrails.knn import DEFAULT_MODE, Mode
from rag.guardrails.smalltalk import SmallTalk, SmallTalkClassifier
from rag.knowledge.context import ContextSelector
from rag.knowledge.retrieval import Retriever
from rag.knowledge.selection import FactSelector
from rag.ports import ChatModel, ConversationStore, LanguageDetector, OrderConnector, TokenCounter
from rag.settings import AnswerSettings, LLMSettings

__all__ = ["NO_ANSWER", "AnswerPipeline", "AskRequest", "Event", "Reply"]


class AnswerPipeline:
    def __init__(
        self,
        *,
        retriever: Retriever,
        detector: LanguageDetector,
        counter: TokenCounter,
        conversations: ConversationStore,
        llm: ChatModel | None,
        settings: AnswerSettings,
        llm_settings: LLMSettings,
        escalation: EscalationPolicy | None = None,
        orders: OrderAssistant | None = None,
        customers: OrderConnector | None = None,
        personaliser: Personaliser | None = None,
        seller_language: str = "en",
        small_talk: SmallTalkClassifier | None = None,
    ) -> None:
        self.retriever = retriever
        self.conversations = conversations
        self.llm = llm
        self.settings = settings
        self.prompt: Prompt = load_prompt("answer", settings.prompt_version)
        # one message vector per turn, in the mode the classifiers were built in; in query mode
        # retrieval searches with it too
        modes = [c.knn.mode for c in (escalation and escalation.emotion, small_talk) if c]
        mode: Mode = modes[0] if modes else DEFAULT_MODE
        self.understanding = Understanding(
            conversations=conversations,
            detector=detector,
            history_turns=settings.history_turns,
            escalation=escalation,
            customers=customers,
            personaliser=personaliser,
            embedder=retriever.embedder if modes or mode == "query" else None,
            vector_mode=mode,
        )
        verdict = _memo(small_talk) if small_talk is not None else None
        self.router = Router(orders, verdict)
        generation = (
            None
            if llm is None
            else Generation(llm, prompt=self.prompt, llm_settings=llm_settings, detector=detector)
        )
        selector = ContextSelector(retriever.embedder, counter)
        facts = FactSelector(retriever.index, counter)
        knowledge = KnowledgeStage(retriever, selector, settings, generation, facts)
        self.stages = _stages(knowledge, orders)
        if verdict is not None:
            self.stages[Route.SMALL_TALK] = SmallTalkStage(verdict)
        self.checks: dict[Route, Sequence[Check]] = {}
        if escalation is not None:
            self.checks[Route.KNOWLEDGE] = [EscalationCheck(escalation, conversations)]
        self.finisher = Finisher(
            conversations=conversations,
            handoffs=Handoffs(
                conversations,
                seller_language=seller_language,
                support_hours=settings.support_hours,
            ),
            understanding=self.understanding,
            prompt_version=self.prompt.id,
            model=llm.name if llm else "none",
        )

    def answer(self, req: AskRequest) -> Reply:
        for ev in self.stream(req):
            if ev.type == "done":
                reply: Reply = ev.data
                return reply
        raise KefuError("the answer stream ended without a reply")  # pragma: no cover

    def stream(self, req: AskRequest) -> Iterator[Event]:
        """token / replace events while the reply is written, then sources, escalation and
        done (the whole Reply)."""
        turn = self.understanding.understand(req)
        route = self.router.route(turn)
        draft = yield from self.stages[route].draft(turn)
        verdicts = [check(turn, draft) for check in self.checks.get(route, ())]
        yield from self.finisher.finish(turn, draft, verdicts)


def _memo(classifier: SmallTalkClassifier) -> Callable[[TurnContext], SmallTalk]:
    """The classifier's verdict on a turn, from the turn's message vector when it was embedded
    the classifier's way, remembered for the last messages (the router and the stage ask about
    the same message)."""

    @lru_cache(maxsize=64)
    def verdict(message: str, vector: tuple[float, ...] | None) -> SmallTalk:
        return classifier.classify(message, vector=vector)

    def for_turn(turn: TurnContext) -> SmallTalk:
        shared = turn.vector if turn.vector_mode == classifier.knn.mode else None
        return verdict(turn.message, shared)

    return for_turn


def _stages(knowledge: KnowledgeStage, orders: OrderAssistant | None) -> dict[Route, Stage]:
    """One stage per route (no order stage without an order connector)."""
    stages: dict[Route, Stage] = {
        Route.HANDOFF_OPEN: HandoffPendingStage(),
        Route.INJECTION: InjectionStage(),
        Route.ESCALATE: EscalateStage(),
        Route.KNOWLEDGE: knowledge,
    }
    if orders is not None:
        stages[Route.ORDER] = OrderStage(orders)
    return stages
