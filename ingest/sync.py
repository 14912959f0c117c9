"""Incremental sync of a folder into a store: unchanged skipped, changed replaced, removed deleted.

Each document is hashed (its extracted text, metadata, the chunker configuration and the embedding
model); only documents whose hash differs from the manifest are chunked and embedded. Every document
switch is atomic (see rag.knowledge.index), so an interrupted sync leaves each document either at
its old or its new version, and the next sync completes the job. The same holds for a job that is
cancelled or runs out of time (`JobControl`): it stops between files and between embedding batches.
Embedding runs in small batches marked as background work, so a shopper's question waits for at most
one batch at the embedder (rag.priority).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ingest.chunking import Chunker
from ingest.loaders import SUPPORTED, LoadOptions, load_file, loader_version
from rag.errors import IngestError
from rag.guardrails.injection import instructs
from rag.knowledge.context import sentences
from rag.knowledge.facts import Fact, compile_facts
from rag.knowledge.index import KnowledgeIndex
from rag.ports import Embedder, LanguageDetector
from rag.priority import background
from rag.textutil import content_hash
from rag.types import Chunk, SourceDocument

log = logging.getLogger(__name__)

# (stage, done, total): how long work reports how far it is; the eval runner and the CLI's
# progress bar take the same callback
Progress = Callable[[str, int, int], None]
IGNORE_FILE = ".kefuignore"


class Stopped(IngestError):
    """An ingest job was cancelled or ran past its time limit; what it finished is kept."""

    def __init__(self, reason: str, report: SyncReport | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.report = report


@dataclass
class JobControl:
    """Stops a job between files and batches: a cancel flag and a deadline."""

    cancelled: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None  # time.monotonic() value

    @classmethod
    def with_timeout(cls, seconds: float | None) -> JobControl:
        return cls(deadline=time.monotonic() + seconds if seconds else None)

    def cancel(self) -> None:
        self.cancelled.set()

    def check(self, report: SyncReport | None = None) -> None:
        if self.cancelled.is_set():
            raise Stopped("cancelled", report)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Stopped("ran past its time limit (KEFU_INGEST__JOB_TIMEOUT_S)", report)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    # documents with sentences that give the assistant orders; those are never used
    flagged: list[dict[str, object]] = field(default_factory=list)  # {"doc_id", "sentences"}
    chunks_embedded: int = 0
    facts_embedded: int = 0  # compiled facts embedded (rag.knowledge.facts)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, "
            f"{len(self.skipped)} skipped; {self.chunks_embedded} chunks and "
            f"{self.facts_embedded} facts embedded "
            f"in {self.seconds:.1f} s"
        )


def _ignored_patterns(root: Path) -> list[str]:
    f = root / IGNORE_FILE
    if not f.is_file():
        return []
    return [
        ln.strip()
        for ln in f.read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]


def _ignores(pattern: str, rel: str) -> bool:
    """A glob on the relative path; "folder/" ignores everything under that folder."""
    if pattern.endswith("/"):
        return rel.startswith(pattern) or fnmatch.fnmatch(rel, pattern + "*")
    return fnmatch.fnmatch(rel, pattern)


def discover(root: Path) -> tuple[list[Path], list[Path]]:
    """(supported files, unsupported files) under root, skipping hidden and ignored paths."""
    patterns = _ignored_patterns(root)
    files: list[Path] = []
    unsupported: list[Path] = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if any(_ignores(pat, rel.as_posix()) for pat in patterns):
            continue
        (files if p.suffix.lower() in SUPPORTED else unsupported).append(p)
    return files, unsupported


class Ingestor:
    def __init__(
        self,
        *,
        index: KnowledgeIndex,
        embedder: Embedder,
        detector: LanguageDetector,
        chunker: Chunker,
        options: LoadOptions,
        embed_batch: int = 16,
        write_batch: int = 256,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.detector = detector
        self.chunker = chunker
        self.options = options
        self.embed_batch = max(1, embed_batch)
        self.write_batch = max(1, write_batch)

    # -- public operations --------------------------------------------------------------------
    def sync(
        self, root: Path, *, progress: Progress | None = None, control: JobControl | None = None
    ) -> SyncReport:
        control = control or JobControl()
        root = root.resolve()
        if not root.is_dir():
            raise IngestError(f"{root} is not a folder")
        t0 = time.perf_counter()
        report = SyncReport()
        self.index.collect_garbage()
        files, unsupported = discover(root)
        for p in unsupported:
            report.skipped.append(
                {"file": p.relative_to(root).as_posix(), "reason": f"unsupported type {p.suffix}"}
            )
        failed_files: set[str] = set()
        docs: list[SourceDocument] = []
        # a file whose bytes (and the settings that shape its documents) are those of its last
        # completed sync is not loaded again: its documents are unchanged (a 10,000-product
        # catalog re-synced unchanged costs one hash of the file, not 10,000 rendered products)
        current = self.index.hashes()
        facts_current = self.index.facts_current()
        unchanged_ids: list[str] = []
        loaded: dict[str, tuple[str, list[str]]] = {}  # meta key -> (file digest, doc ids)
        for p in files:
            control.check(report)
            rel = p.relative_to(root).as_posix()
            key, digest = f"file:{rel}|{p}", self._file_digest(p)
            ids = self._unchanged_file(key, digest, current) if facts_current else None
            if ids is not None:
                unchanged_ids.extend(ids)
                continue
            try:
                got = load_file(p, rel, self.options)
            except IngestError as exc:
                report.skipped.append({"file": rel, "reason": str(exc)})
                failed_files.add(str(p))
                continue
            docs.extend(got)
            if digest is not None:
                loaded[key] = (digest, [d.doc_id for d in got])
        self._apply(docs, report, progress, control)
        report.unchanged.extend(unchanged_ids)
        self._record(loaded)
        seen = {d.doc_id for d in docs} | set(unchanged_ids)
        present = {str(f) for f in files}
        # delete documents that came from this folder and are gone (not those that failed)
        for info in self.index.documents():
            src = Path(info.source)
            if info.doc_id in seen or str(src) in failed_files:
                continue
            if src.is_relative_to(root) and (not src.exists() or str(src) in present):
                self.index.delete_document(info.doc_id)
                report.removed.append(info.doc_id)
        self.index.set_meta("root", str(root))
        report.seconds = time.perf_counter() - t0
        log.info("sync %s: %s", root, report.summary())
        return report

    def add(
        self,
        paths: Iterable[Path],
        *,
        root: Path | None = None,
        progress: Progress | None = None,
        control: JobControl | None = None,
    ) -> SyncReport:
        control = control or JobControl()
        t0 = time.perf_counter()
        report = SyncReport()
        stored = self.index.get_meta("root")
        base = root or (Path(stored) if stored else None)
        docs: list[SourceDocument] = []
        loaded: dict[str, tuple[str, list[str]]] = {}
        for p in paths:
            control.check(report)
            p = p.resolve()
            rel = (
                p.relative_to(base.resolve()).as_posix()
                if base is not None and p.is_relative_to(base.resolve())
                else p.name
            )
            try:
                if not p.is_file():
                    raise IngestError(f"{p.name}: no such file")
                digest = self._file_digest(p)
                got = load_file(p, rel, self.options)
            except IngestError as exc:
                report.skipped.append({"file": str(p), "reason": str(exc)})
                continue
            docs.extend(got)
            if digest is not None:
                loaded[f"file:{rel}|{p}"] = (digest, [d.doc_id for d in got])
        self._apply(docs, report, progress, control)
        self._record(loaded)
        report.seconds = time.perf_counter() - t0
        return report

    def remove(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents by id; a catalog file's id removes all of its products."""
        removed: list[str] = []
        known = {d.doc_id for d in self.index.documents()}
        for doc_id in doc_ids:
            targets = [d for d in known if d == doc_id or d.startswith(doc_id + "#")]
            if not targets:
                self.index.delete_document(doc_id)  # raises NotFound with a clear message
            for t in targets:
                self.index.delete_document(t)
                removed.append(t)
        return removed

    def reindex(self, root: Path, *, progress: Progress | None = None) -> SyncReport:
        """Rebuild from scratch (e.g. after switching embedding model)."""
        self.index.reset()
        return self.sync(root, progress=progress)

    # -- internals ----------------------------------------------------------------------------
    def _file_digest(self, path: Path) -> str | None:
        """The file's bytes and everything that shapes the documents loaded from it (None for
        a file too large to load or unreadable: loading it gives the reason)."""
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if self.options.max_bytes is not None and size > self.options.max_bytes:
            return None
        h = hashlib.sha256()
        try:
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return None
        h.update(
            json.dumps(
                [
                    asdict(self.options),
                    self.chunker.signature,
                    self.embedder.name,
                    loader_version(),
                ],
                sort_keys=True,
                default=str,
            ).encode()
        )
        return h.hexdigest()

    def _record(self, loaded: dict[str, tuple[str, list[str]]]) -> None:
        """Remember, per file, its digest and documents once they are all written."""
        if loaded:
            self.index.set_metas(
                {k: json.dumps({"digest": d, "docs": ids}) for k, (d, ids) in loaded.items()}
            )

    def _unchanged_file(
        self, key: str, digest: str | None, current: dict[str, str]
    ) -> list[str] | None:
        """The documents of a file unchanged since its last completed sync, all still indexed;
        None when it must be loaded."""
        raw = self.index.get_meta(key) if digest is not None else None
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("digest") != digest:
            return None
        ids = record.get("docs")
        if not isinstance(ids, list):
            return None
        if not ids or not all(isinstance(i, str) and i in current for i in ids):
            return None
        return ids

    def doc_hash(self, doc: SourceDocument) -> str:
        payload = json.dumps(
            [
                doc.title,
                doc.text,
                doc.doc_type,
                doc.language,
                list(doc.markets),
                doc.extra,
                self.chunker.signature,
                self.embedder.name,
            ],
            sort_keys=True,
            ensure_ascii=False,
        )
        return content_hash(payload)

    def _apply(
        self,
        docs: list[SourceDocument],
        report: SyncReport,
        progress: Progress | None,
        control: JobControl,
    ) -> None:
        current = self.index.hashes()
        todo: list[tuple[SourceDocument, str]] = []
        unchanged: list[SourceDocument] = []
        for d in docs:
            h = self.doc_hash(d)
            if current.get(d.doc_id) == h:
                report.unchanged.append(d.doc_id)
                unchanged.append(d)
            else:
                todo.append((d, h))
        catalog = self._catalog_names(docs)
        recompile = [] if self.index.facts_current() else unchanged
        total = len(todo) + len(recompile)
        for i, doc in enumerate(recompile):  # the fact compiler changed: facts only
            if progress:
                progress("embedding", i, total)
            facts = self._facts(doc, catalog)
            report.facts_embedded += len(facts)
            self.index.replace_facts(
                doc.doc_id, facts, self._embed([f.text for f in facts], report, control)
            )
        # documents are embedded and written in groups of about `write_batch` texts: full
        # embedder batches and one vector-store write per group (a 10,000-product catalog is
        # not 10,000 small writes); each group is written atomically, so a crash leaves every
        # document wholly old or wholly new
        group: list[tuple[SourceDocument, list[Chunk], list[Fact]]] = []
        done = len(recompile)
        for doc, h in todo:
            group.append((doc, self._chunks(doc, h), self._facts(doc, catalog)))
            if sum(len(ch) + len(fa) for _, ch, fa in group) >= self.write_batch:
                if progress:
                    progress("embedding", done, total)
                self._write(group, current, report, control)
                done += len(group)
                group = []
        if group:
            if progress:
                progress("embedding", done, total)
            self._write(group, current, report, control)
        if progress:
            progress("embedding", total, total)
        # every indexed document's facts are now this compiler's (a partial `add` is not enough)
        if not self.index.facts_current() and {d.doc_id for d in docs} >= {
            info.doc_id for info in self.index.documents()
        }:
            self.index.mark_facts_current()

    def _write(
        self,
        group: list[tuple[SourceDocument, list[Chunk], list[Fact]]],
        current: dict[str, str],
        report: SyncReport,
        control: JobControl,
    ) -> None:
        texts = [
            t
            for _, chunks, facts in group
            for t in [c.text for c in chunks] + [f.text for f in facts]
        ]
        vectors = self._embed(texts, report, control)
        items = []
        at = 0
        for _, chunks, facts in group:
            n, m = len(chunks), len(facts)
            items.append((chunks, vectors[at : at + n], facts, vectors[at + n : at + n + m]))
            at += n + m
        self.index.replace_documents(items)
        for doc, chunks, facts in group:
            # sentences are screened again when a reply is built (rag.knowledge.context); here
            # the seller learns that some text of the document will never be used
            flagged = sum(1 for sent in sentences("\n" + doc.text) if instructs(sent))
            if flagged:
                log.warning(
                    "%s: %d sentence(s) give the assistant orders; never used", doc.doc_id, flagged
                )
                report.flagged.append({"doc_id": doc.doc_id, "sentences": flagged})
            report.chunks_embedded += len(chunks)
            report.facts_embedded += len(facts)
            (report.updated if doc.doc_id in current else report.added).append(doc.doc_id)

    def _embed(
        self, texts: list[str], report: SyncReport, control: JobControl
    ) -> list[list[float]]:
        vectors: list[list[float]] = []
        with background():  # shoppers' questions go first at the embedder
            for b in range(0, len(texts), self.embed_batch):
                control.check(report)  # the document keeps its old version
                vectors.extend(self.embedder.embed_documents(texts[b : b + self.embed_batch]))
        return vectors

    def _catalog_names(self, docs: list[SourceDocument]) -> tuple[str, ...]:
        """Product titles of the store (this batch and what is indexed), so that a policy
        sentence naming a product is scoped to it."""
        names = {d.title for d in docs if d.doc_type == "product"}
        names |= {d.title for d in self.index.documents() if d.doc_type == "product"}
        return tuple(sorted(names))

    def _facts(self, doc: SourceDocument, catalog: tuple[str, ...]) -> list[Fact]:
        """The document compiled into facts; an HTML page's tables are read from its markup. A
        document that declares no language gets the detected one (as its chunks do), so a
        shopper who reads it is quoted it and one who does not gets it translated."""
        if doc.language in ("", "und"):
            lang, _ = self.detector.detect(doc.text[:4000])
            doc = replace(doc, language=lang)
        html = None
        src = Path(doc.source)
        if src.suffix.lower() in (".html", ".htm") and src.is_file():
            html = src.read_text(encoding="utf-8", errors="replace")
        try:
            return compile_facts(doc, html=html, catalog_names=catalog)
        except Exception:  # a compiler bug must not cost the document its chunks
            log.exception("%s: facts could not be compiled", doc.doc_id)
            return []

    def _chunks(self, doc: SourceDocument, h: str) -> list[Chunk]:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        pieces = self.chunker.split(doc.title, doc.text)
        out: list[Chunk] = []
        for piece in pieces:
            lang = doc.language
            if lang == "und":
                lang, _ = self.detector.detect(piece.text)
            out.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}::{h[:16]}::{piece.position}",
                    doc_id=doc.doc_id,
                    text=piece.text,
                    source=doc.source,
                    title=doc.title,
                    doc_type=doc.doc_type,
                    language=lang,
                    markets=doc.markets,
                    content_hash=h,
                    ingested_at=now,
                    embedding_model=self.embedder.name,
                    position=piece.position,
                    extra=doc.extra,
                )
            )
        return out
