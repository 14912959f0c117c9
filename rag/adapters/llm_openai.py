"""ChatModel on any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import openai

from rag.errors import ModelUnavailable
from rag.ports import TokenCounter
from rag.types import Message

log = logging.getLogger(__name__)


class OpenAIChatModel:
    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        counter: TokenCounter,
    ) -> None:
        self._client: Any = openai.OpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url or None,
            timeout=timeout_s,
            max_retries=1,
        )
        self.name = model
        self._counter = counter
        self.last_usage: dict[str, int] = {}

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        text: list[str] = []
        usage: dict[str, int] = {}
        try:
            stream = self._client.chat.completions.create(
                model=self.name,
                messages=msgs,
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                if getattr(chunk, "usage", None):
                    usage = {
                        "prompt_tokens": int(chunk.usage.prompt_tokens),
                        "completion_tokens": int(chunk.usage.completion_tokens),
                    }
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta.content
                if delta:
                    text.append(delta)
                    yield delta
        except openai.APIError as exc:
            raise ModelUnavailable(f"LLM endpoint error: {exc.__class__.__name__}") from exc
        finally:
            # endpoints that do not report usage are counted with tiktoken
            self.last_usage = usage or {
                "prompt_tokens": sum(self._counter.count(m.content) + 4 for m in messages),
                "completion_tokens": self._counter.count("".join(text)),
            }

    def count_tokens(self, text: str) -> int:
        return self._counter.count(text)
