"""Text blocks of a loaded document: headings, pipe tables, list items and paragraphs with
their character spans, and the sentence and number helpers the fact compiler reads them with."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

# ---- small text helpers ------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\w.])\d+(?::\d{2}|(?:[.,\u00a0 ]\d{3})*(?:[.,]\d+)?)"
    r"(?:\s*[–—-]\s*\d+(?:[.,]\d{3})*(?:[.,]\d+)?)?(?![A-Z]{2}|\d)"
)
_THOUSANDS = re.compile(r"^\d{1,3}(?:([,\u00a0 ])\d{3})+(?:\.\d+)?$")


def quantities_in(text: str) -> tuple[str, ...]:
    """The quantities a statement gives, thousands separators dropped, ranges kept whole as
    "a–b" (a fact states "10–18", not 10 and 18; rag.textutil.numbers_in, for the grounding
    check, reads single numbers)."""
    out: list[str] = []
    for m in _NUMBER.finditer(text):
        parts = [p.strip() for p in re.split(r"\s*[–—-]\s*", m.group(0).strip())]
        clean = []
        for p in parts:
            t = _THOUSANDS.match(p)
            clean.append(p.replace(t.group(1), "") if t and t.group(1) else p)
        out.append("–".join(clean))
    return tuple(dict.fromkeys(out))


def clean_inline(text: str) -> str:
    """Markdown inline markup removed: emphasis, code, links (their text kept), images."""
    t = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    t = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", t)
    t = re.sub(r"(\*\*|__|`)", "", t)
    t = re.sub(r"(?<!\w)[*_](\S[^*_]*?)[*_](?!\w)", r"\1", t)
    return " ".join(t.split())


def cjk(ch: str) -> bool:
    return ord(ch) > 0x2E80


def join_lines(lines: Sequence[str]) -> str:
    """Lines of one paragraph as one line; no space between two CJK characters."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if out and not (cjk(out[-1]) and cjk(line[0])):
            out += " "
        out += line
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“¿¡(\[]?[A-ZÀ-ÖØ-Þ0-9\u0370-\u04ff])|(?<=[。！？])")


def sentences(text: str) -> list[str]:
    """A paragraph's sentences. A question is kept with the answer that follows it."""
    parts = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    out: list[str] = []
    for part in parts:
        if out and out[-1].rstrip().endswith(("?", "？", "?**", "？**")):
            out[-1] = join_lines([out[-1], part])
        else:
            out.append(part)
    return out


# ---- Markdown (and the Markdown-like text every loader produces) --------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
ITEM = re.compile(
    r"^\s*(?:[-*+•](?:\s+|$)|\d{1,2}[.)]\s+|\d{1,2}、|[一二三四五六七八九十]+、)(.*)$"
)
SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


@dataclass
class Block:
    kind: Literal["heading", "table", "item", "paragraph"]
    lines: list[str]
    start: int
    end: int
    level: int = 0


def blocks(text: str) -> Iterator[Block]:
    """Headings, tables, list items and paragraphs, with their character spans."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\n")
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        m = HEADING.match(stripped)
        if m:
            yield Block("heading", [m.group(2)], offsets[i], offsets[i + 1], len(m.group(1)))
            i += 1
            continue
        if is_table_start(lines, i):
            j = i
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                j += 1
            yield Block("table", [ln.rstrip("\n") for ln in lines[i:j]], offsets[i], offsets[j])
            i = j
            continue
        j = i + 1
        item = ITEM.match(line) is not None
        while j < len(lines):
            nxt = lines[j].rstrip("\n")
            if (
                not nxt.strip()
                or HEADING.match(nxt.strip())
                or ITEM.match(nxt)
                or is_table_start(lines, j)
            ):
                break
            j += 1
        chunk = [ln.rstrip("\n") for ln in lines[i:j]]
        yield Block("item" if item else "paragraph", chunk, offsets[i], offsets[j])
        i = j


def is_table_start(lines: Sequence[str], i: int) -> bool:
    """A pipe table: a row then a separator row, or (as DOCX tables load) two or more rows of
    cells joined by " | "."""
    if "|" not in lines[i]:
        return False
    if i + 1 < len(lines) and SEPARATOR.match(lines[i + 1]):
        return True
    line = lines[i].strip()
    if line.startswith("|"):
        return False
    return (
        i + 1 < len(lines)
        and " | " in lines[i]
        and " | " in lines[i + 1]
        and lines[i].count("|") == lines[i + 1].count("|")
    )


def cells(line: str) -> list[str]:
    t = line.strip()
    if t.startswith("|"):
        t = t[1:]
    if t.endswith("|"):
        t = t[:-1]
    return [clean_inline(c) for c in t.split("|")]
