"""Ports: one Protocol per swappable part. Adapters in rag/adapters implement them."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from rag.commerce.types import Customer, Order
from rag.conversations.types import Turn
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


@dataclass(frozen=True)
class Usage:
    """The tokens one chat call consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


class ChatStream(Iterator[str]):
    """The text pieces of one chat call, and its `usage` once the last piece has been read
    (None before, and for a call that failed or was abandoned). Each call carries its own
    count, so concurrent calls on one model never read each other's."""

    def __init__(self, pieces: Generator[str, None, Usage]) -> None:
        self._pieces = pieces
        self.usage: Usage | None = None

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        try:
            return next(self._pieces)
        except StopIteration as end:
            self.usage = end.value
            raise StopIteration from None

    def close(self) -> None:
        """Stop reading early: the adapter releases what it holds (a lock, a connection)."""
        self._pieces.close()


class ChatModel(Protocol):
    """A chat LLM. `stream` returns the reply's text pieces with the call's token usage;
    `name` identifies the model in reports."""

    name: str

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> ChatStream: ...

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


class ConversationStore(Protocol):
    """Conversations by session id (turns, handoffs, feedback, small per-session state) and
    the failed order checks by hashed key across sessions. SQLite for one machine, PostgreSQL
    for several (rag/adapters/*_conversations.py); tests/integration/
    test_conversation_store_contract.py holds both to the same behaviour.

    Records (sessions, handoffs, stats) are plain dicts of JSON values, as the API returns them;
    `state` is a small free-form JSON object, never PII."""

    def append(
        self,
        session_id: str,
        turn: Turn,
        *,
        customer_id: str | None = None,
        country: str | None = None,
    ) -> None: ...

    def history(self, session_id: str, limit: int = 20) -> list[Turn]:
        """The last `limit` turns, oldest first."""
        ...

    def session(self, session_id: str) -> dict[str, Any] | None: ...

    def state(self, session_id: str) -> dict[str, Any]: ...

    def set_state(self, session_id: str, state: dict[str, Any]) -> None: ...

    def locked(self, keys: Iterable[str], now: datetime) -> bool:
        """Is any of these hashed keys locked out of order checks at `now`?"""
        ...

    def record_failure(
        self,
        limits: dict[str, int],
        *,
        now: datetime,
        lock_s: float,
        max_lock_s: float,
        window_s: float,
    ) -> bool:
        """Count one failed order check per key; True when a lock-out began."""
        ...

    def open_handoff(
        self,
        session_id: str,
        *,
        reason: str,
        language: str | None,
        summary: str,
        customer_id: str | None = None,
    ) -> int: ...

    def active_handoff(self, session_id: str) -> dict[str, Any] | None: ...

    def handoff(self, handoff_id: int) -> dict[str, Any] | None: ...

    def handoffs(self, status: str | None = None) -> list[dict[str, Any]]: ...

    def set_handoff_status(
        self, handoff_id: int, status: str, agent: str | None = None
    ) -> None: ...

    def failures_since_handoff(self, session_id: str) -> int: ...

    def add_feedback(self, session_id: str, rating: str, comment: str | None) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete everything held about a shopper; returns counts (the receipt)."""
        ...

    def purge_older_than(self, days: int) -> dict[str, int]:
        """Retention: delete transcripts not updated for `days` days."""
        ...

    def close(self) -> None: ...


class RateWindow(Protocol):
    """Requests per key in a sliding one-minute window, shared by every worker (and machine)
    that opens the same one: the server's rate limits when they must hold across workers."""

    def check(self, key: str, per_minute: int, *, count: bool = True) -> float | None:
        """None when `key` is under `per_minute` (and, with `count`, this request is counted);
        else the seconds until its next request is allowed."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for a client's retries, as it was sent."""

    status: int
    body: str  # the JSON text
    headers: Mapping[str, str]


@dataclass(frozen=True)
class KeyClaim:
    """What `IdempotencyStore.begin` found for a key.

    run: the key is this request's (first use, expired, or abandoned by a request that never
    finished): run it, then `finish` or `release` with `token`. replay: the key's request ran
    with the same fingerprint; send `response` again. in_flight: it is still running.
    mismatch: the key was used for another request (another body or path)."""

    outcome: Literal["run", "replay", "in_flight", "mismatch"]
    token: str = ""
    response: StoredResponse | None = None


class IdempotencyStore(Protocol):
    """Idempotency keys of retried requests and the responses they got, shared by every worker
    (and machine) that opens the same one, kept for a time to live. A key belongs to a scope
    (the caller: a session, a client address, the agents), so callers' keys never meet."""

    def begin(
        self, scope: str, key: str, fingerprint: str, *, ttl_s: float, lease_s: float
    ) -> KeyClaim:
        """Claim `key` for a request with `fingerprint` (a digest of what it asks), or say what
        already holds it. A claim not finished within `lease_s` seconds is taken to belong to
        a request that died, and is given to the next one; a finished key is kept `ttl_s`."""
        ...

    def finish(self, scope: str, key: str, token: str, response: StoredResponse) -> None:
        """Keep the claimed request's response for its retries."""
        ...

    def release(self, scope: str, key: str, token: str) -> None:
        """Forget a claim whose request failed, so that a retry runs it again."""
        ...

    def close(self) -> None: ...
