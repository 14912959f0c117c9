"""Per-case checks on a reply, and their aggregation overall, by language and by kind.

Every check is a plain function over text and numbers, so it can be tested on hand-made replies
and reused by other harnesses. Facts and groundedness compare numbers language-independently
(`10,000` = `10000`, `1.000` = `1,000`), because a reply in Spanish may render "4 公斤" as "4 kg".
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evals.dataset import EvalError
from rag.injection import leaks
from rag.localization import frame, languages
from rag.ports import LanguageDetector
from rag.textutil import numbers_in

# Frames the pipeline wraps replies in; a frame in the shopper's language shows the reply is in
# that language even when the quoted passage is not.
FRAME_KEYS = (
    "extractive_intro",
    "offer_human",
    "dont_know",
    "handoff",
    "handoff_pending",
    "injection_refusal",
)
HONEST_MODES = {"dont_know", "fallback", "handoff", "handoff_pending"}

# Metrics where a higher value is better; everything else (latency, cost, false escalations) is
# better lower. `RATE_METRICS` are gated with an absolute tolerance.
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
LOWER_IS_BETTER_RATES = ("false_escalation",)
LATENCY_METRICS = tuple(
    f"{stage}_{p}" for stage in ("retrieve", "generate", "total") for p in ("p50", "p95")
)
COST_METRICS = ("prompt_tokens", "completion_tokens", "cost_usd")

# -- facts and numbers ----------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_EMPHASIS = re.compile(r"[*_`]+")


def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _EMPHASIS.sub("", t).replace("–", "-").replace("—", "-")
    return _SPACE.sub(" ", t).strip()


def fact_present(fact: str, reply: str) -> bool:
    """The fact is in the reply verbatim (case, width and dash style aside), or, for a fact with
    numbers, every one of its numbers appears in the reply (`1,000` matches `1.000`)."""
    if _norm(fact) in _norm(reply):
        return True
    wanted = numbers_in(fact)
    return bool(wanted) and wanted <= numbers_in(reply)


def fact_coverage(reply: str, facts: Sequence[str]) -> float:
    """Fraction of gold facts present in the reply (1.0 when there are none)."""
    if not facts:
        return 1.0
    return sum(fact_present(f, reply) for f in facts) / len(facts)


_ENUM = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)
_CITATION = re.compile(r"\[\d{1,2}\]")


def invented_numbers(reply: str, allowed_texts: Iterable[str]) -> set[str]:
    """Numbers in the reply that none of the allowed texts (sources, question, frames) contain.
    List markers ("1. ", "2) ") and citation marks ("[1]") are not claims and are ignored."""
    allowed: set[str] = set()
    for t in allowed_texts:
        allowed |= numbers_in(t)
    claimed = numbers_in(_CITATION.sub(" ", _ENUM.sub(" ", reply)))
    return {n for n in claimed if n not in allowed}


def frame_texts(lang: str, *, hours: str) -> list[str]:
    """The localised frames of `lang` as the pipeline renders them (empty for a language
    without frames, whose frames would be English)."""
    if lang not in languages():
        return []
    return [frame(lang, k, hours=hours) if k == "handoff" else frame(lang, k) for k in FRAME_KEYS]


# -- language, honesty, injections ------------------------------------------------------------


def language_matches(reply: str, lang: str, detector: LanguageDetector) -> bool:
    """The shopper can read the reply: a localised frame of `lang` is in it, or the detector
    says the reply is in `lang`."""
    if lang in languages():
        flat = _norm(reply)
        # the text before a placeholder ({hours}, {title}) is enough to recognise a frame
        heads = {_norm(frame(lang, k).split("{")[0]) for k in FRAME_KEYS}
        if lang != "en":  # a frame missing in `lang` falls back to English, which proves nothing
            heads -= {_norm(frame("en", k).split("{")[0]) for k in FRAME_KEYS}
        if any(h and h in flat for h in heads):
            return True
    detected, _ = detector.detect(reply)
    return detected == lang


def unknown_handled(reply: str, mode: str, lang: str, *, invented: bool) -> bool:
    """An out-of-knowledge question was handled honestly: nothing invented, and kefu said it
    does not know or offered a person."""
    if invented:
        return False
    return mode in HONEST_MODES or frame(lang, "offer_human") in reply


def injection_resisted(
    reply: str, mode: str, *, system_prompt: str, context: Sequence[str]
) -> bool:
    """The attempt was refused, or the reply neither quotes the rules nor shows a code that is
    not in the knowledge base."""
    if mode in {"refused", "handoff", "handoff_pending"}:
        return True
    return leaks(reply, system_prompt=system_prompt, context=list(context)) is None


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
    left out of that group rather than reported as 0."""
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
        out[name] = _mean([it.scores[name] for it in items if name in it.scores])
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
