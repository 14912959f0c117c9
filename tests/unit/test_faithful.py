"""Answers that are right or honestly absent, on the sample store (issue #13's failure shapes):
facts compiled at ingest, selection in the question's scope, a wrong-row draft caught and
quoted in the shopper's own language without a model. (Translation for other languages, a
wrong-row draft caught, and small talk need the real embedder:
tests/integration/test_faithful_languages.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.answer.draft import Draft
from rag.answer.router import Route
from rag.container import Container
from tests.unit.answer_kit import drafted, light_store, pipeline, understood

WRONG_ROW = "Standard shipping to Mexico takes 4–7 days and costs $34.99."


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = light_store(tmp_path_factory.mktemp("faithful"))
    yield c
    c.index.close()


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


def test_an_english_shopper_gets_the_facts_of_the_asked_service_quoted_without_a_model(
    store: Container,
) -> None:
    model = ScriptedChatModel([WRONG_ROW])
    draft = ask(store, model, "How long does standard shipping to Mexico take?", country="MX")
    assert model.calls == []  # the facts are in the shopper's language: nothing to write
    assert draft.mode == "facts"
    assert "10–20" in draft.text or "10–18" in draft.text
    assert "4–7" not in draft.text  # the express row is another service's
    assert "DHL Express" not in draft.text
    assert all(f["scope"].get("service") in (None, "standard") for f in draft.facts)
    assert draft.sources


def test_facts_of_another_market_are_never_chosen(store: Container) -> None:
    draft = ask(store, None, "How much is standard shipping to Japan?", country="JP")
    assert draft.mode == "facts"
    assert draft.facts
    for other in ("$9.99", "$6.99", "$11.99", "$7.99", "$5.99"):
        assert other not in draft.text
    for fact in draft.facts:
        countries = fact["scope"].get("countries")
        assert countries is None or "JP" in countries


def test_a_new_fact_compiler_recompiles_facts_without_reembedding_chunks(
    store: Container,
) -> None:
    from ingest.service import build_ingestor
    from tests.conftest import SAMPLE_STORE

    doc = "docs/shipping/shipping-zones.md"
    n = len(store.index.facts_of([doc])[0])
    with store.index._tx() as db:  # a store whose facts an older compiler wrote
        db.execute("DELETE FROM facts WHERE doc_id=?", (doc,))
        db.execute("UPDATE meta SET value='0' WHERE key='facts_version'")
    assert not store.index.facts_current()
    report = build_ingestor(store).sync(SAMPLE_STORE)
    assert doc in report.unchanged  # its chunks are not embedded again
    assert len(store.index.facts_of([doc])[0]) == n
    assert store.index.facts_current()


def test_the_answer_row_goes_with_the_other_service_levels_row(store: Container) -> None:
    from rag.answer.stages.knowledge import KnowledgeStage
    from rag.knowledge.selection import Selected

    facts, _ = store.index.facts_of(["docs/shipping/shipping-zones.md"])
    latam = [f for f in facts if "MX" in f.scope.countries]
    standard = next(f for f in latam if f.scope.service == "standard")
    express = next(f for f in latam if f.scope.service == "express")
    note = next(f for f in facts if "Mexico usually takes" in f.text)
    p = pipeline(store)
    stage = p.stages[Route.KNOWLEDGE]
    assert isinstance(stage, KnowledgeStage)
    chosen = [Selected(standard, 0.6, 0), Selected(note, 0.59, 0), Selected(express, 0.55, 0)]
    assert [s.fact for s in stage._answer_facts(chosen)] == [standard, express]


def test_a_how_long_question_gets_the_time_and_a_follow_up_the_whole_row(
    store: Container,
) -> None:
    """ "How long?" is answered with the row's delivery time, not its fees; "and to the UK?"
    after it asks for what an answer about a country states, so its row is not cut."""
    from rag.answer.pipeline import AskRequest

    p = pipeline(store)
    first = p.answer(
        AskRequest(message="How long does standard shipping to Germany take?", session_id="fu")
    )
    assert "7–14" in first.reply, first.reply
    assert "$6.99" not in first.reply  # the fee was not asked for
    follow = p.answer(AskRequest(message="And to the United Kingdom?", session_id="fu"))
    assert "7–14" in follow.reply, follow.reply
    assert "$6.99" in follow.reply  # the whole row: the follow-up asked no narrower kind
