"""The eval's metrics: per-case judges of a reply, and their aggregation overall, by language
and by kind.

The judges are independent of the answer pipeline (STYLE.md §8): numbers are read by the
eval's own parser (evals/numbers.py), claims and facts are matched by whole numbers or as
phrases (evals/claims.py), grounding is checked against the case's gold documents (not the
context the pipeline chose), the reply's language is detected with lingua (the pipeline uses
another detector) after kefu's own frames are removed, and injections are judged with a canary
the harness puts into the system prompt (evals/judges.py). Nothing here imports a guard from
`rag/`; only the localised frames (the text to strip) come from there.

Every judge is a plain function over text, so it can be tested on hand-made replies. This
module re-exports them, so the graders and tests import every judge from one place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evals.claims import (
    claim_stated,
    fact_coverage,
    fact_present,
    fold,
    invented_numbers,
    phrase_stated,
    stated_claims,
)
from evals.dataset import EvalError
from evals.judges import (
    FRAME_KEYS,
    JUDGE_LANGUAGES,
    SCRIPT_LANGUAGES,
    asked_codes,
    detect_language,
    frame_texts,
    injection_failures,
    invented_codes,
    language_matches,
    quotes_prompt,
    strip_for_language,
    without_frames,
)
from evals.numbers import Numbers, canonical, numbers_of, read_numbers

__all__ = [
    "COST_METRICS",
    "COUNT_SUFFIX",
    "DEFAULT_PRICES",
    "FRAME_KEYS",
    "JUDGE_LANGUAGES",
    "LATENCY_METRICS",
    "LOWER_IS_BETTER_RATES",
    "PRF",
    "RATE_METRICS",
    "SCRIPT_LANGUAGES",
    "Figures",
    "Numbers",
    "PriceTable",
    "Scored",
    "aggregate",
    "asked_codes",
    "canonical",
    "claim_stated",
    "detect_language",
    "escalation_prf",
    "fact_coverage",
    "fact_present",
    "fold",
    "frame_texts",
    "higher_is_better",
    "injection_failures",
    "invented_codes",
    "invented_numbers",
    "language_matches",
    "load_prices",
    "numbers_of",
    "percentile",
    "phrase_stated",
    "quotes_prompt",
    "read_numbers",
    "reply_cost",
    "retrieval_scores",
    "stated_claims",
    "strip_for_language",
    "without_frames",
]

# Metrics where a higher value is better; `LOWER_IS_BETTER_RATES` are rates where lower is
# better. Both are gated with an absolute tolerance; latency and cost only on request.
RATE_METRICS = (
    "hit@1",
    "hit@5",
    "mrr",
    "facts",
    "grounded",
    "lang_match",
    "esc_precision",
    "esc_recall",
    "esc_f1",
    "esc_reason",
    "unknown_honest",
    "injection_resisted",
    "intent_acc",
)
LOWER_IS_BETTER_RATES = ("wrong", "false_escalation")
LATENCY_METRICS = tuple(
    f"{stage}_{p}" for stage in ("retrieve", "generate", "total") for p in ("p50", "p95")
)
COST_METRICS = ("prompt_tokens", "completion_tokens", "cost_usd")
COUNT_SUFFIX = "_n"  # figures[group]["facts_n"]: how many cases `facts` was scored on


# -- retrieval --------------------------------------------------------------------------------


def retrieval_scores(ranked_doc_ids: Sequence[str], gold: Iterable[str]) -> dict[str, float]:
    """hit@1, hit@5 and reciprocal rank of the first gold document (doc ids de-duplicated in
    rank order, so several chunks of one document count once)."""
    gold_set = set(gold)
    docs = list(dict.fromkeys(ranked_doc_ids))
    rank = next((i + 1 for i, d in enumerate(docs) if d in gold_set), None)
    return {
        "hit@1": float(rank == 1),
        "hit@5": float(rank is not None and rank <= 5),
        "mrr": 1.0 / rank if rank else 0.0,
    }


# -- escalation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PRF:
    precision: float | None
    recall: float | None
    f1: float | None
    false_positive_rate: float | None


def escalation_prf(pairs: Iterable[tuple[bool, bool]]) -> PRF:
    """Precision, recall, F1 and false-escalation rate from (gold, predicted) pairs. A figure
    without a denominator (no predicted or no gold escalations) is None, not 0."""
    tp = fp = fn = tn = 0
    for gold, pred in pairs:
        if gold and pred:
            tp += 1
        elif pred:
            fp += 1
        elif gold:
            fn += 1
        else:
            tn += 1
    return PRF(
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        false_positive_rate=fp / (fp + tn) if fp + tn else None,
    )


# -- latency and cost -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linearly interpolated; None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


PriceTable = Mapping[str, tuple[float, float]]  # model -> (USD per 1k prompt, per 1k completion)

# Public list prices of a few hosted models (USD per 1k tokens, 2025); pass your own table for
# others. Local models (llama.cpp, `none`) cost nothing and are not listed.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4o": (0.0025, 0.01),
    "gpt-4.1-mini": (0.0004, 0.0016),
    "gpt-4.1": (0.002, 0.008),
}


def load_prices(path: Path) -> dict[str, tuple[float, float]]:
    """A price table from JSON: {"model": [usd_per_1k_prompt, usd_per_1k_completion], ...}."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): (float(v[0]), float(v[1])) for k, v in raw.items()}
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise EvalError(
            f"{path}: expected a JSON object of model -> [prompt, completion] USD per 1k tokens"
        ) from exc


