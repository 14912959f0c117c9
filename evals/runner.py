"""Runs golden cases through the answer pipeline and scores every reply; resumable.

Each case gets a fresh session; earlier user turns of a multi-turn case are replayed into that
session first, so follow-ups, repeated failures and handoffs behave as they would live.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.dataset import Case, EvalError
from evals.metrics import (
    RATE_METRICS,
    Figures,
    PriceTable,
    Scored,
    aggregate,
    fact_coverage,
    frame_texts,
    injection_resisted,
    invented_numbers,
    language_matches,
    reply_cost,
    retrieval_scores,
    unknown_handled,
)
from rag.answer import AnswerPipeline, AskRequest, Reply
from rag.retrieval import Retriever
from rag.textutil import lexical_tokens
from rag.types import SearchFilters

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total), as in ingest
# chunks searched for the retrieval metrics; several chunks of one document count once, so
# hit@5 means "in the first five documents" and MRR is computed over the first ten documents
RETRIEVAL_CHUNKS = 20
RANKED_DOCS = 10


@dataclass
class CaseResult:
    """One case's reply, what retrieval ranked, and its per-case scores."""

    id: str
    lang: str
    kind: str
    question: str
    reply: str
    mode: str
    language: str
    model: str
    prompt_version: str
    sources: list[dict[str, Any]]
    escalated: bool
    reason: str | None
    intent: str | None
    confidence: float
    retrieved: list[str]
    timings_ms: dict[str, float]
    usage: dict[str, int]
    cost_usd: float
    gold_escalate: bool
    gold_reason: str | None
    gold_docs: list[str]
    gold_facts: list[str]
    scores: dict[str, float]
    invented: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def scored(self) -> Scored:
        return Scored(
            lang=self.lang,
            kind=self.kind,
            scores=self.scores,
            gold_escalate=self.gold_escalate,
            escalated=self.escalated,
            timings_ms=self.timings_ms,
            usage=self.usage,
            cost_usd=self.cost_usd,
        )

    def badness(self) -> float:
        """How wrong the case went: failed checks plus a wrong escalation decision."""
        missed = sum(1 - v for k, v in self.scores.items() if k in RATE_METRICS)
        return missed + float(self.gold_escalate != self.escalated)


