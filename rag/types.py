"""Domain types shared by ingestion, retrieval and answering."""

from __future__ import annotations

from dataclasses import dataclass, field

DOC_TYPES = (
    "product",
    "shipping",
    "customs",
    "returns",
    "payment",
    "warranty",
    "faq",
    "other",
)


@dataclass(frozen=True)
class SourceDocument:
    """One loaded document (a policy file, or one product of a catalog) before chunking."""

    doc_id: str
    source: str
    title: str
    text: str
    doc_type: str = "other"
    language: str = "und"
    markets: tuple[str, ...] = ("ALL",)
    extra: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    text: str
    source: str
    title: str
    doc_type: str
    language: str
    markets: tuple[str, ...]
    content_hash: str
    ingested_at: str
    embedding_model: str
    position: int = 0
    extra: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search. `market` is the shopper's country (ISO alpha-2) or region."""

    market: str | None = None
    doc_types: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    chunk: Chunk
    score: float  # fused score, higher is better
    similarity: float  # cosine similarity of the dense match, 0 when only lexical
    lexical_rank: int | None = None
    dense_rank: int | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    confidence: float  # 0..1, how sure retrieval is that the answer is in hits
    query_vector: list[float] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str
