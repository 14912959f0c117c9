"""Helpers shared by loaders: decoding, front matter, doc type and market inference."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import yaml
from charset_normalizer import from_bytes

from rag.commerce.markets import REGIONS, normalize_market
from rag.errors import UnreadableFile
from rag.types import DOC_TYPES

_FOLDER_TYPES = {
    "shipping": "shipping",
    "delivery": "shipping",
    "logistics": "shipping",
    "tracking": "shipping",
    "customs": "customs",
    "duties": "customs",
    "tax": "customs",
    "taxes": "customs",
    "returns": "returns",
    "refunds": "returns",
    "payment": "payment",
    "payments": "payment",
    "billing": "payment",
    "warranty": "warranty",
    "guarantee": "warranty",
    "faq": "faq",
    "faqs": "faq",
    "product": "product",
    "products": "product",
    "catalog": "product",
    "catalogue": "product",
}

# A light multilingual keyword classifier, used when neither front matter nor folder says.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "customs": (
        "customs",
        "duty",
        "duties",
        "vat",
        "ioss",
        "import tax",
        "关税",
        "海关",
        "aduana",
        "impuesto",
        "douane",
        "zoll",
        "tariff",
        "gst",
    ),
    "shipping": (
        "shipping",
        "delivery",
        "carrier",
        "tracking",
        "parcel",
        "发货",
        "物流",
        "envío",
        "envio",
        "livraison",
        "versand",
        "entrega",
    ),
    "returns": (
        "return",
        "refund",
        "退货",
        "退款",
        "devolución",
        "reembolso",
        "retour",
        "rückgabe",
        "erstattung",
    ),
    "payment": (
        "payment",
        "card",
        "paypal",
        "charge",
        "支付",
        "付款",
        "pago",
        "paiement",
        "zahlung",
    ),
    "warranty": ("warranty", "guarantee", "defect", "保修", "garantía", "garantie"),
    "faq": ("faq", "frequently asked", "常见问题", "preguntas frecuentes"),
}


def decode(raw: bytes, name: str) -> str:
    for enc in ("utf-8-sig", "utf-8"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    best = from_bytes(raw).best()
    if best is None:
        raise UnreadableFile(f"{name}: not a text file (encoding could not be detected)")
    return str(best)


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path.name}: {exc.strerror or exc}") from exc
    if b"\x00" in raw[:4096]:
        raise UnreadableFile(f"{path.name}: looks binary, not text")
    return decode(raw, path.name)


_FM = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def split_front_matter(text: str, name: str) -> tuple[dict[str, Any], str]:
    m = _FM.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise UnreadableFile(f"{name}: invalid front matter: {exc}") from exc
    if not isinstance(meta, dict):
        raise UnreadableFile(f"{name}: front matter must be a mapping")
    return meta, text[m.end() :]


def infer_doc_type(declared: object, doc_id: str, text: str) -> str:
    if isinstance(declared, str) and declared.strip().lower() in DOC_TYPES:
        return declared.strip().lower()
    for part in reversed(Path(doc_id).parts[:-1]):
        t = _FOLDER_TYPES.get(part.lower())
        if t:
            return t
    head = (Path(doc_id).stem + " " + text[:1500]).lower()
    scores = {t: sum(head.count(k) for k in kws) for t, kws in _KEYWORDS.items()}
    best = max(scores, key=lambda t: scores[t])
    return best if scores[best] > 0 else "other"


def _is_market(code: str) -> bool:
    c = normalize_market(code)
    return c == "ALL" or c in REGIONS or (len(c) == 2 and c.isalpha())


def infer_markets(declared: object, doc_id: str) -> tuple[str, ...]:
    if isinstance(declared, str):
        declared = [p for p in re.split(r"[,\s]+", declared) if p]
    if isinstance(declared, list | tuple) and declared:
        codes = [normalize_market(str(x)) for x in declared]
        bad = [c for c in codes if not _is_market(c)]
        if not bad:
            return tuple(dict.fromkeys(codes))
    # a folder named after a market: docs/customs/US/duties.md
    for part in reversed(Path(doc_id).parts[:-1]):
        if part.isupper() and _is_market(part) and len(part) <= 3:
            return (normalize_market(part),)
    return ("ALL",)


def check_archive(path: Path, *, max_bytes: int, max_text_bytes: int, max_entries: int) -> None:
    """Refuse a ZIP-based file (DOCX, XLSX…) whose contents would be too big to parse, before
    anything is decompressed. The sizes are the ones the archive declares: Python's zipfile
    never decompresses an entry past its declared size, so they bound the real work."""
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable ZIP-based document ({exc})") from exc
    if len(entries) > max_entries:
        raise UnreadableFile(
            f"{path.name}: {len(entries)} parts inside, over the limit of {max_entries}"
        )
    total = sum(max(e.file_size, 0) for e in entries)
    text = sum(
        max(e.file_size, 0) for e in entries if e.filename.lower().endswith((".xml", ".rels"))
    )
    if total > max_bytes:
        raise UnreadableFile(
            f"{path.name}: unzips to {total / 1e6:.0f} MB, over the "
            f"{max_bytes / 1e6:.0f} MB limit (KEFU_INGEST__MAX_UNZIPPED_MB)"
        )
    if text > max_text_bytes:
        raise UnreadableFile(
            f"{path.name}: {text / 1e6:.0f} MB of document XML when unzipped, over the "
            f"{max_text_bytes / 1e6:.0f} MB limit (KEFU_INGEST__MAX_UNZIPPED_TEXT_MB)"
        )


def first_heading(text: str) -> str | None:
    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else None
