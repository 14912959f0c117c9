"""The knowledge index of one store: vectors in Chroma, the manifest and lexical index in SQLite.

Readers only ever see *active* chunks: the chunk ids listed in the SQLite manifest. A document
is replaced by first writing its new vectors (under new, content-addressed ids), then switching
the manifest to them in one SQLite transaction, then deleting the old vectors. A crash at any
point leaves the previous version active; leftovers are collected by `collect_garbage`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rag.errors import EmbeddingModelMismatch, NotFound
from rag.knowledge.facts import FACTS_VERSION, Fact, fact_from_dict, fact_to_dict
from rag.ports import Metadata, VectorStore
from rag.sqlite_db import open_sqlite
from rag.textutil import lexical_tokens
from rag.types import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    language TEXT NOT NULL,
    markets TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    embedding_model TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(chunk_id UNINDEXED, lex);
CREATE TABLE IF NOT EXISTS facts (
    doc_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    data TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (doc_id, position)
);
"""


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    source: str
    title: str
    doc_type: str
    language: str
    markets: tuple[str, ...]
    content_hash: str
    chunk_count: int
    ingested_at: str
    embedding_model: str


def read_meta(db_path: Path, key: str) -> str | None:
    """Read one manifest setting without opening the index (no model check)."""
    if not db_path.exists():
        return None
    con = sqlite3.connect(db_path)
    try:
        row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    except sqlite3.Error:
        row = None
    finally:
        con.close()
    return None if row is None else str(row[0])


def market_keys(markets: Sequence[str]) -> dict[str, bool]:
    return {f"mk_{m.upper()}": True for m in markets}


