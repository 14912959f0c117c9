"""Embedders side by side: chunks/s on the same chunks and retrieval quality on the golden set.

For each embedder (`st`: EmbeddingGemma fp32 on sentence-transformers, `onnx-int8`: its int8
ONNX Runtime export, `hash`: the test fake) the sample store is ingested by kefu's real sync
into a temporary store, the stored chunks are embedded again by the raw embedder (chunks/s),
and every answer case of the golden set slice is searched the way the eval harness scores
retrieval (`evals/runner.py`: the pipeline's standalone query, the case's market, 20 chunks,
documents de-duplicated): hit@1, hit@5 and MRR over the first 10 documents.

    .venv/bin/python -m bench.embedder                       # st and onnx-int8, fast slice
    .venv/bin/python -m bench.embedder --embedders onnx-int8 --slice full

The int8 model is exported into KEFU_MODELS_DIR on first use (`kefu models export-int8`).
Run on an idle machine: figures measured beside other work are only comparable within one run
(the embedders are timed in turn, `--rounds` times, and the best round is kept).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from evals.dataset import load_cases, select_slice
from evals.metrics import retrieval_scores
from evals.runner import RANKED_DOCS, RETRIEVAL_CHUNKS
from ingest.service import build_ingestor
from rag.answer.turn import standalone_query
from rag.container import Container
from rag.settings import EmbeddingSettings, Settings
from rag.types import SearchFilters

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "evals" / "datasets" / "golden.jsonl"
PROVIDERS = {"st": "sentence_transformers", "onnx-int8": "onnx_int8", "hash": "hash"}


def embedding_settings(choice: str) -> EmbeddingSettings:
    """The embeddings settings for a bench `--embedder` choice (env settings otherwise kept)."""
    base = Settings().embeddings
    return base.model_copy(update={"provider": PROVIDERS[choice]})


def measure(choice: str, kb: Path, slice_name: str, rounds: int) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), embeddings=embedding_settings(choice))
        c = Container(settings)
        t0 = time.perf_counter()
        embedder = c.embedder
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_ingestor(c).sync(kb)
        sync_s = time.perf_counter() - t0
        chunks = [ch.text for d in c.index.documents() for ch in c.index.document_chunks(d.doc_id)]
        raw = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            embedder.embed_documents(chunks)
            raw.append(time.perf_counter() - t0)
        cases = [
            case
            for case in select_slice(load_cases(GOLDEN), slice_name)
            if case.kind == "answer" and case.gold_docs
        ]
        scores: dict[str, list[float]] = {"hit@1": [], "hit@5": [], "mrr": []}
        latencies = []
        for case in cases:
            query = standalone_query(case.question, case.history)
            t0 = time.perf_counter()
            res = c.retriever.search(query, RETRIEVAL_CHUNKS, SearchFilters(market=case.country))
            latencies.append(time.perf_counter() - t0)
            ranked = list(dict.fromkeys(h.chunk.doc_id for h in res.hits))[:RANKED_DOCS]
            for key, value in retrieval_scores(ranked, case.gold_docs).items():
                scores[key].append(value)
        return {
            "embedder": embedder.name,
            "load_s": load_s,
            "chunks": len(chunks),
            "sync_cps": len(chunks) / sync_s,
            "raw_cps": len(chunks) / min(raw),
            "cases": len(cases),
            "search_p50_ms": 1000 * statistics.median(latencies),
            **{k: statistics.fmean(v) for k, v in scores.items()},
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedders", nargs="+", choices=list(PROVIDERS), default=["st", "onnx-int8"])
    ap.add_argument("--kb", type=Path, default=ROOT / "examples" / "sample_store")
    ap.add_argument("--slice", default="fast", help="golden-set slice (fast, full, lang:es, ...)")
    ap.add_argument("--rounds", type=int, default=1, help="raw-embedder timings (best kept)")
    args = ap.parse_args()
    rows = [measure(e, args.kb, args.slice, args.rounds) for e in args.embedders]
    print(f"knowledge base {args.kb}, golden slice {args.slice!r} (answer cases)")
    head = (
        f"{'embedder':34} {'load s':>7} {'chunks':>6} {'sync ch/s':>9} {'raw ch/s':>9} "
        f"{'cases':>5} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'search p50 ms':>13}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['embedder']!s:34} {r['load_s']:7.1f} {r['chunks']:6} {r['sync_cps']:9.2f} "
            f"{r['raw_cps']:9.2f} {r['cases']:5} {r['hit@1']:6.3f} {r['hit@5']:6.3f} "
            f"{r['mrr']:6.3f} {r['search_p50_ms']:13.1f}"
        )
    if len(rows) > 1:
        base = rows[0]
        for r in rows[1:]:
            speedup = float(r["raw_cps"]) / float(base["raw_cps"])
            d_hit = float(r["hit@5"]) - float(base["hit@5"])
            print(
                f"{r['embedder']} vs {base['embedder']}: {speedup:.2f}x raw chunks/s "
                f"(target >= 2x), hit@5 {d_hit:+.3f} (target within 0.02), "
                f"MRR {float(r['mrr']) - float(base['mrr']):+.3f}"
            )


if __name__ == "__main__":
    main()
