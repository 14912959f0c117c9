"""Shared fixtures: offline by default, real models loaded once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

# No network, no provider keys, no stray settings from the developer's shell.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for key in list(os.environ):
    if (key.startswith("KEFU_") and key != "KEFU_MODELS_DIR") or key in {
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    }:
        del os.environ[key]

from rag.container import Container  # noqa: E402
from rag.ports import ChatModel, Embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.pg import pg_dsn, pg_server  # noqa: E402, F401  (PostgreSQL fixtures)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STORE = ROOT / "examples" / "sample_store"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None, **overrides)  # type: ignore[call-arg]


class CountingEmbedder:
    """Wraps a real embedder and counts the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.documents = 0
        self.fail_after: int | None = None  # raise after this many document batches

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self.fail_after is not None:
            if self.fail_after <= 0:
                raise KeyboardInterrupt("simulated crash")
            self.fail_after -= 1
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The default embedding model (embeddinggemma-300m), loaded once."""
    from rag.container import build_embedder

    return build_embedder(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture(scope="session")
def sample_container(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[Container]:
    """The bundled sample store, ingested once with the real embedder into real Chroma."""
    from ingest.service import build_ingestor

    data = tmp_path_factory.mktemp("sample-data")
    c = Container(make_settings(data), embedder=embedder)
    report = build_ingestor(c).sync(SAMPLE_STORE)
    assert report.ok, report.skipped
    yield c
    c.index.close()


@pytest.fixture(scope="session")
def local_llm() -> ChatModel:
    """The small local model (qwen2.5-coder-0.5b, llama.cpp), loaded once."""
    from rag.container import build_chat_model

    s = Settings(_env_file=None, llm={"model": "qwen2.5-coder-0.5b"})  # type: ignore[call-arg]
    model = build_chat_model(s, counter=None)  # type: ignore[arg-type]
    assert model is not None
    return model


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, *, timeout_s: float) -> None:
    """Wait for a `kefu serve` subprocess to answer /healthz; fail with its log if it dies."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "kefu serve did not start"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)


def shipping_only_store(root: Path) -> Path:
    """A data folder whose store holds the sample shipping-zones page, ingested with the hash
    embedder (for server tests that need a store, not retrieval quality)."""
    import shutil

    from ingest.service import build_ingestor

    kb = root / "kb"
    kb.mkdir()
    shutil.copy(SAMPLE_STORE / "docs" / "shipping" / "shipping-zones.md", kb / "shipping-zones.md")
    c = Container(make_settings(root / "data", embeddings={"provider": "hash"}))
    assert build_ingestor(c).sync(kb).ok
    c.index.close()
    return root / "data"
