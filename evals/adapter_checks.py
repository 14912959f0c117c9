"""kefu's guardrail checks on public datasets: language, escalation, topic and out-of-scope.

These sets have no gold documents, so instead of whole answers this measures the decisions that
come before answering: is the shopper's language recognised, does the escalation policy hand
the right messages to a person (and leave the rest alone), does retrieval land on the right kind
of document, and is an out-of-scope question recognised as one (retrieval confidence below the
"I don't know" threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evals.adapters import AdapterRow
from evals.metrics import Figures, escalation_prf
from rag.guardrails.escalation import EscalationPolicy
from rag.knowledge.retrieval import Retriever
from rag.ports import LanguageDetector

if TYPE_CHECKING:  # the type only: ingest's chunkers are slow to import
    from ingest.sync import Progress

TOPIC_CONFIDENCE = 0.5  # as in the answer pipeline: below this a reply carries no intent


@dataclass
class RowOutcome:
    row: AdapterRow
    language: str
    escalated: bool | None = None  # None: no escalation policy
    reason: str | None = None
    confidence: float | None = None  # None: no knowledge base
    topic: str | None = None


@dataclass
class AdapterReport:
    name: str
    figures: Figures
    outcomes: list[RowOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "figures": self.figures, "notes": self.notes}


def check_rows(
    name: str,
    rows: Sequence[AdapterRow],
    *,
    detector: LanguageDetector,
    policy: EscalationPolicy | None = None,
    retriever: Retriever | None = None,
    min_confidence: float = 0.3,
    progress: Progress | None = None,
) -> AdapterReport:
    """Run each row through the language detector, the escalation policy (before answering) and,
    with a knowledge base, retrieval; aggregate overall and per dataset language."""
    outcomes: list[RowOutcome] = []
    for i, row in enumerate(rows, 1):
        lang, _ = detector.detect(row.text)
        o = RowOutcome(row=row, language=lang)
        if policy is not None:
            esc = policy.before_answer(row.text)
            o.escalated, o.reason = esc.escalate, esc.reason
        if retriever is not None:
            res = retriever.search(row.text, 5)
            o.confidence = res.confidence
            if res.hits and res.confidence >= TOPIC_CONFIDENCE:
                o.topic = res.hits[0].chunk.doc_type
        outcomes.append(o)
        if progress is not None:
            progress(name, i, len(rows))
    groups: dict[str, list[RowOutcome]] = {"all": outcomes}
    for o in outcomes:
        groups.setdefault(f"lang:{o.row.lang}", []).append(o)
    if len(groups) == 2:  # one language: the per-language group repeats "all"
        groups = {"all": outcomes}
    notes = []
    if policy is None:
        notes.append("escalation not checked: escalation is off in the settings")
    if retriever is None:
        notes.append("topic and out-of-scope not checked: pass --kb FOLDER or --store NAME")
    figures = {g: _figures(members, min_confidence) for g, members in groups.items()}
    return AdapterReport(name=name, figures=figures, outcomes=outcomes, notes=notes)


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _figures(outcomes: Sequence[RowOutcome], min_confidence: float) -> dict[str, float]:
    out: dict[str, float | None] = {"n": float(len(outcomes))}
    out["lang_acc"] = _rate([o.language in o.row.accepted_languages for o in outcomes])
    judged = [o for o in outcomes if o.escalated is not None]
    if judged:
        prf = escalation_prf((o.row.escalate, bool(o.escalated)) for o in judged)
        out["esc_precision"] = prf.precision
        out["esc_recall"] = prf.recall
        out["esc_f1"] = prf.f1
        out["false_escalation"] = prf.false_positive_rate
    scored = [o for o in outcomes if o.confidence is not None]
    if scored:
        out["topic_acc"] = _rate([o.topic in o.row.topics for o in scored if o.row.topics])
        oos = [o for o in scored if o.row.out_of_scope]
        if oos:
            out["oos_dont_know"] = _rate([(o.confidence or 0.0) < min_confidence for o in oos])
            out["in_scope_dont_know"] = _rate(
                [(o.confidence or 0.0) < min_confidence for o in scored if not o.row.out_of_scope]
            )
    return {k: round(v, 4) for k, v in out.items() if v is not None}