@dataclass
class EvalReport:
    config: dict[str, Any]
    results: list[CaseResult]
    figures: Figures

    @classmethod
    def from_results(cls, config: Mapping[str, Any], results: Sequence[CaseResult]) -> EvalReport:
        return cls(dict(config), list(results), aggregate([r.scored() for r in results]))

    def worst(self, n: int = 10) -> list[CaseResult]:
        bad = [r for r in self.results if r.badness() > 0]
        return sorted(bad, key=lambda r: (-r.badness(), r.id))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "figures": self.figures,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalReport:
        results = [CaseResult.from_dict(r) for r in d.get("results", [])]
        return cls(dict(d.get("config", {})), results, dict(d["figures"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> EvalReport:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise EvalError(f"cannot read report {path}: {exc.strerror}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalError(f"{path} is not an eval report ({exc})") from exc


def standalone_query(case: Case) -> str:
    """The query the pipeline searches for this turn: a short follow-up ("and to canada?") is
    searched together with the previous question (mirrors AnswerPipeline)."""
    prev = next((t.content for t in reversed(case.history) if t.role == "user"), None)
    if prev and len(lexical_tokens(case.question)) <= 6:
        return f"{prev}\n{case.question}"
    return case.question


def run_case(
    case: Case,
    pipeline: AnswerPipeline,
    retriever: Retriever,
    *,
    prices: PriceTable | None = None,
) -> CaseResult:
    """Ask the case's question (after replaying its history) and score the reply."""
    session = f"eval-{case.id}-{uuid.uuid4().hex[:8]}"

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
    res = retriever.search(standalone_query(case), RETRIEVAL_CHUNKS, filters)
    retrieved = list(dict.fromkeys(h.chunk.doc_id for h in res.hits))[:RANKED_DOCS]
    source_texts = [
        chunk.text
        for doc_id in dict.fromkeys(str(s["doc_id"]) for s in reply.sources)
        for chunk in retriever.index.document_chunks(doc_id)
    ]
    hours = pipeline.settings.support_hours
    user_turns = [t.content for t in case.history if t.role == "user"]
    allowed = [
        *source_texts,
        *(str(s.get("title", "")) for s in reply.sources),
        case.question,
        *user_turns,
        *frame_texts(reply.language, hours=hours),
        *frame_texts(case.lang, hours=hours),
    ]
    invented = invented_numbers(reply.reply, allowed)
    escalated = bool(reply.escalation.get("escalate"))
    reason = reply.escalation.get("reason")

    scores: dict[str, float] = {
        "grounded": float(not invented),
        "lang_match": float(language_matches(reply.reply, case.lang, pipeline.detector)),
    }
    if case.kind == "answer":
        if case.gold_docs:
            scores.update(retrieval_scores(retrieved, case.gold_docs))
        scores["facts"] = float(fact_coverage(reply.reply, case.gold_facts) == 1.0)
    elif case.kind == "unknown":
        honest = unknown_handled(reply.reply, reply.mode, case.lang, invented=bool(invented))
        scores["unknown_honest"] = float(honest)
    elif case.kind == "injection":
        resisted = injection_resisted(
            reply.reply,
            reply.mode,
            system_prompt=pipeline.prompt.render("system"),
            context=[*source_texts, case.question],
        )
        scores["injection_resisted"] = float(resisted)
    if case.intent is not None:
        scores["intent_acc"] = float(reply.intent == case.intent)
    gold_escalate = case.kind == "escalate"
    if gold_escalate and escalated and case.escalation_reason:
        scores["esc_reason"] = float(reason == case.escalation_reason)

    return CaseResult(
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
        escalated=escalated,
        reason=str(reason) if reason else None,
        intent=reply.intent,
        confidence=reply.confidence,
        retrieved=retrieved,
        timings_ms=dict(reply.timings_ms),
        usage=dict(reply.usage),
        cost_usd=reply_cost(reply.model, reply.usage, prices or {}),
        gold_escalate=gold_escalate,
        gold_reason=case.escalation_reason,
        gold_docs=list(case.gold_docs),
        gold_facts=list(case.gold_facts),
        scores=scores,
        invented=sorted(invented),
    )


# -- resume -----------------------------------------------------------------------------------


def _checkpoint_lines(path: Path) -> tuple[str | None, list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    fp = header.get("fingerprint") if isinstance(header, dict) else None
    return (str(fp) if fp is not None else None), lines[1:]


def checkpoint_matches(path: Path, fingerprint: str) -> bool:
    """Whether the checkpoint at `path` (if any) was written by a run with this fingerprint."""
    return not path.exists() or _checkpoint_lines(path)[0] == fingerprint


def _read_checkpoint(path: Path, fingerprint: str) -> dict[str, CaseResult]:
    """Results of an interrupted run with the same fingerprint (a half-written last line, from
    a crash mid-write, is ignored)."""
    if not path.exists():
        return {}
    found, lines = _checkpoint_lines(path)
    if found != fingerprint:
        raise EvalError(
            f"{path} holds results of a different run (dataset, slice, model or store differ); "
            "delete it or pass --fresh"
        )
    done: dict[str, CaseResult] = {}
    for line in lines:
        try:
            r = CaseResult.from_dict(json.loads(line))
        except (ValueError, TypeError):
            continue
        done[r.id] = r
    return done


def run_eval(
    cases: Sequence[Case],
    pipeline: AnswerPipeline,
    retriever: Retriever,
    *,
    progress: Progress | None = None,
    resume_path: Path | None = None,
    prices: PriceTable | None = None,
    config: Mapping[str, Any] | None = None,
) -> EvalReport:
    """Run every case and aggregate the figures.

    With `resume_path`, each case's result is appended to that JSONL file as soon as it is
    scored, and cases already there (from an interrupted run with the same
    `config["fingerprint"]`) are not asked again.
    """
    config = dict(config or {})
    fingerprint = str(config.get("fingerprint", ""))
    done: dict[str, CaseResult] = {}
    sink = None
    if resume_path is not None:
        done = _read_checkpoint(resume_path, fingerprint)
        resume_path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not resume_path.exists()
        sink = resume_path.open("a", encoding="utf-8")
        if fresh:
            sink.write(json.dumps({"fingerprint": fingerprint}) + "\n")
    reused = sum(1 for c in cases if c.id in done)
    config["resumed"] = reused
    config.setdefault("started_at", datetime.now(UTC).isoformat(timespec="seconds"))
    results: list[CaseResult] = []
    try:
        for i, case in enumerate(cases, 1):
            result = done.get(case.id)
            if result is None:
                result = run_case(case, pipeline, retriever, prices=prices)
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
