"""When to hand a conversation to a person, with a machine-readable reason.

Signals, checked on every turn:
  human_request      the shopper asks for a person (phrase lists in 24 languages)
  legal_threat       lawyer, court, consumer authority
  chargeback         a dispute with the bank, PayPal or card issuer
  negative_emotion   the shopper is angry or exasperated: an emotion score (0 = furious .. 1 =
                     happy) below the threshold. The score is a kNN vote over multilingual
                     embeddings of labelled examples (rag/guardrails/data/emotion_examples.yaml);
                     a calm report of a problem (a late, lost or damaged parcel, a wrong item, a
                     refund not yet seen) is a class of its own that scores as calm, so it is
                     answered with the procedure instead of handed over
  low_confidence     kefu has no answer, retrieval is unsure, and the message is about money or
                     the shopper is upset (an unsure answer that was given stands)
  repeated_failure   kefu could not help N times in the session since the last handoff
  vip                a seller rule (rag/commerce/personalisation.py) sends this customer to a person
                     sooner: a milder emotion, fewer failures, any unsure answer
  order_exception    (rag/commerce/orders.py) a late parcel or a failed delivery
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from rag.commerce.personalisation import Routing
from rag.guardrails.knn import DEFAULT_MODE, Example, KnnScorer, Mode, VectorLike, Vote, labelled
from rag.lang.frames import phrases
from rag.ports import Embedder
from rag.textutil import fold

# valence of each class, 0 = furious .. 1 = happy; the score is the vote's weighted mean of these,
# so it is mostly the share of the vote that anger and exasperation do not carry. A calm problem
# report sits with the calm questions: what went wrong is not how the shopper feels. (Frustration
# counts as anger and the calm classes sit near happy: on the held-out split this separated the
# two sides better than a graded scale, bench/emotion.py.)
VALENCE = {"angry": 0.0, "frustrated": 0.0, "problem": 0.9, "neutral": 0.9, "happy": 1.0}
NEGATIVE = ("angry", "frustrated")
MONEY_TOPICS = {"payment", "returns"}
# the score under which a message escalates as negative_emotion (GuardrailSettings.emotion_threshold
# sets it in a deployment); chosen on the held-out split, EmbeddingGemma (bench/emotion.py)
EMOTION_THRESHOLD = 0.4625


@dataclass(frozen=True)
class Escalation:
    escalate: bool
    reason: str | None = None
    score: float | None = None  # the emotion score, 0..1

    def to_dict(self) -> dict[str, object]:
        return {"escalate": self.escalate, "reason": self.reason, "score": self.score}


class PhraseMatcher:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._phrases = sorted(
            {fold(p) for ps in phrases(kind).values() for p in ps if len(fold(p)) >= 2},
            key=len,
            reverse=True,
        )

    def match(self, text: str) -> str | None:
        t = fold(text)
        for p in self._phrases:
            i = t.find(p)
            if i < 0:
                continue
            # 人工 also starts 人工智能 ("AI"): a question about AI is not a request for a human
            if t[i + len(p) : i + len(p) + 2] == "智能":
                continue
            return p
        return None


@cache
def _data() -> dict[str, Any]:
    raw = (files("rag.guardrails") / "data" / "emotion_examples.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(raw)
    return data


def examples() -> list[Example]:
    """Every labelled example; every fourth of a language's list is marked held out."""
    return [e for label in VALENCE for e in labelled(label, _data()[label], every=4)]


class EmotionScorer:
    """Emotion as a weighted vote of the nearest labelled examples (18 languages) in embedding
    space (rag/guardrails/knn.py: one matrix product per message, the examples' matrix embedded
    once and cached under `cache_dir`). Messages and examples are embedded the same way (in
    `mode`, document by default), so the turn's message vector can be passed in and shared
    with the other classifiers. The vote is wide and soft (k=150 of ~940 examples,
    temperature 5): the nearest few follow the topic (a calm and an angry report of the same
    broken kettle sit close), a wide vote follows the tone: on the held-out split the ROC area
    of angry vs calm went from 0.64 (k=9, temperature 20) to 0.95 (bench/emotion.py)."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        cache_dir: Path | None = None,
        training: Sequence[Example] | None = None,
        mode: Mode = DEFAULT_MODE,
        k: int = 150,
        temp: float = 5.0,
        valence: Mapping[str, float] = VALENCE,
    ) -> None:
        chosen = list(training) if training is not None else examples()
        self.embedder = embedder
        self.valence = dict(valence)
        self.knn = KnnScorer(
            embedder,
            [(e.label, e.text) for e in chosen],
            k=k,
            temp=temp,
            cache_dir=cache_dir,
            namespace="emotion",
            mode=mode,
        )

    def vote(self, text: str, *, vector: VectorLike | None = None) -> Vote:
        """The kNN vote over the emotion classes (embeds the text unless its vector is given)."""
        return self.knn.vote(self.knn.embed(text) if vector is None else vector)

    def score(self, text: str, *, vector: VectorLike | None = None) -> tuple[float, str]:
        """(valence 0 = furious .. 1 = happy, label of the nearest example)."""
        vote = self.vote(text, vector=vector)
        valence = sum(self.valence[label] * share for label, share in vote.shares.items())
        return round(valence, 3), vote.nearest


class EscalationPolicy:
    def __init__(
        self,
        emotion: EmotionScorer,
        *,
        emotion_threshold: float = EMOTION_THRESHOLD,
        low_confidence: float = 0.45,
        max_failures: int = 2,
    ) -> None:
        self.emotion = emotion
        self.emotion_threshold = emotion_threshold
        self.low_confidence = low_confidence
        self.max_failures = max_failures
        self.human = PhraseMatcher("human_request")
        self.legal = PhraseMatcher("legal_threat")
        self.chargeback = PhraseMatcher("chargeback")

    def before_answer(
        self, message: str, routing: Routing | None = None, *, vector: VectorLike | None = None
    ) -> Escalation:
        """Signals in the message itself, checked before any answer is drafted. `vector` is the
        message's embedding when the turn already has one (it saves embedding it again)."""
        valence, _ = self.emotion.score(message, vector=vector)
        if self.legal.match(message):
            return Escalation(True, "legal_threat", valence)
        if self.chargeback.match(message):
            return Escalation(True, "chargeback", valence)
        if self.human.match(message):
            return Escalation(True, "human_request", valence)
        if valence < self.emotion_threshold:
            return Escalation(True, "negative_emotion", valence)
        if routing and routing.emotion_below is not None and valence < routing.emotion_below:
            return Escalation(True, routing.reason, valence)
        return Escalation(False, None, valence)

    def after_answer(
        self,
        *,
        valence: float | None,
        confidence: float,
        topic: str | None,
        failures: int,
        answered: bool,
        routing: Routing | None = None,
    ) -> Escalation:
        """Signals that depend on how well kefu could answer. Low retrieval confidence hands a
        money question (or an upset shopper) over only when kefu also has no answer: an answer
        that was given, checked and cited beats a queue."""
        if not answered and failures + 1 >= self.max_failures:
            return Escalation(True, "repeated_failure", valence)
        sensitive = topic in MONEY_TOPICS or (valence is not None and valence < 0.5)
        if not answered and confidence < self.low_confidence and sensitive:
            return Escalation(True, "low_confidence", valence)
        if routing is not None:
            if not answered and routing.max_failures and failures + 1 >= routing.max_failures:
                return Escalation(True, routing.reason, valence)
            if routing.low_confidence and confidence < self.low_confidence:
                return Escalation(True, routing.reason, valence)
        return Escalation(False, None, valence)