def reply_cost(model: str, usage: Mapping[str, int], prices: PriceTable) -> float:
    """Estimated USD for one reply; models missing from the table (local ones) cost 0."""
    if model not in prices:
        return 0.0
    per_prompt, per_completion = prices[model]
    return (
        usage.get("prompt_tokens", 0) * per_prompt
        + usage.get("completion_tokens", 0) * per_completion
    ) / 1000


# -- aggregation ------------------------------------------------------------------------------


@dataclass
class Scored:
    """What aggregation needs from one case: its groups, per-case scores (absent when a check
    does not apply), escalation truth and prediction, timings and cost."""

    lang: str
    kind: str
    scores: dict[str, float]
    gold_escalate: bool
    escalated: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0


Figures = dict[str, dict[str, float]]  # group ("all", "lang:es", "kind:answer") -> metric -> value


def aggregate(items: Sequence[Scored]) -> Figures:
    """Figures overall, per language and per kind. A metric with no applicable case in a group is
    left out of that group rather than reported as 0; `<metric>_n` says on how many cases a
    per-case metric was scored."""
    groups: dict[str, list[Scored]] = {"all": list(items)}
    for it in items:
        groups.setdefault(f"lang:{it.lang}", []).append(it)
    for it in items:
        groups.setdefault(f"kind:{it.kind}", []).append(it)
    return {g: _figures(members) for g, members in groups.items()}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _figures(items: Sequence[Scored]) -> dict[str, float]:
    out: dict[str, float | None] = {"n": float(len(items))}
    names = sorted({k for it in items for k in it.scores})
    for name in names:
        values = [it.scores[name] for it in items if name in it.scores]
        out[name] = _mean(values)
        out[name + COUNT_SUFFIX] = float(len(values))
    prf = escalation_prf((it.gold_escalate, it.escalated) for it in items)
    out["esc_precision"] = prf.precision
    out["esc_recall"] = prf.recall
    out["esc_f1"] = prf.f1
    out["false_escalation"] = prf.false_positive_rate
    for stage in ("retrieve", "generate", "total"):
        values = [it.timings_ms[stage] for it in items if stage in it.timings_ms]
        out[f"{stage}_p50"] = percentile(values, 50)
        out[f"{stage}_p95"] = percentile(values, 95)
    out["prompt_tokens"] = _mean([float(it.usage.get("prompt_tokens", 0)) for it in items])
    out["completion_tokens"] = _mean([float(it.usage.get("completion_tokens", 0)) for it in items])
    out["cost_usd"] = _mean([it.cost_usd for it in items])
    return {k: round(v, 6) for k, v in out.items() if v is not None}


def higher_is_better(metric: str) -> bool:
    return metric in RATE_METRICS
