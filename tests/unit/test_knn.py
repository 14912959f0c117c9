"""The kNN scorer behind kefu's small classifiers: votes, leave-one-out, one embedding per set."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.adapters.hash_embedder import HashEmbedder
from rag.guardrails.knn import KnnScorer, clear_cache
from rag.guardrails.smalltalk import SmallTalkClassifier
from rag.ports import Embedder

EXAMPLES = [
    ("happy", "this is wonderful thank you"),
    ("happy", "great service very happy"),
    ("happy", "love it perfect"),
    ("angry", "this is a disgrace"),
    ("angry", "worst shop ever furious"),
    ("angry", "I am so angry right now"),
]


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def test_a_message_takes_the_label_of_its_nearest_examples() -> None:
    knn = KnnScorer(HashEmbedder(), EXAMPLES, k=3)
    vote = knn.vote(knn.embed("worst shop ever furious"))
    assert vote.label == "angry"
    assert vote.nearest == "angry"
    assert vote.similarity == pytest.approx(1.0, abs=1e-5)
    assert vote.margin > 0.5
    assert sum(vote.shares.values()) == pytest.approx(1.0)


def test_leaving_an_example_out_scores_it_against_the_others() -> None:
    examples = [("a", "alpha beta"), ("b", "alpha beta"), ("b", "gamma delta")]
    knn = KnnScorer(HashEmbedder(), examples, k=1)
    assert knn.vote(knn.matrix[0], exclude=0).label == "b"


def test_a_given_vector_is_normalised_and_needs_no_embedding() -> None:
    emb = HashEmbedder()
    knn = KnnScorer(emb, EXAMPLES, k=3)
    v = knn.embed("love it perfect") * 7.0  # any length, list or array
    assert knn.matrix.shape == (len(EXAMPLES), emb.dim)  # embedded lazily, on first use
    calls = emb.calls
    assert knn.vote(list(map(float, v))).label == "happy"
    assert emb.calls == calls


def test_the_examples_are_embedded_once_per_embedder_and_set() -> None:
    emb = HashEmbedder()
    KnnScorer(emb, EXAMPLES).vote(np.ones(emb.dim))
    calls = emb.calls
    # a second classifier over the same examples (another pipeline, say) reuses the matrix
    KnnScorer(emb, EXAMPLES).vote(np.ones(emb.dim))
    assert emb.calls == calls
    KnnScorer(emb, [*EXAMPLES, ("angry", "never again")]).vote(np.ones(emb.dim))
    assert emb.calls > calls  # embedded again (one call per text in query mode)


def test_the_matrix_is_kept_on_disk_and_a_damaged_file_is_rebuilt(tmp_path: Path) -> None:
    emb = HashEmbedder()
    first = KnnScorer(emb, EXAMPLES, cache_dir=tmp_path).matrix
    (saved,) = tmp_path.glob("*.npy")
    clear_cache()  # a new process
    calls = emb.calls
    assert np.allclose(KnnScorer(emb, EXAMPLES, cache_dir=tmp_path).matrix, first)
    assert emb.calls == calls
    saved.write_bytes(b"not a matrix")
    clear_cache()
    assert np.allclose(KnnScorer(emb, EXAMPLES, cache_dir=tmp_path).matrix, first)
    assert emb.calls > calls  # embedded again (one call per text in query mode)


def test_mean_turns_the_vote_into_a_number() -> None:
    knn = KnnScorer(HashEmbedder(), EXAMPLES, k=3)
    values = {"angry": 0.0, "happy": 1.0}
    assert knn.mean(knn.embed("great service very happy"), values) > 0.9
    assert knn.mean(knn.embed("this is a disgrace"), values) < 0.1


def test_k_larger_than_the_set_and_no_examples() -> None:
    knn = KnnScorer(HashEmbedder(), EXAMPLES[:2], k=50)
    assert knn.vote(knn.embed("love it")).label == "happy"
    with pytest.raises(ValueError, match="at least one"):
        KnnScorer(HashEmbedder(), [])


def test_the_shipped_embedder_tells_thanks_from_a_request(embedder: Embedder) -> None:
    """Slow: loads the default embedding model (EmbeddingGemma, about a minute) once per session.
    The small-talk classifier on real multilingual messages, not on the hash embedder's exact
    wording (the injection classifier's figures on held-back attacks: bench/classifiers.py)."""
    talk = SmallTalkClassifier(embedder)
    thanks = [
        "thank you!!",
        "谢谢您",
        "¡gracias de verdad!",
        "merci à vous",
        "danke sehr!",
        "grazie di cuore",
        "obrigadão!",
        "спасибо вам",
        "شكرا لك",
        "teşekkür ederim",
        "ありがとうございました",
        "정말 고마워요",
    ]
    assert [talk.classify(t).kind for t in thanks] == ["thanks"] * len(thanks)
    assert not talk.classify("thanks, where is my order #1042?").is_small_talk
    assert not talk.classify("hi, my parcel is late").is_small_talk


class _Prompted(HashEmbedder):
    """Queries and documents embedded differently, as EmbeddingGemma does (its prompts)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return super().embed_documents([f"passage {t}" for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return super().embed_query(f"query {text}")


def test_query_and_document_modes_keep_their_own_matrices(tmp_path: Path) -> None:
    emb = _Prompted()
    query = KnnScorer(emb, EXAMPLES, cache_dir=tmp_path, mode="query")
    document = KnnScorer(emb, EXAMPLES, cache_dir=tmp_path, mode="document")
    assert not np.allclose(query.matrix, document.matrix)
    assert np.allclose(query.matrix[0], emb.embed_query(EXAMPLES[0][1]))
    assert np.allclose(document.matrix[0], emb.embed_documents([EXAMPLES[0][1]])[0])
    assert len(list(tmp_path.glob("*.npy"))) == 2  # one file per mode
    # a message is embedded the way the scorer's examples were
    assert np.allclose(query.embed("love it perfect"), emb.embed_query("love it perfect"))
    assert query.vote(query.embed("love it perfect")).label == "happy"
    assert document.vote(document.embed("love it perfect")).label == "happy"
