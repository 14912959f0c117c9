"""A scripted ChatModel that records its calls: a fake for unit tests of the answer logic."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence

from rag.ports import ChatStream, Usage
from rag.types import Message


class ScriptedChatModel:
    def __init__(self, replies: Sequence[str], *, delay_s: float = 0.0) -> None:
        self.replies = list(replies)
        self.calls: list[list[Message]] = []
        self.name = "scripted"
        self.delay_s = delay_s

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> ChatStream:
        return ChatStream(self._pieces(messages))

    def _pieces(self, messages: Sequence[Message]) -> Generator[str, None, Usage]:
        # recorded when the call is read, as a real model is only asked then
        self.calls.append(list(messages))
        reply = self.replies.pop(0) if self.replies else ""
        for i, word in enumerate(reply.split(" ")):
            if self.delay_s:
                time.sleep(self.delay_s)
            yield word if i == 0 else " " + word
        return Usage(
            prompt_tokens=sum(len(m.content.split()) for m in messages),
            completion_tokens=len(reply.split()),
        )

    def count_tokens(self, text: str) -> int:
        return len(text.split())
