"""The stage contracts: a stage returns a Draft (streaming its text as it is written),
changes neither its input nor the store; finish is the one place that opens a handoff and
records the turn."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.answer.draft import Draft, Event
from rag.answer.pipeline import AskRequest
from rag.answer.router import Route
from rag.container import Container
from rag.guardrails.escalation import Escalation
from rag.lang.frames import frame
from rag.ports import Usage
from tests.unit.answer_kit import drafted, light_store, pipeline, understood

GROUNDED = "We accept PayPal and the major credit cards."


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = light_store(tmp_path_factory.mktemp("stages"))
    # a store synced before facts existed: the knowledge stage answers from sentences, with the
    # model writing the answer (the facts path is in test_faithful*.py)
    with c.index._tx() as db:
        db.execute("DELETE FROM facts")
    yield c
    c.index.close()


def words(model: ScriptedChatModel, call: int) -> int:
    return sum(len(m.content.split()) for m in model.calls[call])


def test_knowledge_stage_streams_the_models_draft_and_returns_it(store: Container) -> None:
    model = ScriptedChatModel([GROUNDED])
    p = pipeline(store, model)
    turn = understood(p, "Which payment methods do you accept?", "s-stream")
    before = copy.deepcopy(turn)
    events, draft = drafted(p.stages[Route.KNOWLEDGE].draft(turn))
    assert draft.mode == "llm"
    assert draft.text == GROUNDED
    assert {e.type for e in events} == {"token"}
    assert "".join(e.data for e in events) == GROUNDED
    assert draft.streamed
    assert draft.usage == Usage(words(model, 0), len(GROUNDED.split()))
    assert turn == before
    assert store.conversations.history("s-stream") == []  # a stage records nothing


def test_a_rejected_draft_is_retried_once_and_both_calls_are_counted(store: Container) -> None:
    model_first = "You have 97 days to pay by PayPal."
    model = ScriptedChatModel([model_first, GROUNDED])
    p = pipeline(store, model)
    turn = understood(p, "Which payment methods do you accept?", "s-retry")
    events, draft = drafted(p.stages[Route.KNOWLEDGE].draft(turn))
    assert len(model.calls) == 2
    assert "97" in model.calls[1][-1].content  # the stricter instruction names the problem
    assert (draft.mode, draft.text) == ("llm", GROUNDED)
    # the first draft streams as it is written; the retry is not streamed
    assert "".join(e.data for e in events if e.type == "token") == model_first
    first, second = words(model, 0), words(model, 1)
    assert draft.usage == Usage(first + second, len(f"{model_first} {GROUNDED}".split()))


def test_a_model_that_declines_on_a_weak_match_says_it_does_not_know(store: Container) -> None:
    p = pipeline(store, ScriptedChatModel(["NO_ANSWER"]))
    turn = understood(p, "How many days do I have to return an item?", "s-declined")
    events, draft = drafted(p.stages[Route.KNOWLEDGE].draft(turn))
    assert draft.confidence < 0.6
    assert draft.mode == "dont_know"
    assert draft.sources == ()
    assert events == [Event("token", draft.text)]  # NO_ANSWER itself never went out
    assert frame("en", "offer_human") in draft.text


def test_order_stage_asks_for_a_handoff_but_opens_none(store: Container) -> None:
    p = pipeline(store)
    turn = understood(p, "where is order 1050? omar.haddad@example.ae", "s-order-stage")
    assert p.router.route(turn) is Route.ORDER
    events, draft = drafted(p.stages[Route.ORDER].draft(turn))
    assert events == []  # order replies are not streamed
    assert (draft.mode, draft.order, draft.hand_off) == ("order_handoff", "1050", True)
    assert draft.escalation.reason == "order_exception"
    assert store.conversations.active_handoff("s-order-stage") is None


def test_finish_opens_the_handoff_once_and_records_one_turn_pair(store: Container) -> None:
    p = pipeline(store)
    message = "where is order 1050? omar.haddad@example.ae"
    events = list(p.stream(AskRequest(message=message, session_id="s-order")))
    assert [e.type for e in events] == ["token", "sources", "escalation", "done"]
    reply = events[-1].data
    assert reply.mode == "order_handoff"
    assert reply.reply.endswith(frame("en", "handoff", hours=p.settings.support_hours))
    handoffs = [h for h in store.conversations.handoffs() if h["session_id"] == "s-order"]
    assert [h["reason"] for h in handoffs] == ["order_exception"]
    assert "#1050" in handoffs[0]["summary"]
    turns = store.conversations.history("s-order")
    assert [(t.role, t.content) for t in turns] == [
        ("user", message),
        ("assistant", reply.reply),
    ]
    assert turns[1].meta["mode"] == "order_handoff"


@pytest.mark.parametrize(("mode", "kept"), [("extractive", True), ("dont_know", False)])
def test_a_check_that_calls_for_a_person_keeps_only_an_answer(
    store: Container, mode: str, kept: bool
) -> None:
    p = pipeline(store)
    session = f"s-verdict-{mode}"
    turn = understood(p, "Is my payment safe?", session)
    draft = Draft(text="What the policy says.", mode=mode, escalation=turn.signals)
    before = copy.deepcopy(draft)
    events = list(p.finisher.finish(turn, draft, [Escalation(True, "low_confidence", 0.2)]))
    notice = frame("en", "handoff", hours=p.settings.support_hours)
    reply = events[-1].data
    assert reply.reply == ("What the policy says.\n\n" + notice if kept else notice)
    assert (reply.mode, reply.escalation["reason"]) == ("handoff", "low_confidence")
    # the answer may be on screen already: it is replaced, never sent twice
    assert [e.type for e in events] == ["replace", "sources", "escalation", "done"]
    assert store.conversations.active_handoff(session) is not None
    assert draft == before


def test_no_verdict_no_handoff(store: Container) -> None:
    p = pipeline(store)
    turn = understood(p, "Is my payment safe?", "s-calm")
    draft = Draft(text="What the policy says.", mode="extractive")
    events = list(p.finisher.finish(turn, draft, [Escalation(False, None, 0.7)]))
    assert [e.type for e in events] == ["token", "sources", "escalation", "done"]
    assert events[0].data == "What the policy says."
    assert store.conversations.active_handoff("s-calm") is None
    assert len(store.conversations.history("s-calm")) == 2


def test_a_request_for_a_person_is_handed_off_by_finish(store: Container) -> None:
    p = pipeline(store, escalation=True)
    turn = understood(p, "I want to talk to a human now", "s-human")
    assert p.router.route(turn) is Route.ESCALATE
    _, draft = drafted(p.stages[Route.ESCALATE].draft(turn))
    assert (draft.text, draft.hand_off) == ("", True)
    assert store.conversations.active_handoff("s-human") is None
    reply = list(p.finisher.finish(turn, draft, []))[-1].data
    assert reply.reply == frame("en", "handoff", hours=p.settings.support_hours)
    assert reply.escalation["reason"] == "human_request"
    assert store.conversations.active_handoff("s-human") is not None
    # the next turn finds the person there, and the bot stays out of it
    nxt = understood(p, "hello?", "s-human")
    assert p.router.route(nxt) is Route.HANDOFF_OPEN


def test_a_rejected_streamed_draft_is_withdrawn_when_the_retry_is_accepted(
    store: Container,
) -> None:
    """The shopper saw the first draft as it was written; when it fails its checks and the
    retry passes, a `replace` event carries the retry, so no client keeps the rejected text."""
    invented = "We accept PayPal, and you get 17% off every card payment."
    model = ScriptedChatModel([invented, GROUNDED])
    p = pipeline(store, model)
    turn = understood(p, "Which payment methods do you accept?", "s-retry")
    events, draft = drafted(p.stages[Route.KNOWLEDGE].draft(turn))
    assert len(model.calls) == 2  # the ungrounded number cost a retry
    assert draft.mode == "llm"
    assert draft.text == GROUNDED
    streamed = "".join(e.data for e in events if e.type == "token")
    assert "17%" in streamed  # the first draft went out as it was written ...
    assert [e.data for e in events if e.type == "replace"] == [GROUNDED]  # ... and was withdrawn
