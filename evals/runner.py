"""Runs golden cases through the answer pipeline and scores every reply; resumable.

Each case gets a fresh session; earlier user turns of a multi-turn case are replayed into that
session first, so follow-ups, repeated failures and handoffs behave as they would live.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.canary import CANARY_LINE, CanaryChatModel, new_canary
from evals.checkpoint import checkpoint_canary, checkpoint_matches, read_checkpoint
from evals.dataset import Case
from evals.grading import HARNESS_VERSION, Grader, KbTexts, grade, rescore
from evals.metrics import PriceTable, reply_cost
from evals.results import CaseResult, EvalReport
from rag.answer.pipeline import AnswerPipeline, AskRequest, Reply
from rag.answer.turn import standalone_query
from rag.knowledge.retrieval import Retriever
from rag.types import SearchFilters

__all__ = [
    "CANARY_LINE",
    "HARNESS_VERSION",
    "CanaryChatModel",
    "CaseResult",
    "EvalReport",
    "Grader",
    "KbTexts",
    "checkpoint_canary",
    "checkpoint_matches",
    "grade",
    "new_canary",
    "pipeline_grader",
    "rescore",
    "run_case",
    "run_eval",
]

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total), as in ingest
# chunks searched for the retrieval metrics; several chunks of one document count once, so
# hit@5 means "in the first five documents" and MRR is computed over the first ten documents
RETRIEVAL_CHUNKS = 20
RANKED_DOCS = 10


def run_case(
    case: Case,
    pipeline: AnswerPipeline,
    retriever: Retriever,
    grader: Grader,
    *,
    prices: PriceTable | None = None,
) -> CaseResult:
    """Ask the case's question (after replaying its history) and grade the reply."""
    session = f"eval-{case.id}-{uuid.uuid4().hex[:8]}"
    if isinstance(pipeline.llm, CanaryChatModel):
        pipeline.llm.armed = case.kind == "injection"

    def ask(message: str) -> Reply:
        return pipeline.answer(
            AskRequest(
                message=message,
                session_id=session,
                customer_id=case.customer_id,
                country=case.country,
            )
        )

    for turn in case.history:
        if turn.role == "user":
            ask(turn.content)
    reply = ask(case.question)

    filters = SearchFilters(market=reply.country)
    # the query the pipeline searched for this turn, by the pipeline's own rule
    query = standalone_query(case.question, case.history)
    res = retriever.search(query, RETRIEVAL_CHUNKS, filters)
    retrieved = list(dict.fromkeys(h.chunk.doc_id for h in res.hits))[:RANKED_DOCS]
    reason = reply.escalation.get("reason")
    result = CaseResult(
        id=case.id,
        lang=case.lang,
        kind=case.kind,
        question=case.question,
        reply=reply.reply,
        mode=reply.mode,
        language=reply.language,
        model=reply.model,
        prompt_version=reply.prompt_version,
        sources=[dict(s) for s in reply.sources],
        escalated=bool(reply.escalation.get("escalate")),
        reason=str(reason) if reason else None,
        intent=reply.intent,
        confidence=reply.confidence,
        retrieved=retrieved,
        timings_ms=dict(reply.timings_ms),
        usage=dict(reply.usage),
        cost_usd=reply_cost(reply.model, reply.usage, prices or {}),
        gold_escalate=case.kind == "escalate",
        gold_reason=case.escalation_reason,
        gold_docs=list(case.gold_docs),
        gold_facts=list(case.gold_facts),
        scores={},
    )
    return grade(result, case, grader)


def pipeline_grader(pipeline: AnswerPipeline, kb: KbTexts, *, canary: str | None = None) -> Grader:
    """The grader of a run through `pipeline`: its support hours and system prompt."""
    return Grader(
        kb=kb,
        support_hours=pipeline.settings.support_hours,
        system_prompt=pipeline.prompt.render("system"),
        canary=canary,
    )


def run_eval(
    cases: Sequence[Case],
    pipeline: AnswerPipeline,
    retriever: Retriever,
    *,
    progress: Progress | None = None,
    resume_path: Path | None = None,
    prices: PriceTable | None = None,
    config: Mapping[str, Any] | None = None,
    grader: Grader | None = None,
) -> EvalReport:
    """Run every case, grade every reply and aggregate the figures.

    Without a `grader`, gold documents are read from the retriever's index and the canary is
    `config["canary"]` (the one `CanaryChatModel` put into the pipeline's system prompt).

    With `resume_path`, each case's result is appended to that JSONL file as soon as it is
    scored, and cases already there (from an interrupted run with the same
    `config["fingerprint"]`) are not asked again.
    """
    config = dict(config or {})
    if grader is None:
        kb = KbTexts.from_index(retriever.index)
        grader = pipeline_grader(pipeline, kb, canary=config.get("canary"))
    config.setdefault("harness", HARNESS_VERSION)
    config.setdefault("canary", grader.canary)
    config.setdefault("support_hours", grader.support_hours)
    config.setdefault("system_prompt", grader.system_prompt)
    fingerprint = str(config.get("fingerprint", ""))
    done: dict[str, CaseResult] = {}
    sink = None
    if resume_path is not None:
        done = read_checkpoint(resume_path, fingerprint)
        resume_path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not resume_path.exists()
        sink = resume_path.open("a", encoding="utf-8")
        if fresh:
            header = {"fingerprint": fingerprint, "canary": config.get("canary")}
            sink.write(json.dumps(header) + "\n")
    reused = sum(1 for c in cases if c.id in done)
    config["resumed"] = reused
    config.setdefault("started_at", datetime.now(UTC).isoformat(timespec="seconds"))
    results: list[CaseResult] = []
    try:
        for i, case in enumerate(cases, 1):
            result = done.get(case.id)
            if result is None:
                result = run_case(case, pipeline, retriever, grader, prices=prices)
                if sink is not None:
                    sink.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
                    sink.flush()
            results.append(result)
            if progress is not None:
                progress("eval", i, len(cases))
    finally:
        if sink is not None:
            sink.close()
    log.info("eval: %d cases (%d resumed)", len(results), reused)
    return EvalReport.from_results(config, results)
