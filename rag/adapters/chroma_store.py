"""VectorStore on Chroma: embedded on disk (persistent) or a Chroma server (http)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import chromadb
from chromadb.config import Settings as ChromaClientSettings

from rag.errors import StoreUnavailable
from rag.ports import Metadata, MetadataValue, VectorMatch

_BATCH = 1000


class ChromaVectorStore:
    def __init__(
        self,
        *,
        collection: str,
        path: Path | None = None,
        host: str | None = None,
        port: int | None = None,
        metadata: Metadata | None = None,
    ) -> None:
        settings = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
                self._client: Any = chromadb.PersistentClient(path=str(path), settings=settings)
            else:
                self._client = chromadb.HttpClient(
                    host=host or "127.0.0.1", port=port or 8000, settings=settings
                )
            self._name = collection
            self._col: Any = self._client.get_or_create_collection(
                name=collection,
                metadata={"hnsw:space": "cosine", **dict(metadata or {})},
                embedding_function=None,
            )
        except Exception as exc:  # chromadb raises many types; the caller needs one
            where = str(path) if path is not None else f"{host}:{port}"
            raise StoreUnavailable(f"cannot open Chroma at {where}: {exc}") from exc

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Metadata],
    ) -> None:
        for i in range(0, len(ids), _BATCH):
            self._col.upsert(
                ids=list(ids[i : i + _BATCH]),
                embeddings=[list(e) for e in embeddings[i : i + _BATCH]],
                metadatas=[dict(m) for m in metadatas[i : i + _BATCH]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), _BATCH):
            self._col.delete(ids=list(ids[i : i + _BATCH]))

    def query(
        self, embedding: Sequence[float], k: int, where: Mapping[str, object] | None = None
    ) -> list[VectorMatch]:
        try:
            n = min(k, self.count())
            if n <= 0:
                return []
            res = self._col.query(
                query_embeddings=[list(embedding)],
                n_results=n,
                where=dict(where) if where else None,
                include=["distances"],
            )
        except Exception as exc:  # a Chroma server that went away, a broken file
            raise StoreUnavailable(f"vector store query failed: {exc.__class__.__name__}") from exc
        ids = res["ids"][0]
        dists = res["distances"][0]
        return [VectorMatch(id=i, distance=float(d)) for i, d in zip(ids, dists, strict=True)]

    def ids(self) -> list[str]:
        out: list[str] = []
        offset = 0
        while True:
            got = self._col.get(include=[], limit=_BATCH, offset=offset)
            out.extend(got["ids"])
            if len(got["ids"]) < _BATCH:
                return out
            offset += _BATCH

    def get_vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        got = self._col.get(ids=list(ids), include=["embeddings"])
        return {
            i: [float(x) for x in e] for i, e in zip(got["ids"], got["embeddings"], strict=True)
        }

    def count(self) -> int:
        return int(self._col.count())

    def get_metadata(self) -> dict[str, MetadataValue]:
        return cast(dict[str, MetadataValue], dict(self._col.metadata or {}))

    def reset(self, metadata: Metadata) -> None:
        self._client.delete_collection(self._name)
        self._col = self._client.get_or_create_collection(
            name=self._name,
            metadata={"hnsw:space": "cosine", **dict(metadata)},
            embedding_function=None,
        )
