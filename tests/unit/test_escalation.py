"""The escalation policy's decisions that do not need the real embedder: when an unsure answer
goes to a person, the emotion examples' classes and split, and the reuse of a turn's vector."""

from __future__ import annotations

from collections import Counter

import pytest

from rag.adapters.hash_embedder import HashEmbedder
from rag.commerce.personalisation import Routing
from rag.guardrails.escalation import (
    EMOTION_THRESHOLD,
    VALENCE,
    EmotionScorer,
    Escalation,
    EscalationPolicy,
    examples,
)


@pytest.fixture(scope="module")
def policy() -> EscalationPolicy:
    return EscalationPolicy(EmotionScorer(HashEmbedder()))


def after(
    policy: EscalationPolicy,
    *,
    answered: bool,
    topic: str | None = "payment",
    valence: float = 0.65,
    confidence: float = 0.2,
    failures: int = 0,
    routing: Routing | None = None,
) -> Escalation:
    """A turn that kefu answered (or not) with low retrieval confidence, by default on money."""
    return policy.after_answer(
        valence=valence,
        confidence=confidence,
        topic=topic,
        failures=failures,
        answered=answered,
        routing=routing,
    )


def test_an_unsure_answer_on_money_stands(policy: EscalationPolicy) -> None:
    # kefu answered (checked, cited): low retrieval confidence alone no longer queues the shopper
    for topic in ("payment", "returns"):
        assert not after(policy, answered=True, topic=topic).escalate


def test_no_answer_on_money_with_low_confidence_goes_to_a_person(policy: EscalationPolicy) -> None:
    e = after(policy, answered=False)
    assert (e.escalate, e.reason) == (True, "low_confidence")
    # an upset shopper counts as sensitive whatever the topic
    e = after(policy, answered=False, topic="shipping", valence=0.3)
    assert (e.escalate, e.reason) == (True, "low_confidence")


def test_no_answer_is_not_escalated_when_sure_or_not_sensitive(policy: EscalationPolicy) -> None:
    assert not after(policy, answered=False, confidence=0.9).escalate
    assert not after(policy, answered=False, topic="shipping").escalate


def test_repeated_failure_comes_before_low_confidence(policy: EscalationPolicy) -> None:
    e = after(policy, answered=False, failures=1)
    assert e.reason == "repeated_failure"


def test_a_seller_rule_still_sends_any_unsure_answer_to_a_person(policy: EscalationPolicy) -> None:
    routing = Routing(reason="vip", low_confidence=True)
    e = after(policy, answered=True, topic="shipping", routing=routing)
    assert (e.escalate, e.reason) == (True, "vip")


def test_problem_reports_are_a_calm_class_of_their_own() -> None:
    ex = examples()
    per_lang = Counter(e.lang for e in ex if e.label == "problem")
    assert sum(n >= 10 for n in per_lang.values()) >= 12, per_lang
    # a calm report scores as calm as a question: a vote of problem reports alone never escalates
    assert VALENCE["problem"] == VALENCE["neutral"] > EMOTION_THRESHOLD > VALENCE["frustrated"]
    # a message labelled twice would vote for both sides
    texts = Counter(e.text for e in ex)
    assert [t for t, n in texts.items() if n > 1] == []
    # every class keeps held-out examples in every language to choose the threshold on
    held = {(e.label, e.lang) for e in ex if e.held_out}
    assert held == {(e.label, e.lang) for e in ex}


def test_score_reuses_the_turns_vector() -> None:
    embedder = HashEmbedder()
    scorer = EmotionScorer(embedder)
    text = "The mug arrived cracked, what should I do?"
    expected = scorer.score(text)
    [vector] = embedder.embed_documents([text])
    calls = embedder.calls
    assert scorer.score(text, vector=vector) == expected
    assert embedder.calls == calls  # nothing embedded again
