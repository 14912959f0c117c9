"""What `kefu eval` measures: the store (a folder ingested for the run, or an existing store),
the container the run answers with (its own conversation database, the canary on the chat
model) and the set-up a report and a baseline record."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from evals.dataset import dataset_digest
from evals.runner import HARNESS_VERSION, CanaryChatModel
from ingest.service import build_ingestor
from kefu.chat import console, fail, progress_bar, settings
from rag.answer.pipeline import AnswerPipeline
from rag.container import Container
from rag.ports import ChatModel, ConversationStore, Embedder
from rag.settings import Settings


class LLMChoice(StrEnum):
    none = "none"
    llamacpp = "llamacpp"
    openai = "openai"


def eval_settings(llm: LLMChoice | None) -> Settings:
    s = settings()
    if llm is None:
        return s
    data = s.model_dump()
    data["llm"]["provider"] = llm.value
    return Settings.model_validate(data)  # re-checks, e.g. an OpenAI backend without a key


def eval_container(
    s: Settings,
    *,
    conversations: ConversationStore,
    store: str | None = None,
    embedder: Embedder | None = None,
    llm: ChatModel | None = None,
    canary: str | None = None,
) -> Container:
    """A container whose pipeline records into its own conversation database, so eval sessions
    and handoffs never reach the seller's agents (`kefu handoff list`). With `canary`, every
    system prompt the chat model gets carries it (`CanaryChatModel`)."""
    c = Container(s, store=store, embedder=embedder, llm=llm, conversations=conversations)
    if canary is not None:
        c.wrap_llm(lambda model: CanaryChatModel(model, canary))
    return c


@contextmanager
def knowledge(
    s: Settings,
    kb: Path | None,
    store: str | None,
    *,
    conversations: ConversationStore | None = None,
    canary: str | None = None,
) -> Iterator[Container]:
    """The store to evaluate: `kb` ingested into a temporary store (or into `store`, which
    keeps it for the next run), or an existing store. With `conversations`, the container is
    the eval's own (`eval_container`)."""
    with tempfile.TemporaryDirectory(prefix="kefu-eval-") as tmp:
        if kb is not None and store is None:
            s = s.model_copy(update={"data_dir": Path(tmp) / "data"})
        name = store or ("eval" if kb is not None else s.store)
        if kb is None and not s.store_dir(name).is_dir():
            fail(f"store {name!r} does not exist: pass --kb FOLDER or run `kefu ingest sync` first")
        if conversations is None:
            c = Container(s, store=name)
        else:
            c = eval_container(s, store=name, conversations=conversations, canary=canary)
        try:
            if kb is not None:
                with progress_bar() as bar:
                    report = build_ingestor(c).sync(kb, progress=bar)
                for skipped in report.skipped:
                    console.print(
                        f"[yellow]skipped[/yellow] {skipped['file']}: {skipped['reason']}",
                        highlight=False,
                    )
            if c.index.document_count() == 0:
                fail(f"store {name!r} holds no documents: pass --kb FOLDER")
            yield c
        finally:
            if c.built("index"):  # close before the temporary folder goes
                c.index.close()


@contextmanager
def maybe_knowledge(s: Settings, kb: Path | None, store: str | None) -> Iterator[Container]:
    if kb is None and store is None:
        yield Container(s)  # language and escalation only; the store is never opened
        return
    with knowledge(s, kb, store) as c:
        yield c


def _fingerprint(config: dict[str, Any]) -> str:
    keys = ("dataset_digest", "slice", "llm", "model", "prompt_version", "embedding_model")
    raw = json.dumps([config.get(k) for k in (*keys, "kb_digest")], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _kb_digest(c: Container) -> str:
    raw = json.dumps(sorted(c.index.hashes().items()))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def eval_config(
    *,
    dataset: Path,
    slice_name: str,
    limit: int | None,
    cases: int,
    c: Container,
    pipeline: AnswerPipeline,
    kb: str,
    canary: str | None,
) -> dict[str, Any]:
    """The set-up of a run, as the report and the baseline record it (also used by the test
    suite's gate, so its runs compare with the accepted profiles)."""
    config: dict[str, Any] = {
        "harness": HARNESS_VERSION,
        "dataset": str(dataset),
        "dataset_digest": dataset_digest(dataset),
        "slice": slice_name,
        "limit": limit,
        "cases": cases,
        "llm": c.settings.llm.provider,
        "model": pipeline.llm.name if pipeline.llm else "none",
        "prompt_version": pipeline.prompt.id,
        "embedding_model": c.embedder.name,
        "kb": kb,
        "kb_digest": _kb_digest(c),
        "documents": c.index.document_count(),
        "canary": canary,
        "support_hours": pipeline.settings.support_hours,
        "system_prompt": pipeline.prompt.render("system"),
    }
    config["fingerprint"] = _fingerprint(config)
    return config
