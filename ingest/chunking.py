"""Token-aware chunking that respects headings and works for scripts without spaces (CJK, Thai)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.ports import TokenCounter

# Paragraphs, lines, then sentence ends in Latin, CJK, Devanagari, Arabic, Thai/Burmese
# punctuation, then clauses, then spaces, then characters (for scripts without spaces).
SEPARATORS = [
    "\n\n",
    "\n",
    "。",
    "！",
    "？",
    ". ",
    "! ",
    "? ",
    "। ",
    "؟ ",
    "။",
    "；",
    "; ",
    "，",
    "、",
    ", ",
    " ",
    "",
]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class TextChunk:
    text: str  # what is embedded and shown: the heading path, then the passage
    position: int


def sections(text: str) -> list[tuple[str, str]]:
    """Split Markdown-ish text into (heading path, body) sections."""
    out: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    last = 0
    heading = ""
    for m in _HEADING.finditer(text):
        body = text[last : m.start()].strip()
        if body:
            out.append((heading, body))
        level = len(m.group(1))
        path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, m.group(2).strip())]
        heading = " > ".join(t for _, t in path)
        last = m.end()
    tail = text[last:].strip()
    if tail:
        out.append((heading, tail))
    return out


class Chunker:
    def __init__(self, counter: TokenCounter, *, chunk_tokens: int, overlap: int) -> None:
        self.counter = counter
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_tokens,
            chunk_overlap=overlap,
            length_function=counter.count,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    @property
    def signature(self) -> str:
        """Identifies the chunking configuration; part of every document's content hash."""
        return f"chunker-v1:{self.chunk_tokens}:{self.overlap}"

    def split(self, title: str, text: str) -> list[TextChunk]:
        out: list[TextChunk] = []
        for heading, body in sections(text) or [("", text)]:
            if heading == title or heading.startswith(title + " > "):
                heading = heading[len(title) :].removeprefix(" > ")
            prefix = f"{title} — {heading}" if heading else title
            budget = max(self.chunk_tokens - self.counter.count(prefix) - 2, 32)
            pieces = (
                [body] if self.counter.count(body) <= budget else self._splitter.split_text(body)
            )
            for piece in pieces:
                if piece.strip():
                    out.append(TextChunk(text=f"{prefix}\n{piece}", position=len(out)))
        return out
