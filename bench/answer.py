"""Answer latency on the sample store with the local model: time to first token, total time per
reply (median, p95) and generation speed.

    .venv/bin/python -m bench.answer [--model qwen2.5-coder-1.5b] [--data-dir DIR]

With --data-dir pointing at an already ingested store the ingest step is skipped.
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
from rag.answer.pipeline import AskRequest
from rag.container import Container
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "¿Cuánto tarda el envío estándar a México?",
    "How much is the return label if I changed my mind?",
    "退货后多久能收到退款？",
    "Wie viel kostet der Expressversand nach Deutschland?",
    "Combien de temps dure la garantie sur l'électronique ?",
    "日本への配送で消費税はかかりますか？",
    "Preciso informar meu CPF para comprar?",
    "Сколько лет действует подарочная карта?",
    "هل يمكنني إلغاء طلبي؟",
    "Can I cancel my order after 5 hours?",
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data = args.data_dir or Path(tmp.name)
    settings = Settings(data_dir=data, llm={"model": args.model}, _env_file=None)  # type: ignore[call-arg, arg-type]
    c = Container(settings)
    if c.index.document_count() == 0:
        build_ingestor(c).sync(ROOT / "examples" / "sample_store")
    t0 = time.perf_counter()
    pipeline = c.pipeline
    load_s = time.perf_counter() - t0
    ttft: list[float] = []
    total: list[float] = []
    gen_rates: list[float] = []
    prompt_tokens: list[int] = []
    modes: dict[str, int] = {}
    for _ in range(args.rounds):
        for q in QUESTIONS:
            start = time.perf_counter()
            first = None
            reply = None
            for ev in pipeline.stream(AskRequest(message=q)):
                if ev.type == "token" and first is None:
                    first = time.perf_counter() - start
                if ev.type == "done":
                    reply = ev.data
            assert reply is not None
            total.append(time.perf_counter() - start)
            ttft.append(first if first is not None else total[-1])
            modes[reply.mode] = modes.get(reply.mode, 0) + 1
            if reply.usage.get("prompt_tokens"):
                prompt_tokens.append(int(reply.usage["prompt_tokens"]))
            gen_ms = reply.timings_ms.get("generate")
            if gen_ms and reply.usage.get("completion_tokens"):
                gen_rates.append(reply.usage["completion_tokens"] / (gen_ms / 1000))
    print(f"model                 {args.model} (pipeline ready in {load_s:.1f} s)")
    print(f"replies               {len(total)}  modes {modes}")
    print(
        f"time to first token   median {statistics.median(ttft):6.2f} s"
        f"   p95 {pct(ttft, 0.95):6.2f} s"
    )
    print(
        f"total per reply       median {statistics.median(total):6.2f} s"
        f"   p95 {pct(total, 0.95):6.2f} s"
    )
    if gen_rates:
        print(
            f"generation            median {statistics.median(gen_rates):6.1f} tokens/s "
            "(completion tokens over the whole generate step, retries included)"
        )
    if prompt_tokens:
        print(
            f"prompt                median {statistics.median(prompt_tokens):6.0f} tokens "
            f"over {len(prompt_tokens)} model replies (retries' prompts included)"
        )
    tmp.cleanup()


if __name__ == "__main__":
    main()
