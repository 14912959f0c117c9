"""Answers that are right or honestly absent, on the sample store (issue #13's failure shapes):
facts compiled at ingest, selection in the question's scope, a wrong-row draft caught and
replaced, an opening "Yes" removed. (The fallback in other languages and small talk need the
real embedder: tests/integration/test_faithful_languages.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.answer.draft import Draft, Drafting, Event
from rag.answer.router import Route
from rag.container import Container
from tests.unit.answer_kit import light_store, pipeline, understood

WRONG_ROW = "Standard shipping to Mexico takes 4–7 days and costs $34.99."


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = light_store(tmp_path_factory.mktemp("faithful"))
    yield c
    c.index.close()


def drafted(drafting: Drafting) -> tuple[list[Event], Draft]:
    events: list[Event] = []
    while True:
        try:
            events.append(next(drafting))
        except StopIteration as end:
            return events, end.value


def ask(c: Container, model: ScriptedChatModel | None, message: str, **kw: str) -> Draft:
    p = pipeline(c, model)
    turn = understood(p, message, f"s-{abs(hash(message))}", **kw)
    assert p.router.route(turn) is Route.KNOWLEDGE
    return drafted(p.stages[Route.KNOWLEDGE].draft(turn))[1]


def test_every_table_row_is_a_fact_with_its_markets_and_service(store: Container) -> None:
    facts, vectors = store.index.facts_of(["docs/shipping/shipping-zones.md"])
    assert vectors.shape[0] == len(facts) > 20
    latam = [f for f in facts if "MX" in f.scope.countries]
    assert {f.scope.service for f in latam} == {"standard", "express"}
    standard = next(f for f in latam if f.scope.service == "standard")
    assert "10–20" in standard.numbers
    assert "4–7" not in standard.numbers  # the express cell is another fact


def test_an_edited_policy_replaces_its_facts(store: Container, tmp_path: object) -> None:
    before = store.index.fact_count()
    assert before > 500
    doc = "docs/other/gift-cards.txt"
    n = len(store.index.facts_of([doc])[0])
    assert n > 0
    store.index.delete_document(doc)
    assert store.index.fact_count() == before - n


def test_a_wrong_row_draft_is_caught_and_the_facts_restated(store: Container) -> None:
    model = ScriptedChatModel([WRONG_ROW, WRONG_ROW])
    draft = ask(store, model, "How long does standard shipping to Mexico take?", country="MX")
    assert len(model.calls) == 2  # the draft and its one retry
    assert "4–7" in model.calls[1][-1].content  # the retry names the problem
    assert draft.mode == "fallback"
    assert "4–7" not in draft.text
    assert "34.99" not in draft.text
    assert "10–18" in draft.text or "10–20" in draft.text
    prompt = model.calls[0][-1].content
    context = prompt.split("QUESTION:")[0]
    assert "4–7" not in context  # another service's row is never chosen
    assert "DHL Express" not in context


def test_facts_of_another_market_are_never_chosen(store: Container) -> None:
    model = ScriptedChatModel(["NO_ANSWER"])
    ask(store, model, "How much is standard shipping to Japan?", country="JP")
    context = model.calls[0][-1].content.split("QUESTION:")[0]
    assert "4.99" in context  # zone 1's row
    for other in ("$9.99", "$6.99", "$11.99", "$7.99"):
        assert other not in context


def test_an_opening_yes_is_removed_from_the_reply(store: Container) -> None:
    restated = "express shipping is never free; free shipping applies to standard shipping only."
    model = ScriptedChatModel([f"Yes, {restated}"])
    draft = ask(store, model, "Is express shipping free?")
    assert draft.mode == "llm"
    assert draft.text == restated[0].upper() + restated[1:]
