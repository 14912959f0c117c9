"""Hybrid retrieval: cross-lingual dense search fused with a lexical signal (RRF)."""

from __future__ import annotations

import logging
import time

import numpy as np

from rag.commerce.markets import applicable_markets, is_specific_to
from rag.knowledge.index import KnowledgeIndex
from rag.ports import Embedder
from rag.settings import RetrievalSettings
from rag.textutil import salient_terms
from rag.types import Chunk, SearchFilters, SearchHit, SearchResult

log = logging.getLogger(__name__)


def _where(filters: SearchFilters) -> dict[str, object] | None:
    clauses: list[dict[str, object]] = []
    if filters.market:
        ors: list[dict[str, object]] = [
            {f"mk_{m}": True} for m in applicable_markets(filters.market)
        ]
        clauses.append({"$or": ors} if len(ors) > 1 else ors[0])
    if filters.doc_types:
        clauses.append({"doc_type": {"$in": list(filters.doc_types)}})
    if filters.doc_ids:
        clauses.append({"doc_id": {"$in": list(filters.doc_ids)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _allowed(chunk: Chunk, filters: SearchFilters) -> bool:
    if filters.market:
        ok = set(applicable_markets(filters.market))
        if not ok & set(chunk.markets):
            return False
    if filters.doc_types and chunk.doc_type not in filters.doc_types:
        return False
    return not (filters.doc_ids and chunk.doc_id not in filters.doc_ids)


class Retriever:
    def __init__(
        self, *, index: KnowledgeIndex, embedder: Embedder, settings: RetrievalSettings
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        *,
        query_vector: list[float] | None = None,
    ) -> SearchResult:
        """The k best active chunks for `query`, with a retrieval confidence in 0..1."""
        k = k or self.settings.k
        filters = filters or SearchFilters()
        n = max(self.settings.candidates, k)
        t0 = time.perf_counter()
        vec = query_vector if query_vector is not None else self.embedder.embed_query(query)
        dense = self.index.dense_search(vec, n, _where(filters))
        lexical = self.index.lexical_search(salient_terms(query), n * 2)
        by_id = self.index.chunks_by_id(list({i for i, _ in dense} | set(lexical)))
        sims = dict(dense)

        # Fusion on the dense similarity scale: rank fusion (RRF) lets a lexical hit jump
        # dozens of dense ranks, while a bonus of a few hundredths only breaks near-ties, which
        # is what exact tokens (SKUs, numbers, names) and a market match should do.
        lex_ok = [c for c in lexical if c in by_id and _allowed(by_id[c], filters)][:n]
        missing = [c for c in lex_ok if c not in sims]
        if missing:
            found = self.index.vectors_of(missing)
            if found:
                scored = np.asarray(list(found.values()), dtype=np.float32) @ np.asarray(
                    vec, dtype=np.float32
                )
                sims.update(zip(found, scored.tolist(), strict=True))
        dense_rank = {cid: r + 1 for r, (cid, _) in enumerate(c for c in dense if c[0] in by_id)}
        lex_rank = {cid: r + 1 for r, cid in enumerate(lex_ok)}
        scores: dict[str, float] = {}
        for cid in set(dense_rank) | set(lex_rank):
            score = sims.get(cid, 0.0)
            if cid in lex_rank:
                score += self.settings.lexical_weight / lex_rank[cid]
            if filters.market and is_specific_to(by_id[cid].markets, filters.market):
                score += self.settings.market_boost
            scores[cid] = score

        ranked = sorted(scores, key=lambda c: scores[c], reverse=True)[:k]
        hits = [
            SearchHit(
                chunk=by_id[c],
                score=scores[c],
                similarity=sims.get(c, 0.0),
                lexical_rank=lex_rank.get(c),
                dense_rank=dense_rank.get(c),
            )
            for c in ranked
        ]
        conf = self.confidence(hits)
        log.debug(
            "search k=%d hits=%d conf=%.2f in %.0f ms",
            k,
            len(hits),
            conf,
            (time.perf_counter() - t0) * 1000,
        )
        return SearchResult(hits=hits, confidence=conf, query_vector=vec)

    def confidence(self, hits: list[SearchHit]) -> float:
        """Map the best dense similarity onto 0..1 around the configured floor."""
        if not hits:
            return 0.0
        best = max(h.similarity for h in hits)
        floor = self.settings.min_similarity
        span = 0.3
        return max(0.0, min(1.0, (best - floor) / span + 0.5)) if best > 0 else 0.0
