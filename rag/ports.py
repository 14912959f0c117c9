"""Ports: one Protocol per swappable part. Adapters in rag/adapters implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.commerce.types import Customer, Order
from rag.types import Message

MetadataValue = str | int | float | bool
Metadata = Mapping[str, MetadataValue]


class Embedder(Protocol):
    """Turns text into unit-length vectors; queries and documents may be embedded differently."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class VectorMatch:
    id: str
    distance: float


class VectorStore(Protocol):
    """A collection of vectors keyed by chunk id, with scalar metadata for filtering."""

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Metadata],
    ) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def query(
        self, embedding: Sequence[float], k: int, where: Mapping[str, object] | None = None
    ) -> list[VectorMatch]: ...

    def ids(self) -> list[str]: ...

    def get_vectors(self, ids: Sequence[str]) -> dict[str, list[float]]: ...

    def count(self) -> int: ...

    def get_metadata(self) -> dict[str, MetadataValue]: ...

    def reset(self, metadata: Metadata) -> None: ...


class LanguageDetector(Protocol):
    def detect(self, text: str, *, hint: str | None = None) -> tuple[str, float]:
        """Return (ISO 639-1 code or 'und', confidence 0..1)."""
        ...


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class ChatModel(Protocol):
    """A chat LLM. `stream` yields text pieces; `name` identifies the model in reports;
    `last_usage` holds prompt and completion token counts of the last call."""

    name: str
    last_usage: dict[str, int]

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


class OrderConnector(Protocol):
    """A storefront's orders and customers (SQLite, Shopify, WooCommerce, Magento).

    Lookups return None for what does not exist; verification (does this shopper own the
    order?) is the caller's job, so every connector is held to the same rule. Failures of the
    platform raise ConnectorUnavailable (ConnectorAuthError for rejected credentials)."""

    name: str

    def get_order(self, number: str) -> Order | None:
        """The order the shopper calls `number` ("1042", without "#")."""
        ...

    def get_customer(self, key: str) -> Customer | None:
        """A customer by the platform's customer id or by e-mail address."""
        ...
