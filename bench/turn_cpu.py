"""Per-reply CPU before the LLM, beside the raw engine doing the least a reply needs.

    .venv/bin/python -m bench.turn_cpu [--data-dir DIR] [--store NAME] [--questions 60]
                                       [--mode query|document]

kefu's side: one turn through the pipeline with no chat model (understand: language, market,
the message vector, the emotion check; route: injection signatures, small talk; draft:
retrieval, the FAQ match, fact or sentence selection), the process CPU time of each turn
(`time.process_time`, every thread counted) and its wall time. The raw engine: one
`embed_query` of the same question and one Chroma query for the same number of candidates on
the same index. Issue #15's target: kefu ≤ 1.5× the raw engine.

The questions are the golden set's answerable ones (evals/datasets/golden.jsonl), each asked
once in a new session after a few warm-up turns (model and example matrices loaded). The store
is copied first (a store is opened read-write), so a store given with --data-dir is never
changed. `--mode` is the classifiers' embedding mode: document (as in code: the message is
embedded twice, a document vector for the classifiers and a query vector for retrieval) or
query (one vector per turn, shared with retrieval). No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import chromadb
import numpy as np

from ingest.service import build_ingestor
from rag.answer.pipeline import AnswerPipeline, AskRequest
from rag.container import Container
from rag.guardrails.escalation import EmotionScorer, EscalationPolicy
from rag.guardrails.knn import Mode
from rag.guardrails.smalltalk import SmallTalkClassifier
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "evals" / "datasets" / "golden.jsonl"
TARGET = 1.5
WARM_UP = ["hello", "Do you ship to Canada?", "Wo ist meine Bestellung?", "退货政策是什么？"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def questions(n: int) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if r["kind"] == "answer"][:n]


def pipeline(c: Container, mode: Mode) -> AnswerPipeline:
    cache = c.settings.models_dir / "cache"
    return AnswerPipeline(
        retriever=c.retriever,
        detector=c.detector,
        counter=c.tokens,
        conversations=c.conversations,
        llm=None,
        settings=c.settings.answer,
        llm_settings=c.settings.llm,
        escalation=EscalationPolicy(EmotionScorer(c.embedder, cache_dir=cache, mode=mode)),
        small_talk=SmallTalkClassifier(c.embedder, cache_dir=cache, mode=mode),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, help="an ingested data dir (copied, not changed)")
    ap.add_argument("--store", default="default")
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--mode", choices=["query", "document"], default="document")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data = Path(tmp.name) / "data"
    if args.data_dir:
        shutil.copytree(args.data_dir, data)
    settings = Settings(data_dir=data, store=args.store, llm={"provider": "none"}, _env_file=None)  # type: ignore[call-arg, arg-type]
    c = Container(settings)
    if c.index.document_count() == 0:
        build_ingestor(c).sync(ROOT / "examples" / "sample_store")
    p = pipeline(c, args.mode)
    k = max(c.settings.retrieval.candidates, c.settings.retrieval.k)
    chroma_dir = c.generation_dir / "chroma"
    same = chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)  # as kefu's
    collection = chromadb.PersistentClient(path=str(chroma_dir), settings=same).get_collection(
        "kefu"
    )

    def turn(q: dict[str, str], session: str) -> dict[str, float]:
        req = AskRequest(message=q["question"], session_id=session, country=q.get("country"))
        phases: dict[str, float] = {}
        c0 = time.process_time()
        ctx = p.understanding.understand(req)
        phases["understand"] = time.process_time() - c0
        c1 = time.process_time()
        route = p.router.route(ctx)
        phases["route"] = time.process_time() - c1
        c2 = time.process_time()
        drafting = p.stages[route].draft(ctx)
        try:
            while True:
                next(drafting)
        except StopIteration:
            pass
        phases["draft"] = time.process_time() - c2
        phases["total"] = time.process_time() - c0
        return phases

    for i, w in enumerate(WARM_UP):  # models and example matrices loaded, caches primed
        turn({"question": w}, f"warm-{i}")
        collection.query(
            query_embeddings=np.asarray([c.embedder.embed_query(w)], dtype=np.float32), n_results=k
        )

    asked = questions(args.questions)
    kefu: list[dict[str, float]] = []
    kefu_wall: list[float] = []
    raw_cpu: list[float] = []
    raw_wall: list[float] = []
    for i, q in enumerate(asked):
        w0 = time.perf_counter()
        kefu.append(turn(q, f"bench-{i}"))
        kefu_wall.append(time.perf_counter() - w0)

        def raw(text: str = q["question"]) -> None:
            vector = c.embedder.embed_query(text)
            collection.query(query_embeddings=np.asarray([vector], dtype=np.float32), n_results=k)

        cpu, wall = timed(raw)
        raw_cpu.append(cpu)
        raw_wall.append(wall)

    def line(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return f"{name:<44} {statistics.median(ms):>9.1f} {pct(ms, 0.95):>9.1f}"

    print(
        f"store {args.store} ({c.index.document_count()} documents, {collection.count()} "
        f"vectors), embedder {c.embedder.name}, classifiers in {args.mode} mode, "
        f"{len(asked)} questions, {k} candidates"
    )
    print(f"{'per reply, before the LLM (ms)':<44} {'median':>9} {'p95':>9}")
    for phase in ("understand", "route", "draft"):
        print(line(f"  kefu {phase} CPU", [t[phase] for t in kefu]))
    print(line("kefu turn CPU (understand + route + draft)", [t["total"] for t in kefu]))
    print(line("kefu turn wall", kefu_wall))
    print(line("raw engine CPU (embed_query + Chroma query)", raw_cpu))
    print(line("raw engine wall", raw_wall))
    totals = [t["total"] for t in kefu]
    ratio_med = statistics.median(totals) / statistics.median(raw_cpu)
    ratio_p95 = pct(totals, 0.95) / pct(raw_cpu, 0.95)
    print(
        f"ratio kefu / raw CPU: median {ratio_med:.2f}x, p95 {ratio_p95:.2f}x "
        f"(#15 target <= {TARGET}x: {'met' if ratio_med <= TARGET else 'not met'} at the median)"
    )
    c.index.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
