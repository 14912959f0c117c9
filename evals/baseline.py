"""Accepted figures and the regression gate.

`evals/baselines.json` holds one profile per way of running the evals (slice and LLM backend,
e.g. `fast/none`), each with the accepted figures per group (`all`, `lang:es`, `kind:unknown`)
and metric. A run is compared with its own profile: the golden set and knowledge base must be the
accepted ones, every gated group must hold as many cases, and no rate may be worse by more than
the profile's tolerance. Latency and cost are recorded but only gated when a relative tolerance
is given, because they depend on the machine.
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
    COUNT_SUFFIX,
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


# A group with fewer cases is reported but not gated: one case would swing its rates by 20 % or
# more. `n` itself is compared for every gated group.
MIN_GATED_N = 5
# Figures are rounded to 6 places, so two rounded values differ from the exact difference by
# less than 1e-6; a case that flips moves a rate by at least 1/n (n <= a few hundred).
EPS = 1e-6
# Set-up that must be the same as the accepted one: a changed golden set or knowledge base fails
# the gate until its figures are accepted (the model or prompt is what the gate judges, so a
# change there is only a note).
GATED_CONFIG = ("dataset_digest", "kb_digest")


@dataclass(frozen=True)
class Tolerance:
    rate: float = 0.05  # absolute worsening allowed in a rate (0..1)
    latency: float | None = None  # relative rise allowed in p50/p95 (0.5 = 50 %); None: not gated
    cost: float | None = None  # relative rise allowed in tokens and cost per reply
    flips: int | None = None  # instead of `rate`: this many cases may change their outcome
    groups: tuple[str, ...] | None = None  # gate only these groups (None: every group)
    metrics: tuple[str, ...] | None = None  # gate only these metrics (None: every one)


# How each profile is gated when no tolerance is given. `ci/llamacpp` (the `ci` slice through
# the 0.5B model, whose sampled tokens may differ between machines) is gated on the overall
# `wrong` and `facts` only, and at most two cases may flip: a rate over n_m cases (n_m = the
# cases the metric is scored on, `wrong_n` / `facts_n` in the baseline) moves by 1/n_m per
# flipped case, so the tolerance is 2/n_m + EPS (28 cases: wrong 2/28 = 0.071; 24 answer
# cases: facts 2/24 = 0.083); a third flip exceeds it.
POLICIES: dict[str, Tolerance] = {
    "ci/llamacpp": Tolerance(flips=2, groups=("all",), metrics=("wrong", "facts")),
}


def policy(profile: str) -> Tolerance:
    """The tolerance a profile is gated with by default."""
    return POLICIES.get(profile, Tolerance())


@dataclass(frozen=True)
class Regression:
    group: str
    metric: str
    baseline: float | str | None
    current: float | str | None
    allowed: float | None  # the worst value that would still have passed (None: must equal)

    def __str__(self) -> str:
        if self.group == "config":
            return (
                f"config {self.metric} changed: baseline {self.baseline!r}, this run "
                f"{self.current!r} (check the figures, then `kefu eval accept`)"
            )
        if self.metric == "n":
            return (
                f"{self.group} n: {_num(self.baseline, whole=True)} -> "
                f"{_num(self.current, whole=True)} cases "
                "(the slice changed; check, then `kefu eval accept`)"
            )
        return (
            f"{self.group} {self.metric}: {_num(self.baseline)} -> {_num(self.current)} "
            f"(limit {_num(self.allowed)})"
        )


def _num(v: float | str | None, *, whole: bool = False) -> str:
    if isinstance(v, float | int):
        return str(int(v)) if whole else f"{v:.3f}"
    return str(v)


@dataclass
class Baseline:
    figures: Figures
    config: dict[str, Any] = field(default_factory=dict)
    accepted_at: str = ""

    @classmethod
    def from_report(cls, report: EvalReport) -> Baseline:
        return cls(
            figures={g: dict(m) for g, m in report.figures.items()},
            config={k: report.config.get(k) for k in (*COMPARABLE, "kb", "cases", "harness")},
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
    report: EvalReport, baseline: Baseline, tolerance: float | Tolerance | None = None
) -> list[Regression]:
    """Every way the run is worse than the baseline: a changed dataset or knowledge base
    (`GATED_CONFIG`), a changed number of cases in a gated group, or a rate worse by more than
    the tolerance (default: the profile's `policy`). Groups with fewer than `MIN_GATED_N` cases
    are not gated; an accepted 0.0 or 1.0 is gated in the direction it can move."""
    if tolerance is None:
        tol = policy(profile_name(report.config))
    elif isinstance(tolerance, Tolerance):
        tol = tolerance
    else:
        tol = Tolerance(rate=tolerance)
    out: list[Regression] = []
    for key in GATED_CONFIG:  # a baseline that did not record a digest cannot compare it
        if baseline.config.get(key) is not None and baseline.config[key] != report.config.get(key):
            out.append(
                Regression("config", key, baseline.config.get(key), report.config.get(key), None)
            )
    for group in sorted(baseline.figures):  # a group the run lacks has lost its cases
        if tol.groups is not None and group not in tol.groups:
            continue
        accepted = baseline.figures.get(group, {})
        current = report.figures.get(group, {})
        base_n, now_n = accepted.get("n", 0.0), current.get("n", 0.0)
        if base_n != now_n:
            out.append(Regression(group, "n", base_n, now_n, None))
            continue
        if base_n < MIN_GATED_N:
            continue
        for metric, base in accepted.items():
            if metric not in current or (tol.metrics is not None and metric not in tol.metrics):
                continue
            now = current[metric]
            limit = _limit(metric, base, tol, accepted.get(metric + COUNT_SUFFIX, base_n))
            if limit is None:
                continue
            worse = now < limit if metric in RATE_METRICS else now > limit
            if worse:
                out.append(Regression(group, metric, base, now, limit))
    return sorted(out, key=lambda r: (r.group != "config", r.group != "all", r.group, r.metric))


def _limit(metric: str, base: float, tol: Tolerance, cases: float) -> float | None:
    rate = tol.flips / max(cases, 1.0) if tol.flips is not None else tol.rate
    if metric in RATE_METRICS:
        return base - rate - EPS
    if metric in LOWER_IS_BETTER_RATES:
        return base + rate + EPS
    if metric in LATENCY_METRICS and tol.latency is not None:
        return base * (1 + tol.latency) + 1.0  # and at least a millisecond
    if metric in COST_METRICS and tol.cost is not None:
        return base * (1 + tol.cost) + EPS
    return None


def config_drift(run: Mapping[str, Any], accepted: Mapping[str, Any]) -> list[str]:
    """Differences between the run's set-up and the baseline's that make figures less
    comparable and are not gated (another model, prompt or embedding model); a changed dataset
    or knowledge base is a regression (`GATED_CONFIG`)."""
    return [
        f"{k}: baseline {accepted.get(k)!r}, this run {run.get(k)!r}"
        for k in COMPARABLE
        if k not in GATED_CONFIG and k in accepted and accepted.get(k) != run.get(k)
    ]
