"""Loaders turn one file into SourceDocuments. A catalog file yields one document per product."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.errors import UnreadableFile, UnsupportedFile
from rag.types import SourceDocument


@dataclass(frozen=True)
class LoadOptions:
    currency: str = "USD"
    max_bytes: int | None = None
    # ZIP-based formats (DOCX) are checked before parsing: a few hundred KB can unzip to GBs
    max_unzipped_bytes: int = 100_000_000  # all entries
    max_unzipped_text_bytes: int = 10_000_000  # XML parts, which the parser holds in memory
    max_zip_entries: int = 1000
    max_pdf_pages: int = 500


Loader = Callable[[Path, str, LoadOptions], list[SourceDocument]]


def _registry() -> dict[str, Loader]:
    from ingest.loaders import catalog, documents

    return {
        ".md": documents.load_markdown,
        ".markdown": documents.load_markdown,
        ".txt": documents.load_text,
        ".text": documents.load_text,
        ".html": documents.load_html,
        ".htm": documents.load_html,
        ".pdf": documents.load_pdf,
        ".docx": documents.load_docx,
        ".csv": catalog.load_csv,
        ".json": catalog.load_json,
    }


SUPPORTED = (".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf", ".docx", ".csv", ".json")


@lru_cache(maxsize=1)
def loader_version() -> str:
    """A digest of the loaders' code: a file last loaded by other code is loaded again."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_file(path: Path, doc_id: str, options: LoadOptions | None = None) -> list[SourceDocument]:
    """Load one file; raise UnsupportedFile or UnreadableFile with a reason a seller can act on."""
    loader = _registry().get(path.suffix.lower())
    if loader is None:
        raise UnsupportedFile(f"{path.name}: unsupported file type {path.suffix or '(none)'}")
    options = options or LoadOptions()
    max_bytes = options.max_bytes
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableFile(f"{path.name}: {exc.strerror or exc}") from exc
    if size == 0:
        raise UnreadableFile(f"{path.name}: empty file")
    if max_bytes is not None and size > max_bytes:
        raise UnreadableFile(
            f"{path.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit"
        )
    docs = loader(path, doc_id, options)
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise UnreadableFile(f"{path.name}: no text could be extracted")
    return docs
