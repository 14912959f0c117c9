"""Concurrent chat embeddings share one model call, and each caller gets its own vectors."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from rag.adapters.hash_embedder import HashEmbedder
from rag.priority import MicroBatcher, PriorityLock, background


class _Model:
    """The hash embedder as a model with a query and a document prompt; it records each call.
    Its first call waits until `waiting` other requests queue behind it, so that a test sees
    the batch it means to see, whatever the scheduler does."""

    def __init__(self, lock: PriorityLock, waiting: int) -> None:
        self.inner = HashEmbedder()
        self.lock = lock
        self.waiting = waiting
        self.calls: list[tuple[str, int]] = []

    def encode(self, mode: str, texts: list[str]) -> list[list[float]]:
        if not self.calls:
            deadline = threading.Event()
            for _ in range(5000):  # at most 5 s: a broken batcher fails the test, never hangs
                if self.lock.urgent_waiting >= self.waiting:
                    break
                deadline.wait(0.001)
        self.calls.append((mode, len(texts)))
        return self.reference(mode, texts)

    def reference(self, mode: str, texts: Sequence[str]) -> list[list[float]]:
        prefix = "query " if mode == "query" else "passage "
        return self.inner.embed_documents([prefix + t for t in texts])


def _concurrently(batcher: MicroBatcher, jobs: list[tuple[str, list[str]]]) -> list[object]:
    results: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = batcher.embed(*jobs[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_concurrent_requests_get_their_own_vectors_from_fewer_calls() -> None:
    lock = PriorityLock()
    jobs = [("query", [f"where is my parcel {i}?"]) for i in range(8)]
    jobs += [("document", [f"sentence {i}", f"another sentence {i}"]) for i in range(4)]
    model = _Model(lock, waiting=len(jobs) - 1)
    batcher = MicroBatcher(lock, model.encode)
    results = _concurrently(batcher, jobs)
    for (mode, texts), got in zip(jobs, results, strict=True):
        assert isinstance(got, list), got
        assert np.allclose(got, model.reference(mode, texts))
    # the first request alone, then everything that queued meanwhile: one call per mode
    assert len(model.calls) <= 3 < len(jobs)
    assert sum(n for _, n in model.calls) == 8 + 4 * 2
    assert batcher.served == len(jobs)


def test_a_lone_request_is_encoded_at_once_in_one_call() -> None:
    lock = PriorityLock()
    model = _Model(lock, waiting=0)
    batcher = MicroBatcher(lock, model.encode)
    assert np.allclose(batcher.embed("query", ["hello"]), model.reference("query", ["hello"]))
    assert batcher.embed("document", []) == []
    assert model.calls == [("query", 1)]


def test_a_large_batch_is_split_at_the_cap() -> None:
    lock = PriorityLock()
    model = _Model(lock, waiting=0)
    batcher = MicroBatcher(lock, model.encode, max_texts=4)
    texts = [f"t{i}" for i in range(10)]
    assert np.allclose(batcher.embed("document", texts), model.reference("document", texts))
    assert [n for _, n in model.calls] == [4, 4, 2]


def test_a_failing_model_fails_every_waiting_request() -> None:
    lock = PriorityLock()
    model = _Model(lock, waiting=3)

    def broken(mode: str, texts: list[str]) -> list[list[float]]:
        model.encode(mode, texts)  # waits for the others, like a real batch
        raise RuntimeError("model crashed")

    batcher = MicroBatcher(lock, broken)
    results = _concurrently(batcher, [("query", [f"q{i}"]) for i in range(4)])
    assert all(isinstance(r, RuntimeError) for r in results), results


def test_chat_requests_still_go_before_background_work() -> None:
    lock = PriorityLock()
    model = _Model(lock, waiting=0)
    batcher = MicroBatcher(lock, model.encode)
    with background(), lock.hold():
        pass
    batcher.embed("query", ["hi"])
    assert lock.granted == {"foreground": 1, "background": 1}


def test_the_shipped_embedder_batches_concurrent_queries(embedder: object) -> None:
    """Slow: the default embedding model (EmbeddingGemma). Concurrent questions get the vectors
    a question alone gets, from fewer model calls."""
    from rag.adapters.st_embedder import SentenceTransformerEmbedder

    assert isinstance(embedder, SentenceTransformerEmbedder)
    questions = [
        "How long does shipping to Mexico take?",
        "¿Puedo devolver un artículo usado?",
        "配送到日本需要多久？",
        "Wo ist meine Bestellung?",
        "thanks, that's all I needed!",
        "Est-ce que le chargeur est inclus ?",
    ]
    n = len(questions)
    alone = [embedder.embed_query(q) for q in questions]
    real = embedder._model
    calls: list[int] = []
    first = threading.Event()

    class Counting:
        """The real model, counting its calls; the first waits for the others to queue."""

        def encode(self, texts: list[str], **kw: object) -> object:
            if not first.is_set():
                first.set()
                for _ in range(5000):
                    if embedder.lock.urgent_waiting >= n - 1:
                        break
                    threading.Event().wait(0.001)
            calls.append(len(texts))
            return real.encode(texts, **kw)

    embedder._model = Counting()
    try:
        together = _concurrently(embedder.batcher, [("query", [q]) for q in questions])
    finally:
        embedder._model = real
    for a, t in zip(alone, together, strict=True):
        assert isinstance(t, list), t
        assert np.allclose(a, t[0], atol=1e-4)
    assert len(calls) < n


def test_a_query_and_a_document_of_one_turn_share_one_call_when_the_model_allows() -> None:
    """Texts of both modes in one call (each with its own prompt): a turn's search vector and
    its classifiers' vector cost one forward pass; without the mixed encoder, one per mode."""
    lock = PriorityLock()
    model = _Model(lock, waiting=0)
    mixed: list[int] = []

    def encode_mixed(items: list[tuple[str, str]]) -> list[list[float]]:
        mixed.append(len(items))
        return [model.reference(mode, [text])[0] for mode, text in items]

    batcher = MicroBatcher(lock, model.encode, encode_mixed=encode_mixed)
    q, d = batcher.embed_together([("query", ["where is it?"]), ("document", ["where is it?"])])
    assert (mixed, model.calls) == ([2], [])
    assert np.allclose(q[0], model.reference("query", ["where is it?"])[0])
    assert np.allclose(d[0], model.reference("document", ["where is it?"])[0])
    assert not np.allclose(q[0], d[0])
    # one mode alone goes through the plain encoder
    batcher.embed("query", ["hi"])
    assert model.calls == [("query", 1)]
    plain = MicroBatcher(lock, model.encode)
    plain.embed_together([("query", ["a"]), ("document", ["a"])])
    assert model.calls[1:] == [("query", 1), ("document", 1)]


def test_the_shipped_embedder_gives_a_turn_both_vectors_in_one_call(embedder: object) -> None:
    """Slow: EmbeddingGemma. The query and document vectors of a message from one forward pass
    are the vectors each mode gets alone (the index and the classifiers stay valid)."""
    from rag.adapters.st_embedder import SentenceTransformerEmbedder

    assert isinstance(embedder, SentenceTransformerEmbedder)
    text = "¿Cuánto tarda el envío a México?"
    before = embedder.batcher.calls
    q, d = embedder.embed_query_and_document(text)
    assert embedder.batcher.calls == before + 1
    assert np.allclose(q, embedder.embed_query(text), atol=1e-4)
    assert np.allclose(d, embedder.embed_documents([text])[0], atol=1e-4)
