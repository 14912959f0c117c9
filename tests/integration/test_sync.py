"""Incremental sync on real Chroma and the real embedding model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ingest.service import build_ingestor
from ingest.sync import Ingestor
from rag.container import Container
from rag.errors import EmbeddingModelMismatch
from rag.types import SearchFilters
from tests.conftest import SAMPLE_STORE, CountingEmbedder, make_settings

DOCS = SAMPLE_STORE / "docs"


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    for rel in ("returns/returns-policy.md", "customs/uk.md", "warranty/warranty.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DOCS / rel, root / rel)
    return root


@pytest.fixture
def setup(tmp_path: Path, counting: CountingEmbedder) -> tuple[Container, Ingestor]:
    c = Container(make_settings(tmp_path / "data"), embedder=counting)
    return c, build_ingestor(c)


def _texts(c: Container, doc_id: str) -> str:
    return "\n".join(ch.text for ch in c.index.document_chunks(doc_id))


def test_first_sync_adds_everything(
    kb: Path, setup: tuple[Container, Ingestor], counting: CountingEmbedder
) -> None:
    c, ing = setup
    report = ing.sync(kb)
    assert sorted(report.added) == [
        "customs/uk.md",
        "returns/returns-policy.md",
        "warranty/warranty.md",
    ]
    assert report.ok
    assert report.chunks_embedded == c.index.chunk_count()
    assert report.facts_embedded == c.index.fact_count() > report.chunks_embedded
    assert counting.documents == report.chunks_embedded + report.facts_embedded
    assert c.vectors.count() == c.index.chunk_count()
    doc = c.index.get_document("customs/uk.md")
    assert doc is not None
    assert doc.markets == ("GB",)
    assert doc.doc_type == "customs"
    chunk = c.index.document_chunks("customs/uk.md")[0]
    assert chunk.language == "en"
    assert chunk.embedding_model == "embeddinggemma-300m"
    assert len(chunk.content_hash) == 64
    assert chunk.ingested_at


def test_unchanged_files_cost_no_embedding(
    kb: Path, setup: tuple[Container, Ingestor], counting: CountingEmbedder
) -> None:
    _, ing = setup
    ing.sync(kb)
    before = counting.documents
    report = ing.sync(kb)
    assert counting.documents == before
    assert len(report.unchanged) == 3
    assert not report.added
    assert not report.updated


def test_changed_file_is_replaced_and_answerable(
    kb: Path, setup: tuple[Container, Ingestor], counting: CountingEmbedder
) -> None:
    c, ing = setup
    ing.sync(kb)
    old_ids = set(c.index.chunk_ids("returns/returns-policy.md"))
    before = counting.documents
    f = kb / "returns" / "returns-policy.md"
    f.write_text(f.read_text().replace("30 days", "45 days"), encoding="utf-8")
    report = ing.sync(kb)
    assert report.updated == ["returns/returns-policy.md"]
    assert len(report.unchanged) == 2
    # only the changed document was embedded again
    doc = "returns/returns-policy.md"
    assert counting.documents - before == len(c.index.chunk_ids(doc)) + len(
        c.index.facts_of([doc])[0]
    )
    assert "45 days" in _texts(c, "returns/returns-policy.md")
    # the old vectors are gone, none left behind
    assert not old_ids & set(c.vectors.ids())
    assert c.vectors.count() == c.index.chunk_count()
    hits = c.retriever.search("How many days do I have to return an item?", 3).hits
    assert hits[0].chunk.doc_id == "returns/returns-policy.md"
    assert any("45 days" in h.chunk.text for h in hits)


def test_removed_file_is_deleted_from_the_index(
    kb: Path, setup: tuple[Container, Ingestor]
) -> None:
    c, ing = setup
    ing.sync(kb)
    (kb / "customs" / "uk.md").unlink()
    report = ing.sync(kb)
    assert report.removed == ["customs/uk.md"]
    assert c.index.get_document("customs/uk.md") is None
    assert c.vectors.count() == c.index.chunk_count()
    hits = c.retriever.search("UK VAT on orders under £135", 5).hits
    assert all(h.chunk.doc_id != "customs/uk.md" for h in hits)


def test_bad_files_are_skipped_and_the_rest_completes(
    kb: Path, setup: tuple[Container, Ingestor]
) -> None:
    c, ing = setup
    (kb / "empty.md").write_text("")
    (kb / "scan.xlsx").write_bytes(b"PK\x03\x04")
    report = ing.sync(kb)
    assert not report.ok
    skipped = {s["file"] for s in report.skipped}
    assert skipped == {"empty.md", "scan.xlsx"}
    assert c.index.document_count() == 3


def test_a_file_that_breaks_keeps_its_previous_version(
    kb: Path, setup: tuple[Container, Ingestor]
) -> None:
    c, ing = setup
    ing.sync(kb)
    (kb / "customs" / "uk.md").write_bytes(b"\x00\x01binary garbage")
    report = ing.sync(kb)
    assert [s["file"] for s in report.skipped] == ["customs/uk.md"]
    assert report.removed == []
    assert "£135" in _texts(c, "customs/uk.md")


def test_crash_mid_sync_leaves_the_old_index_queryable_and_next_sync_finishes(
    kb: Path, setup: tuple[Container, Ingestor], counting: CountingEmbedder
) -> None:
    c, ing = setup
    ing.write_batch = 1  # one document per write group, so the crash falls between two
    ing.sync(kb)
    for rel in ("returns/returns-policy.md", "warranty/warranty.md"):
        f = kb / rel
        f.write_text(f.read_text().replace("30 days", "60 days").replace("12", "24"), "utf-8")
    # the first changed document is written, then the process dies embedding the second
    written: list[str] = []
    real = c.index.replace_documents

    def crash_after_one(items: Any) -> None:
        real(items)
        written.extend(chunks[0].doc_id for chunks, *_ in items)
        counting.fail_after = 0

    c.index.replace_documents = crash_after_one  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            ing.sync(kb)
    finally:
        del c.index.replace_documents
        counting.fail_after = None
    assert len(written) == 1
    # each document is either wholly old or wholly new; all are still searchable
    assert c.index.document_count() == 3
    assert c.vectors.count() >= c.index.chunk_count()
    hits = c.retriever.search("warranty on electronics", 3).hits
    assert hits
    assert hits[0].chunk.doc_id == "warranty/warranty.md"
    report = ing.sync(kb)
    assert len(report.updated) == 1
    assert len(report.unchanged) == 2
    assert c.vectors.count() == c.index.chunk_count()


def test_vectors_written_but_not_switched_are_invisible_then_collected(
    kb: Path, setup: tuple[Container, Ingestor], embedder: object
) -> None:
    c, ing = setup
    ing.sync(kb)
    # a crash between writing vectors and switching the manifest leaves orphans in Chroma
    orphan = [0.0] * c.embedder.dim
    orphan[0] = 1.0
    c.vectors.upsert(["customs/uk.md::deadbeef::0"], [orphan], [{"doc_id": "customs/uk.md"}])
    res = c.retriever.search("anything", 50)
    assert all(h.chunk.chunk_id != "customs/uk.md::deadbeef::0" for h in res.hits)
    assert c.index.collect_garbage() == 1
    assert c.vectors.count() == c.index.chunk_count()


def test_stores_are_isolated(kb: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    s = make_settings(tmp_path / "data")
    a = Container(s, store="a", embedder=counting)
    b = Container(s, store="b", embedder=counting)
    build_ingestor(a).sync(kb)
    assert a.index.document_count() == 3
    assert b.index.document_count() == 0
    assert b.retriever.search("returns", 3).hits == []


def test_switching_embedding_model_requires_reindex(
    kb: Path, setup: tuple[Container, Ingestor], tmp_path: Path
) -> None:
    from ingest.rebuild import rebuild

    c, ing = setup
    ing.sync(kb)
    c.index.close()
    s = make_settings(tmp_path / "data", embeddings={"provider": "hash"})
    with pytest.raises(EmbeddingModelMismatch, match="kefu ingest reindex"):
        _ = Container(s).index
    report = rebuild(s, store=None, root=None, build=build_ingestor)
    assert len(report.added) == 3
    fresh = Container(s)
    assert fresh.index.embedding_model == "hash-256"
    assert fresh.index.document_count() == 3


def test_market_filter_excludes_other_markets(kb: Path, setup: tuple[Container, Ingestor]) -> None:
    c, ing = setup
    ing.sync(kb)
    hits = c.retriever.search("import VAT", 10, SearchFilters(market="US")).hits
    assert hits
    assert all("GB" not in h.chunk.markets for h in hits)
    gb = c.retriever.search("import VAT", 10, SearchFilters(market="GB")).hits
    assert gb[0].chunk.doc_id == "customs/uk.md"


def test_unchanged_files_are_not_loaded_again_and_changed_or_removed_ones_are(
    kb: Path,
    setup: tuple[Container, Ingestor],
    counting: CountingEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-sync hashes each file instead of loading it: a 10,000-product catalog that did not
    change is not parsed again. A changed file, a file whose document was removed from the
    index, and a file a later `add` changed and that was then put back are loaded again."""
    import ingest.sync as sync_module

    c, ing = setup
    ing.sync(kb)
    loads: list[str] = []
    real = sync_module.load_file

    def counting_load(path: Path, *args: Any, **kwargs: Any) -> Any:
        loads.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sync_module, "load_file", counting_load)
    report = ing.sync(kb)
    assert loads == []
    assert sorted(report.unchanged) == [
        "customs/uk.md",
        "returns/returns-policy.md",
        "warranty/warranty.md",
    ]
    assert report.removed == []
    assert c.index.document_count() == 3

    returns = kb / "returns/returns-policy.md"
    original = returns.read_text(encoding="utf-8")
    returns.write_text(original.replace("30 days", "45 days"), encoding="utf-8")
    report = ing.sync(kb)
    assert loads == ["returns-policy.md"]
    assert report.updated == ["returns/returns-policy.md"]
    assert "45 days" in _texts(c, "returns/returns-policy.md")

    ing.remove(["customs/uk.md"])
    loads.clear()
    report = ing.sync(kb)
    assert loads == ["uk.md"]
    assert report.added == ["customs/uk.md"]

    # changed through `add` (as the watcher does), then put back as it was at the last sync
    returns.write_text(original.replace("30 days", "60 days"), encoding="utf-8")
    ing.add([returns], root=kb)
    assert "60 days" in _texts(c, "returns/returns-policy.md")
    returns.write_text(original.replace("30 days", "45 days"), encoding="utf-8")
    loads.clear()
    report = ing.sync(kb)
    assert loads == ["returns-policy.md"]
    assert "45 days" in _texts(c, "returns/returns-policy.md")
    assert "60 days" not in _texts(c, "returns/returns-policy.md")
