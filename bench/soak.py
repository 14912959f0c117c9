"""The chat server under steady load for a long while: does its memory stay flat?

    .venv/bin/python -m bench.soak [--minutes 10] [--shoppers 20] [--every 15]
                                   [--warmup-minutes 2] [--llm-delay 0.5] [--data-dir DIR]

Like bench.load, the real server (`kefu serve`, loopback only) runs in its own process over the
sample store, its model replaced by the OpenAI-compatible test endpoint answering after a fixed
delay. `--shoppers` shoppers ask over SSE, one question after another (a new session every
three questions), for `--minutes`, then stop; a reply still running at the end is abandoned.
Every `--every` seconds the server's resident memory (RSS, its process and any children) is
sampled and printed with the replies and errors so far. RSS growth is measured from the end of
the warm-up to the end of the run, against the target (under 5%). The exit status is 1 when
the growth is over the target or a reply failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.load import (
    QUESTIONS,
    Session,
    ask,
    bench_env,
    ensure_ingested,
    served,
)

TARGET_GROWTH = 0.05  # RSS growth after warm-up


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    replies: int
    errors: int


@dataclass
class Run:
    replies: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MB."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])  # kB
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                pids += [int(c) for c in children]
    return total / 1024


async def shopper(client: httpx.AsyncClient, n: int, run: Run, stop_at: float) -> None:
    asked = 0
    session: Session | None = None
    while time.monotonic() < stop_at:
        question = QUESTIONS[(n + asked) % len(QUESTIONS)]
        try:
            done = await ask(client, question, session)
        except (httpx.HTTPError, RuntimeError) as exc:
            run.errors[str(exc) or exc.__class__.__name__] += 1
            session, asked = None, 0
            await asyncio.sleep(0.5)  # a failing server is not hammered
            continue
        run.replies += 1
        asked += 1
        session = (done["session_id"], done["session_token"]) if asked % 3 else None


async def sampler(pid: int, run: Run, start: float, stop_at: float, every: float) -> None:
    while True:
        now = time.monotonic()
        s = Sample(now - start, rss_mb(pid), run.replies, sum(run.errors.values()))
        run.samples.append(s)
        print(
            f"{s.seconds:>8.0f} {s.rss_mb:>8.1f} {s.replies:>8} {s.errors:>7}",
            flush=True,
        )
        if now >= stop_at:
            return
        await asyncio.sleep(min(every, max(0.0, stop_at - now)))


async def soak(base: str, pid: int, shoppers: int, seconds: float, every: float) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=shoppers, max_keepalive_connections=shoppers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0) as client:
        start = time.monotonic()
        stop_at = start + seconds
        print(f"{'seconds':>8} {'RSS MB':>8} {'replies':>8} {'errors':>7}", flush=True)
        sampling = asyncio.create_task(sampler(pid, run, start, stop_at, every))
        tasks = [asyncio.create_task(shopper(client, n, run, stop_at)) for n in range(shoppers)]
        # bounded: replies still running shortly after the end are abandoned
        _, pending = await asyncio.wait(tasks, timeout=seconds + 30)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await sampling
    return run


def growth(samples: list[Sample], warmup_s: float) -> tuple[Sample, Sample] | None:
    """The first sample after the warm-up and the last one."""
    after = [s for s in samples if s.seconds >= warmup_s]
    return (after[0], after[-1]) if len(after) >= 2 else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the shoppers ask")
    ap.add_argument("--shoppers", type=int, default=20, help="concurrent shoppers")
    ap.add_argument("--every", type=float, default=15.0, help="seconds between RSS samples")
    ap.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="minutes before the RSS baseline (default: a fifth of the run, at most 2)",
    )
    ap.add_argument("--llm-delay", type=float, default=0.5, help="model delay before a reply")
    ap.add_argument("--data-dir", type=Path, help="an already ingested data folder")
    args = ap.parse_args()
    seconds = args.minutes * 60
    warmup_s = (
        args.warmup_minutes * 60 if args.warmup_minutes is not None else min(120.0, seconds / 5)
    )
    every = min(args.every, max(1.0, seconds / 4))
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-soak-"))
    data = args.data_dir or tmp / "data"
    env = bench_env(data)
    ensure_ingested(env, data, tmp)

    with served(env, tmp, llm_delay=args.llm_delay) as server:
        print(
            f"server ready in {server.ready_s:.1f} s (pid {server.proc.pid}); {args.shoppers} "
            f"shoppers for {args.minutes:g} min; model delay {args.llm_delay * 1000:.0f} ms; "
            f"warm-up {warmup_s:.0f} s; {os.cpu_count()} CPUs",
            flush=True,
        )
        run = asyncio.run(soak(server.base, server.proc.pid, args.shoppers, seconds, every))
        alive = server.proc.poll() is None

    errors = sum(run.errors.values())
    print(f"\nreplies {run.replies} ({run.replies / seconds:.2f}/s); errors {errors}")
    for err, k in run.errors.most_common(5):
        print(f"  error {err!r} x{k}")
    span = growth(run.samples, warmup_s)
    ok = errors == 0 and alive
    if span is None:
        print("RSS growth: too few samples after the warm-up (run longer or sample more often)")
        ok = False
    else:
        first, last = span
        g = (last.rss_mb - first.rss_mb) / first.rss_mb
        peak = max(s.rss_mb for s in run.samples)
        verdict = "ok" if g < TARGET_GROWTH else "OVER TARGET"
        print(
            f"RSS after warm-up {first.rss_mb:.1f} MB (t={first.seconds:.0f} s) -> "
            f"{last.rss_mb:.1f} MB (t={last.seconds:.0f} s): growth {g:+.1%}, "
            f"target < {TARGET_GROWTH:.0%}: {verdict}; peak {peak:.1f} MB"
        )
        ok = ok and g < TARGET_GROWTH
    if not alive:
        print("the server exited during the run")
    print(f"server log {server.log}")
    if args.data_dir is None:  # the throwaway index; the log stays for reading
        shutil.rmtree(data, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
