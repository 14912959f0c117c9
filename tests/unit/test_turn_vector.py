"""One message vector per turn: emotion and small talk share it (and retrieval does too when
the classifiers are built in query mode)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from rag.answer.pipeline import AnswerPipeline, AskRequest
from rag.container import Container
from rag.guardrails.escalation import EmotionScorer, EscalationPolicy
from rag.guardrails.smalltalk import SmallTalkClassifier
from tests.unit.answer_kit import light_store, pipeline, understood


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = light_store(tmp_path_factory.mktemp("turn-vector"))
    yield c
    c.index.close()


@pytest.fixture
def embedded(store: Container, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(mode, text) of every text the store's embedder is asked to embed from now on."""
    seen: list[tuple[str, str]] = []
    emb = store.embedder
    query, documents = emb.embed_query, emb.embed_documents

    def embed_query(text: str) -> list[float]:
        seen.append(("query", text))
        return query(text)

    def embed_documents(texts: list[str]) -> list[list[float]]:
        seen.extend(("document", t) for t in texts)
        return documents(texts)

    monkeypatch.setattr(emb, "embed_query", embed_query)
    monkeypatch.setattr(emb, "embed_documents", embed_documents)
    return seen


def _warm(p: AnswerPipeline) -> None:
    # the first turn embeds the classifiers' example sets; the figures below are per turn after
    p.answer(AskRequest(message="warm up the example sets", session_id="warm"))


@pytest.mark.parametrize(
    "message",
    [
        "How long does shipping to Canada take?",  # answered from the knowledge base
        "merci beaucoup",  # small talk: the kNN is asked
        "I am furious, this is the worst shop ever",  # the emotion check decides
    ],
)
def test_a_turn_embeds_the_message_once(
    store: Container, embedded: list[tuple[str, str]], message: str
) -> None:
    p = pipeline(store, escalation=True, small_talk=True)
    _warm(p)
    embedded.clear()
    p.answer(AskRequest(message=message, session_id=f"once-{message[:8]}"))
    modes = [m for m, t in embedded if t == message]
    # once for the classifiers (document mode, as in code); once more, as a query, only when
    # the turn is answered from the knowledge base
    assert modes in (["document"], ["document", "query"])


def test_query_mode_classifiers_share_the_vector_with_retrieval(
    store: Container, embedded: list[tuple[str, str]]
) -> None:
    p = AnswerPipeline(
        retriever=store.retriever,
        detector=store.detector,
        counter=store.tokens,
        conversations=store.conversations,
        llm=None,
        settings=store.settings.answer,
        llm_settings=store.settings.llm,
        escalation=EscalationPolicy(EmotionScorer(store.embedder, mode="query")),
        small_talk=SmallTalkClassifier(store.embedder, mode="query"),
    )
    _warm(p)
    embedded.clear()
    message = "How long does shipping to Canada take?"
    p.answer(AskRequest(message=message, session_id="query-mode"))
    assert [m for m, t in embedded if t == message] == ["query"]
    turn = understood(p, "Do you ship to Canada?", "shared")
    assert turn.vector is not None
    assert turn.query_vector == list(turn.vector)
    assert turn.query_vector == pytest.approx(store.embedder.embed_query("Do you ship to Canada?"))


def test_a_follow_up_is_searched_with_its_own_vector(store: Container) -> None:
    p = pipeline(store, escalation=True, small_talk=True)
    p.answer(AskRequest(message="How long does shipping to Canada take?", session_id="follow"))
    turn = understood(p, "and to Mexico?", "follow")
    assert turn.query != turn.message  # joined to the previous question
    assert turn.vector is not None  # still embedded once for the classifiers
    assert turn.query_vector is None  # retrieval embeds the joined question itself
    query_mode = replace(turn, vector_mode="query")
    assert query_mode.query_vector is None  # whatever the mode


def test_document_mode_classifiers_get_a_document_vector(
    store: Container, embedded: list[tuple[str, str]]
) -> None:
    p = pipeline(store, escalation=True, small_talk=True)  # document mode, as in code
    _warm(p)
    embedded.clear()
    message = "How long does shipping to Canada take?"
    turn = understood(p, message, "doc-mode")
    assert turn.vector_mode == "document"
    assert turn.query_vector is None  # not the retrieval vector: the search embeds its own
    assert [m for m, t in embedded if t == message] == ["document"]


def test_a_turn_a_person_already_has_embeds_nothing(
    store: Container, embedded: list[tuple[str, str]]
) -> None:
    p = pipeline(store, escalation=True, small_talk=True)
    p.answer(AskRequest(message="I want to talk to a human", session_id="taken"))
    embedded.clear()
    turn = understood(p, "hello? anyone there?", "taken")
    assert turn.open_handoff is not None
    assert turn.vector is None
    assert embedded == []
