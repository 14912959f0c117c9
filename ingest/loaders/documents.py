"""Loaders for policy documents: Markdown, plain text, HTML, PDF, DOCX."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ingest.loaders import LoadOptions
from ingest.loaders.common import (
    check_archive,
    first_heading,
    infer_doc_type,
    infer_markets,
    read_text,
    split_front_matter,
)
from rag.errors import UnreadableFile
from rag.types import SourceDocument


def _make(
    path: Path, doc_id: str, text: str, meta: dict[str, Any], title: str | None
) -> list[SourceDocument]:
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    title = str(meta.get("title") or title or path.stem.replace("-", " ").replace("_", " "))
    lang = meta.get("language") or meta.get("lang")
    return [
        SourceDocument(
            doc_id=doc_id,
            source=str(path),
            title=title.strip(),
            text=text,
            doc_type=infer_doc_type(meta.get("doc_type") or meta.get("type"), doc_id, text),
            language=str(lang) if lang else "und",
            markets=infer_markets(meta.get("markets") or meta.get("market"), doc_id),
        )
    ]


def load_markdown(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    meta, body = split_front_matter(read_text(path), path.name)
    return _make(path, doc_id, body, meta, first_heading(body))


def load_text(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    meta, body = split_front_matter(read_text(path), path.name)
    first = next((ln.strip() for ln in body.splitlines() if ln.strip()), None)
    return _make(path, doc_id, body, meta, first)


def load_html(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(read_text(path), "html.parser")
    meta: dict[str, Any] = {}
    for tag in soup.find_all("meta"):
        name, content = tag.get("name"), tag.get("content")
        if isinstance(name, str) and isinstance(content, str):
            meta[name.lower()] = content
    html_tag = soup.find("html")
    if html_tag is not None and not meta.get("language"):
        lang = html_tag.get("lang")
        if isinstance(lang, str) and lang:
            meta["language"] = lang.split("-")[0].lower()
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    title = (title_tag.get_text(strip=True) if title_tag else None) or (
        h1.get_text(strip=True) if h1 else None
    )
    for t in soup(["script", "style", "nav", "footer", "noscript", "template", "head"]):
        t.decompose()
    # keep the heading structure for the chunker
    for level in range(1, 7):
        for h in soup.find_all(f"h{level}"):
            h.replace_with(f"\n\n{'#' * level} {h.get_text(' ', strip=True)}\n\n")
    for li in soup.find_all("li"):
        li.insert_before("\n- ")
    text = soup.get_text("\n")
    text = "\n".join(ln.strip() for ln in text.splitlines())
    return _make(path, doc_id, text, meta, title)


def load_pdf(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise UnreadableFile(f"{path.name}: encrypted PDF (remove the password and retry)")
        count = len(reader.pages)
        if count > options.max_pdf_pages:
            raise UnreadableFile(
                f"{path.name}: {count} pages, over the limit of {options.max_pdf_pages} "
                "(KEFU_INGEST__MAX_PDF_PAGES)"
            )
        pages = [p.extract_text() or "" for p in reader.pages]
        info = reader.metadata
    except UnreadableFile:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise UnreadableFile(f"{path.name}: corrupt or unreadable PDF ({exc})") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise UnreadableFile(f"{path.name}: PDF has no extractable text (scanned images?)")
    title = (info.title if info and info.title else None) or next(
        (ln.strip() for ln in text.splitlines() if ln.strip()), None
    )
    return _make(path, doc_id, text, {}, title)


def load_docx(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_archive(
        path,
        max_bytes=options.max_unzipped_bytes,
        max_text_bytes=options.max_unzipped_text_bytes,
        max_entries=options.max_zip_entries,
    )
    try:
        d = docx.Document(str(path))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable .docx ({exc})") from exc
    lines: list[str] = []
    title: str | None = d.core_properties.title or None
    for p in d.paragraphs:
        txt = p.text.strip()
        if not txt:
            continue
        style = (p.style.name if p.style is not None else "") or ""
        m = re.match(r"Heading (\d)", style)
        if style == "Title":
            title = title or txt
            lines.append(f"# {txt}")
        elif m:
            lines.append(f"{'#' * int(m.group(1))} {txt}")
            title = title or txt
        else:
            lines.append(txt)
    for table in d.tables:
        for row in table.rows:
            lines.append(" | ".join(c.text.strip() for c in row.cells))
    return _make(path, doc_id, "\n\n".join(lines), {}, title)
