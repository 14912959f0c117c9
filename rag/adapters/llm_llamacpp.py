"""ChatModel on llama.cpp (llama-cpp-python): a local GGUF model, the embedded default."""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ModelUnavailable
from rag.ports import ChatStream, Usage
from rag.types import Message

log = logging.getLogger(__name__)


class LlamaCppChatModel:
    """One model instance is a single shared resource: calls are serialised by a lock.

    Stable instructions go first in every prompt so that llama.cpp's prefix cache reuses them
    across requests (prompt processing dominates latency on a CPU)."""

    def __init__(
        self,
        model_path: Path,
        *,
        name: str,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 7,
    ) -> None:
        from llama_cpp import Llama

        try:
            self._llm: Any = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(f"cannot load GGUF model {model_path}: {exc}") from exc
        self.name = name
        self.lock = threading.Lock()

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> ChatStream:
        return ChatStream(self._pieces(messages, max_tokens, temperature))

    def _pieces(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generator[str, None, Usage]:
        with self.lock:
            msgs = [{"role": m.role, "content": m.content} for m in messages]
            prompt_tokens = sum(self.count_tokens(m.content) + 4 for m in messages)
            completion = 0
            finish: str | None = None
            try:
                for chunk in self._llm.create_chat_completion(
                    messages=msgs,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    top_p=0.9,
                    repeat_penalty=1.1,
                    stream=True,
                ):
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    delta = choice["delta"].get("content")
                    if delta:
                        completion += 1
                        yield delta
            except (RuntimeError, ValueError) as exc:
                raise ModelUnavailable(f"llama.cpp failed: {exc}") from exc
            if finish != "stop":  # cut at max_tokens: a partial reply is a failed generation
                raise ModelUnavailable(f"llama.cpp reply incomplete (finish_reason={finish})")
            return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
