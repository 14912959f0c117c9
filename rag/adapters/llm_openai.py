"""ChatModel on any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)."""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from typing import Any

import httpx
import openai

from rag.errors import ModelUnavailable
from rag.ports import ChatStream, TokenCounter, Usage
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

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> ChatStream:
        """The reply's text pieces. A stream that stops before its end (no `[DONE]`, or a
        finish reason other than "stop": cut at max_tokens, dropped connection, filtered)
        raises ModelUnavailable after its pieces: a partial reply is a failed generation."""
        return ChatStream(self._pieces(messages, max_tokens, temperature))

    def _pieces(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generator[str, None, Usage]:
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        text: list[str] = []
        usage: Usage | None = None
        finish: str | None = None
        done = False
        try:
            # the raw event stream, so that the terminator can be checked: the SDK's own
            # iterator ends the same way whether or not `[DONE]` arrived
            with self._client.chat.completions.with_streaming_response.create(
                model=self.name,
                messages=msgs,
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True},
            ) as response:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # comments, event names, keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        break
                    chunk = _json(data)
                    if chunk.get("error"):
                        raise ModelUnavailable("LLM endpoint reported an error mid-stream")
                    if isinstance(chunk.get("usage"), dict):
                        usage = Usage(
                            prompt_tokens=int(chunk["usage"].get("prompt_tokens") or 0),
                            completion_tokens=int(chunk["usage"].get("completion_tokens") or 0),
                        )
                    for choice in chunk.get("choices") or []:
                        if choice.get("finish_reason"):
                            finish = str(choice["finish_reason"])
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            text.append(delta)
                            yield delta
        except openai.APIError as exc:
            raise ModelUnavailable(f"LLM endpoint error: {exc.__class__.__name__}") from exc
        except httpx.HTTPError as exc:  # the connection broke while reading the stream
            raise ModelUnavailable(f"LLM stream broken: {exc.__class__.__name__}") from exc
        if not done or finish != "stop":
            log.warning("LLM stream incomplete (finish_reason=%s, terminator=%s)", finish, done)
            seen = "seen" if done else "missing"
            raise ModelUnavailable(f"LLM stream incomplete (finish_reason={finish}, [DONE] {seen})")
        # endpoints that do not report usage are counted with tiktoken
        return usage or Usage(
            prompt_tokens=sum(self._counter.count(m.content) + 4 for m in messages),
            completion_tokens=self._counter.count("".join(text)),
        )

    def count_tokens(self, text: str) -> int:
        return self._counter.count(text)


def _json(data: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ModelUnavailable("LLM endpoint sent an unreadable stream event") from exc
    if not isinstance(obj, dict):
        raise ModelUnavailable("LLM endpoint sent an unexpected stream event")
    return obj
