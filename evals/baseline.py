"""Accepted figures and the regression gate.

`evals/baselines.json` holds one profile per way of running the evals (slice and LLM backend,
e.g. `fast/none`), each with the accepted figures per group (`all`, `lang:es`, `kind:unknown`)
and metric. A run is compared with its own profile; quality rates may drop by at most an absolute
tolerance. Latency and cost are recorded but only gated when a relative tolerance is given,
because they depend on the machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.dataset import EvalError
from evals.metrics import (
    COST_METRICS,
    LATENCY_METRICS,
    LOWER_IS_BETTER_RATES,
    RATE_METRICS,
    Figures,
)
from evals.runner import EvalReport

DEFAULT_BASELINE = Path(__file__).resolve().parent / "baselines.json"
# set-up that shapes the figures; a difference from the baseline's is printed with the verdict
COMPARABLE = (
    "dataset_digest",
    "slice",
    "limit",
    "llm",
    "model",
    "prompt_version",
    "embedding_model",
    "kb_digest",
)


@dataclass(frozen=True)
class Tolerance:
    rate: float = 0.05  # absolute drop allowed in a quality rate (0..1)
    latency: float | None = None  # relative rise allowed in p50/p95 (0.5 = 50 %); None: not gated
    cost: float | None = None  # relative rise allowed in tokens and cost per reply


@dataclass(frozen=True)
class Regression:
    group: str
    metric: str
    baseline: float
    current: float
    allowed: float  # the worst value that would still have passed

    def __str__(self) -> str:
        return (
            f"{self.group} {self.metric}: {self.baseline:.3f} -> {self.current:.3f} "
            f"(limit {self.allowed:.3f})"
        )


@dataclass
class Baseline:
    figures: Figures
    config: dict[str, Any] = field(default_factory=dict)
    accepted_at: str = ""

    @classmethod
    def from_report(cls, report: EvalReport) -> Baseline:
        return cls(
            figures={g: dict(m) for g, m in report.figures.items()},
            config={k: report.config.get(k) for k in (*COMPARABLE, "kb", "cases")},
            accepted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )


def profile_name(config: Mapping[str, Any]) -> str:
    """`fast/none`, `full/llamacpp`, `full/llamacpp/limit20`: one baseline per way of running."""
    name = f"{config.get('slice', 'full')}/{config.get('llm', 'none')}"
    return f"{name}/limit{config['limit']}" if config.get("limit") else name


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"version": 1, "profiles": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path} is not a baselines file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise EvalError(f"{path} is not a baselines file (no 'profiles')")
    return data


def load_baseline(path: Path, profile: str) -> Baseline | None:
    """The accepted figures of `profile`, or None when none were accepted yet."""
    entry = _read(path)["profiles"].get(profile)
    if entry is None:
        return None
    return Baseline(
        figures=entry["figures"],
        config=entry.get("config", {}),
        accepted_at=entry.get("accepted_at", ""),
    )


def save_baseline(path: Path, profile: str, baseline: Baseline) -> None:
    """Write `baseline` as `profile`, keeping the other profiles."""
    data = _read(path)
    data["profiles"][profile] = {
        "accepted_at": baseline.accepted_at,
        "config": baseline.config,
        "figures": baseline.figures,
    }
    data["profiles"] = dict(sorted(data["profiles"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def compare(
    report: EvalReport, baseline: Baseline, tolerance: float | Tolerance = 0.05
) -> list[Regression]:
    """Every figure of the run that is worse than the baseline by more than the tolerance.
    Groups or metrics missing from either side are not compared."""
    tol = tolerance if isinstance(tolerance, Tolerance) else Tolerance(rate=tolerance)
    out: list[Regression] = []
    for group, accepted in baseline.figures.items():
        current = report.figures.get(group)
        if current is None:
            continue
        for metric, base in accepted.items():
            if metric not in current:
                continue
            now = current[metric]
            limit = _limit(metric, base, tol)
            if limit is None:
                continue
            worse = now < limit if metric in RATE_METRICS else now > limit
            if worse:
                out.append(Regression(group, metric, base, now, limit))
    return sorted(out, key=lambda r: (r.group != "all", r.group, r.metric))


def _limit(metric: str, base: float, tol: Tolerance) -> float | None:
    eps = 1e-9  # figures are rounded to 6 places
    if metric in RATE_METRICS:
        return base - tol.rate - eps
    if metric in LOWER_IS_BETTER_RATES:
        return base + tol.rate + eps
    if metric in LATENCY_METRICS and tol.latency is not None:
        return base * (1 + tol.latency) + 1.0  # and at least a millisecond
    if metric in COST_METRICS and tol.cost is not None:
        return base * (1 + tol.cost) + eps
    return None


def config_drift(run: Mapping[str, Any], accepted: Mapping[str, Any]) -> list[str]:
    """Differences between the run's set-up and the baseline's that make figures less
    comparable (a changed dataset, another model or knowledge base)."""
    return [
        f"{k}: baseline {accepted.get(k)!r}, this run {run.get(k)!r}"
        for k in COMPARABLE
        if k in accepted and accepted.get(k) != run.get(k)
    ]
