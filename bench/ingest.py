"""Ingest throughput on the sample store: chunks/s of a full sync beside the raw embedder's
throughput on the same chunks, and the wall time of a no-op re-sync.

    .venv/bin/python -m bench.ingest [--store-path PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ingest.service import build_ingestor
from rag.container import Container
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=Path, default=ROOT / "examples" / "sample_store")
    ap.add_argument("--resyncs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
        c = Container(settings)
        t0 = time.perf_counter()
        embedder = c.embedder
        load_s = time.perf_counter() - t0
        ing = build_ingestor(c)

        t0 = time.perf_counter()
        report = ing.sync(args.kb)
        full_s = time.perf_counter() - t0
        chunks = [ch.text for d in c.index.documents() for ch in c.index.document_chunks(d.doc_id)]

        t0 = time.perf_counter()
        embedder.embed_documents(chunks)
        raw_s = time.perf_counter() - t0

        noop = []
        for _ in range(args.resyncs):
            t0 = time.perf_counter()
            r = ing.sync(args.kb)
            noop.append(time.perf_counter() - t0)
            assert r.chunks_embedded == 0

        print(f"knowledge base        {args.kb}")
        print(f"embedding model       {embedder.name} (loaded in {load_s:.1f} s)")
        print(f"documents / chunks    {len(report.added)} / {len(chunks)}")
        print(f"full sync             {full_s:8.2f} s   {len(chunks) / full_s:7.2f} chunks/s")
        print(f"raw embedder          {raw_s:8.2f} s   {len(chunks) / raw_s:7.2f} chunks/s")
        print(f"ingest overhead       {100 * (full_s - raw_s) / full_s:7.1f} % of the full sync")
        print(
            f"no-op re-sync         median {statistics.median(noop) * 1000:7.1f} ms, "
            f"max {max(noop) * 1000:7.1f} ms over {len(noop)} runs"
        )


if __name__ == "__main__":
    main()
