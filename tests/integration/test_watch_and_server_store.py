"""The watcher makes an edit searchable within seconds; Chroma in client/server mode works."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.service import build_ingestor
from ingest.watch import watch_folder
from rag.container import Container
from tests.conftest import SAMPLE_STORE, CountingEmbedder, make_settings
from tests.doubles.chroma_server import chroma_server, free_port


def test_watch_makes_an_edit_searchable_within_seconds(
    tmp_path: Path, counting: CountingEmbedder
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "hours.md").write_text("# Support hours\nWe answer chat from 9:00 to 18:00.\n", "utf-8")
    c = Container(make_settings(tmp_path / "data"), embedder=counting)
    ing = build_ingestor(c)
    ing.sync(kb)
    stop = threading.Event()
    syncs: list[int] = []
    t = threading.Thread(
        target=watch_folder,
        args=(kb, lambda: syncs.append(ing.sync(kb).chunks_embedded)),
        kwargs={"debounce_s": 0.3, "stop": stop},
        daemon=True,
    )
    t.start()
    try:
        time.sleep(0.5)
        (kb / "hours.md").write_text(
            "# Support hours\nWe answer chat from 8:00 to 22:00.\n", "utf-8"
        )
        deadline = time.monotonic() + 30
        found = False
        # the new chunks are searchable before the sync returns (its facts come after them):
        # wait for both
        while time.monotonic() < deadline and not (found and syncs):
            time.sleep(0.2)
            chunks = c.index.document_chunks("hours.md")
            found = any("22:00" in ch.text for ch in chunks)
        assert found, "the edit was not indexed within 30 s"
        assert syncs
        assert syncs[0] > 0
    finally:
        stop.set()
        t.join(timeout=10)
    assert not t.is_alive()


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[int]:
    with chroma_server(tmp_path / "chroma-server") as (port, _):
        yield port


def test_chroma_client_server_mode(chroma: int, tmp_path: Path, counting: CountingEmbedder) -> None:
    kb = tmp_path / "kb"
    (kb / "customs").mkdir(parents=True)
    shutil.copy(SAMPLE_STORE / "docs" / "customs" / "japan.md", kb / "customs" / "japan.md")
    s = make_settings(tmp_path / "data", chroma={"mode": "http", "port": chroma})
    c = Container(s, embedder=counting)
    report = build_ingestor(c).sync(kb)
    assert report.added == ["customs/japan.md"]
    hits = c.retriever.search("日本の消費税はいくらですか", 3).hits
    assert hits[0].chunk.doc_id == "customs/japan.md"
    # a second client (another server process, say) sees the same collection
    other = Container(s, embedder=counting)
    assert other.vectors.count() == c.index.chunk_count()


def test_store_down_is_a_clear_error(tmp_path: Path, counting: CountingEmbedder) -> None:
    from rag.errors import StoreUnavailable

    s = make_settings(tmp_path / "data", chroma={"mode": "http", "port": free_port()})
    with pytest.raises(StoreUnavailable, match="cannot open Chroma"):
        _ = Container(s, embedder=counting).vectors
