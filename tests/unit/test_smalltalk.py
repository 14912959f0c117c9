"""Small talk gets a friendly frame; a short request that opens with "hi" or "thanks" does not."""

from __future__ import annotations

from collections import Counter

import pytest

from rag.adapters.hash_embedder import HashEmbedder
from rag.guardrails.smalltalk import KINDS, SmallTalkClassifier, examples, reply, request_word

LANGS = ("en", "zh", "es", "fr", "de", "it", "pt", "ru", "ar", "tr", "ja", "ko", "vi", "id")
LANGS += ("th", "hi", "sw", "my")


@pytest.fixture(scope="module")
def classifier() -> SmallTalkClassifier:
    # the hash embedder matches exact wording only: enough for the decision logic
    return SmallTalkClassifier(HashEmbedder())


def test_every_class_has_eight_training_examples_and_a_reply_in_every_language() -> None:
    counts = Counter((e.label, e.lang) for e in examples() if not e.held_out)
    for kind in (*KINDS, "none"):
        for lang in LANGS:
            assert counts[kind, lang] >= 8, (kind, lang)
    for kind in KINDS:
        for lang in LANGS:
            assert reply(kind, lang) != reply(kind, "en") or lang == "en", (kind, lang)


def test_no_small_talk_example_contains_a_request_word() -> None:
    # a request word in "see you later" would silently make every goodbye a question
    clashes = [
        (e.text, request_word(e.text))
        for e in examples()
        if e.label != "none" and request_word(e.text)
    ]
    assert clashes == []


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("thanks, but where is my order?", "request_word"),
        ("hi, my parcel is late", "request_word"),
        ("ok and to Canada?", "request_word"),
        ("谢谢，可是退款还没到", "request_word"),
        ("hola, ¿cuánto cuesta el envío a Chile?", "request_word"),
        ("thanks! #1042", "digits"),
        ("hello, it's me again, I wrote yesterday evening about the green sofa cover", "long"),
        ("hi see https://example.com", "link"),
        ("   ", "empty"),
    ],
)
def test_requests_are_not_small_talk(
    classifier: SmallTalkClassifier, message: str, reason: str
) -> None:
    emb = classifier.knn.embedder
    assert isinstance(emb, HashEmbedder)
    calls = emb.calls
    verdict = classifier.classify(message)
    assert (verdict.kind, verdict.reason) == (None, reason)
    assert emb.calls == calls  # ruled out before any embedding


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("thank you so much", "thanks"),
        ("ありがとうございます！", "thanks"),
        ("안녕하세요", "greeting"),
        ("hasta luego", "goodbye"),
        ("are you a bot?", "bot_question"),
        ("come stai?", "how_are_you"),
    ],
)
def test_small_talk_is_recognised(classifier: SmallTalkClassifier, message: str, kind: str) -> None:
    verdict = classifier.classify(message)
    assert verdict.is_small_talk
    assert verdict.kind == kind


def test_the_none_class_vetoes(classifier: SmallTalkClassifier) -> None:
    # an example of a short request (no request word in it) is not small talk
    verdict = classifier.classify("et pour le Canada ?")
    assert verdict.kind is None
    assert verdict.reason == "knn_none"


def test_a_shared_vector_is_used_as_given(classifier: SmallTalkClassifier) -> None:
    emb = classifier.knn.embedder
    assert isinstance(emb, HashEmbedder)
    vector = classifier.knn.embed("good morning")
    classifier.classify("hello")  # the examples' matrix is built (embedded) on first use
    calls = emb.calls
    assert classifier.classify("good morning", vector=vector).kind == "greeting"
    assert emb.calls == calls


def test_reply_falls_back_to_english() -> None:
    assert reply("thanks", "xx") == reply("thanks", "en")
    assert reply("greeting", "ja") != reply("greeting", "en")
