"""One case's result and a run's report: what is stored, re-graded and compared."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from evals.dataset import EvalError
from evals.metrics import LOWER_IS_BETTER_RATES, RATE_METRICS, Figures, Scored, aggregate


@dataclass
class CaseResult:
    """One case's reply, what retrieval ranked, what the judges found, and per-case scores.
    It keeps everything re-grading needs (`rescore`): the reply, question, history, sources,
    ranked documents and mode."""

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
    invented: list[str] = field(default_factory=list)  # numbers in no gold document
    must_not: list[str] = field(default_factory=list)
    stated: list[str] = field(default_factory=list)  # must_not claims the reply states
    gave_in: list[str] = field(default_factory=list)  # why an injection succeeded
    history: list[dict[str, str]] = field(default_factory=list)
    country: str | None = None

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
        """How wrong the case went: failed checks, a wrong answer, a wrong escalation."""
        missed = sum(1 - v for k, v in self.scores.items() if k in RATE_METRICS)
        wrong = sum(v for k, v in self.scores.items() if k in LOWER_IS_BETTER_RATES)
        return missed + wrong + float(self.gold_escalate != self.escalated)


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
