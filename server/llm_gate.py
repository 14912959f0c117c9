"""The LLM is a shared resource: at most `slots` requests use it at once (one for the local
model, the endpoint's own limit for an OpenAI-compatible server), the others wait in a bounded
queue, and a request that cannot get the model in time gets the extractive fallback."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence

from rag.errors import ModelUnavailable
from rag.ports import ChatModel, ChatStream, Usage
from rag.types import Message


class GatedChatModel:
    def __init__(
        self, inner: ChatModel, *, max_waiting: int, wait_s: float, slots: int = 1
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self._slots = threading.Semaphore(slots)
        self._waiting = 0
        self._count = threading.Lock()

    @property
    def waiting(self) -> int:
        return self._waiting

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> ChatStream:
        return ChatStream(self._gated(messages, max_tokens, temperature))

    def _gated(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generator[str, None, Usage]:
        """The slot is taken when the first piece is asked for, and given back when the
        stream ends or is closed."""
        with self._count:
            if self._waiting >= self.max_waiting:
                raise ModelUnavailable("the model is busy (queue full)")
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self.wait_s)
        finally:
            with self._count:
                self._waiting -= 1
        if not acquired:
            raise ModelUnavailable("the model is busy (waited too long)")
        try:
            inner = self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature)
            yield from inner
            return inner.usage or Usage()
        finally:
            self._slots.release()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)