class KnowledgeIndex:
    def __init__(self, *, db_path: Path, vectors: VectorStore, embedding_model: str) -> None:
        self._db_path = db_path
        self._vectors = vectors
        self.embedding_model = embedding_model
        self._lock = threading.RLock()
        self._db = open_sqlite(db_path, SCHEMA, what="manifest")
        self._check_model()

    # -- identity -----------------------------------------------------------------------------
    def _check_model(self) -> None:
        stored = self.get_meta("embedding_model")
        col_model = self._vectors.get_metadata().get("embedding_model")
        if stored is None and self.document_count() == 0:
            self.set_meta("embedding_model", self.embedding_model)
            if col_model != self.embedding_model:
                self._vectors.reset({"embedding_model": self.embedding_model})
            return
        if stored != self.embedding_model or (col_model and col_model != self.embedding_model):
            raise EmbeddingModelMismatch(
                f"this store was indexed with {stored!r} but the configured embedding model is "
                f"{self.embedding_model!r}; run `kefu ingest reindex` to rebuild it"
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def set_metas(self, values: dict[str, str]) -> None:
        """Several meta values in one transaction."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items())
            )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writes -------------------------------------------------------------------------------
    def replace_document(
        self,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        facts: Sequence[Fact] = (),
        fact_vectors: Sequence[Sequence[float]] = (),
    ) -> None:
        """Make `chunks` (and the document's compiled `facts`) its active version, atomically
        for readers."""
        self.replace_documents([(chunks, vectors, facts, fact_vectors)])

    def replace_documents(
        self,
        items: Sequence[
            tuple[
                Sequence[Chunk],
                Sequence[Sequence[float]],
                Sequence[Fact],
                Sequence[Sequence[float]],
            ]
        ],
    ) -> None:
        """Make each item's chunks (and its document's compiled facts) that document's active
        version: one vector-store write and one transaction for all of them, so readers see
        every document of the group old or every one new."""
        if any(not chunks for chunks, *_ in items):
            raise ValueError("a document needs at least one chunk")
        if not items:
            return
        old_ids = {chunks[0].doc_id: self.chunk_ids(chunks[0].doc_id) for chunks, *_ in items}
        all_chunks = [c for chunks, *_ in items for c in chunks]
        self._vectors.upsert(
            [c.chunk_id for c in all_chunks],
            [v for _, vectors, *_ in items for v in vectors],
            [self._vector_metadata(c) for c in all_chunks],
        )
        with self._tx() as db:
            for chunks, _, facts, fact_vectors in items:
                first = chunks[0]
                doc_id = first.doc_id
                self._delete_rows(db, doc_id)
                db.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc_id,
                        first.source,
                        first.title,
                        first.doc_type,
                        first.language,
                        ",".join(first.markets),
                        first.content_hash,
                        len(chunks),
                        first.ingested_at,
                        first.embedding_model,
                    ),
                )
                db.executemany(
                    "INSERT INTO chunks(chunk_id, doc_id, position, text, extra) "
                    "VALUES (?,?,?,?,?)",
                    [(c.chunk_id, doc_id, c.position, c.text, json.dumps(c.extra)) for c in chunks],
                )
                db.executemany(
                    "INSERT INTO chunks_fts(chunk_id, lex) VALUES (?, ?)",
                    [
                        (c.chunk_id, " ".join(lexical_tokens(c.title + "\n" + c.text)))
                        for c in chunks
                    ],
                )
                self._write_facts(db, doc_id, facts, fact_vectors)
            self._bump_version(db)
        kept = {c.chunk_id for c in all_chunks}
        stale = sorted({i for ids in old_ids.values() for i in ids} - kept)
        if stale:
            self._vectors.delete(stale)

    def replace_facts(
        self, doc_id: str, facts: Sequence[Fact], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Recompile one document's facts without touching its chunks (after the fact
        compiler changed: FACTS_VERSION)."""
        with self._tx() as db:
            db.execute("DELETE FROM facts WHERE doc_id=?", (doc_id,))
            self._write_facts(db, doc_id, facts, vectors)
            self._bump_version(db)

    @staticmethod
    def _write_facts(
        db: sqlite3.Connection,
        doc_id: str,
        facts: Sequence[Fact],
        vectors: Sequence[Sequence[float]],
    ) -> None:
        if len(facts) != len(vectors):
            raise ValueError("one vector per fact")
        db.executemany(
            "INSERT INTO facts(doc_id, position, data, vector) VALUES (?,?,?,?)",
            [
                (
                    doc_id,
                    i,
                    json.dumps(fact_to_dict(f), ensure_ascii=False),
                    np.asarray(v, dtype=np.float32).tobytes(),
                )
                for i, (f, v) in enumerate(zip(facts, vectors, strict=True))
            ],
        )

    def facts_current(self) -> bool:
        """Whether the stored facts were compiled by this version of the fact compiler."""
        return self.get_meta("facts_version") == FACTS_VERSION

    def mark_facts_current(self) -> None:
        self.set_meta("facts_version", FACTS_VERSION)

    def delete_document(self, doc_id: str) -> None:
        old_ids = self.chunk_ids(doc_id)
        if not old_ids and self.get_document(doc_id) is None:
            raise NotFound(f"no document {doc_id!r} in this store")
        with self._tx() as db:
            self._delete_rows(db, doc_id)
            self._bump_version(db)
        self._vectors.delete(old_ids)

    def reset(self) -> None:
        """Drop every document and vector (before a rebuild with another embedding model)."""
        with self._tx() as db:
            db.execute("DELETE FROM chunks_fts")
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM facts")
            db.execute("DELETE FROM documents")
            db.execute("DELETE FROM meta WHERE key='embedding_model'")
            self._bump_version(db)
        self._vectors.reset({"embedding_model": self.embedding_model})
        self.set_meta("embedding_model", self.embedding_model)

    def collect_garbage(self) -> int:
        """Delete vectors that no active chunk references (leftovers of an interrupted write).
        Every active chunk has its vector (vectors are written first), so there are none to look
        for when the counts agree: a 100,000-chunk store is not listed on every sync."""
        if self._vectors.count() <= self.chunk_count():
            return 0
        active = set(self.all_chunk_ids())
        orphans = [i for i in self._vectors.ids() if i not in active]
        if orphans:
            self._vectors.delete(orphans)
        return len(orphans)

    def _delete_rows(self, db: sqlite3.Connection, doc_id: str) -> None:
        db.execute(
            "DELETE FROM chunks_fts WHERE chunk_id IN (SELECT chunk_id FROM chunks WHERE doc_id=?)",
            (doc_id,),
        )
        db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM facts WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def _bump_version(self, db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('version', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    @staticmethod
    def _vector_metadata(c: Chunk) -> Metadata:
        return {
            "doc_id": c.doc_id,
            "doc_type": c.doc_type,
            "language": c.language,
            "content_hash": c.content_hash,
            "embedding_model": c.embedding_model,
            **market_keys(c.markets),
        }

    # -- reads --------------------------------------------------------------------------------
    def version(self) -> int:
        v = self.get_meta("version")
        return int(v) if v else 0

    def chunk_ids(self, doc_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY position", (doc_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def all_chunk_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT chunk_id FROM chunks").fetchall()]

    def document_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def chunk_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def documents(self) -> list[DocumentInfo]:
        rows = self._db.execute("SELECT * FROM documents ORDER BY doc_id").fetchall()
        return [self._doc(r) for r in rows]

    def get_document(self, doc_id: str) -> DocumentInfo | None:
        row = self._db.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return None if row is None else self._doc(row)

    def hashes(self) -> dict[str, str]:
        rows = self._db.execute("SELECT doc_id, content_hash FROM documents").fetchall()
        return {r[0]: r[1] for r in rows}

    @staticmethod
    def _doc(r: Sequence[object]) -> DocumentInfo:
        return DocumentInfo(
            doc_id=str(r[0]),
            source=str(r[1]),
            title=str(r[2]),
            doc_type=str(r[3]),
            language=str(r[4]),
            markets=tuple(m for m in str(r[5]).split(",") if m),
            content_hash=str(r[6]),
            chunk_count=int(str(r[7])),
            ingested_at=str(r[8]),
            embedding_model=str(r[9]),
        )

    def chunks_by_id(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Active chunks among `ids` (inactive or unknown ids are left out)."""
        if not ids:
            return {}
        out: dict[str, Chunk] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                "SELECT c.chunk_id, c.doc_id, c.position, c.text, c.extra, d.source, d.title, "
                "d.doc_type, d.language, d.markets, d.content_hash, d.ingested_at, "
                "d.embedding_model FROM chunks c JOIN documents d USING(doc_id) "
                f"WHERE c.chunk_id IN ({marks})",
                part,
            ).fetchall()
            for r in rows:
                out[r[0]] = Chunk(
                    chunk_id=r[0],
                    doc_id=r[1],
                    position=r[2],
                    text=r[3],
                    extra=json.loads(r[4]),
                    source=r[5],
                    title=r[6],
                    doc_type=r[7],
                    language=r[8],
                    markets=tuple(m for m in r[9].split(",") if m),
                    content_hash=r[10],
                    ingested_at=r[11],
                    embedding_model=r[12],
                )
        return out

    def facts_of(self, doc_ids: Sequence[str]) -> tuple[list[Fact], npt.NDArray[np.float32]]:
        """The active facts of these documents, in document then reading order, and their
        vectors as the rows of one matrix."""
        if not doc_ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        marks = ",".join("?" * len(doc_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT doc_id, data, vector FROM facts WHERE doc_id IN ({marks}) "
                "ORDER BY doc_id, position",
                list(doc_ids),
            ).fetchall()
        order = {d: i for i, d in enumerate(doc_ids)}
        rows.sort(key=lambda r: order[r[0]])
        facts = [fact_from_dict(json.loads(r[1])) for r in rows]
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return facts, np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])

    def fact_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM facts").fetchone()[0])

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        ids = self.chunk_ids(doc_id)
        by_id = self.chunks_by_id(ids)
        return [by_id[i] for i in ids if i in by_id]

    def lexical_search(self, terms: Sequence[str], k: int) -> list[str]:
        """Chunk ids ranked by BM25 over script-aware tokens (words, SKUs, numbers, CJK bigrams)."""
        toks = sorted({t for term in terms for t in lexical_tokens(term)})
        if not toks:
            return []
        q = " OR ".join('"' + t.replace('"', '""') + '"' for t in toks)
        try:
            rows = self._db.execute(
                "SELECT chunk_id FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts) LIMIT ?",
                (q, k),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [r[0] for r in rows]

    def dense_search(
        self, vector: Sequence[float], k: int, where: dict[str, object] | None
    ) -> list[tuple[str, float]]:
        return [(m.id, 1.0 - m.distance) for m in self._vectors.query(vector, k, where)]

    def vectors_of(self, ids: Sequence[str]) -> dict[str, list[float]]:
        return self._vectors.get_vectors(ids)

    def close(self) -> None:
        with self._lock:  # not while another thread is inside a locked statement
            self._db.close()
