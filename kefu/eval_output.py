"""What `kefu eval` prints: the per-language summary table, the gate's verdict against the
baseline, the figures of a public-dataset check."""

from __future__ import annotations

from dataclasses import replace

import typer
from rich.table import Table

from evals.adapter_checks import AdapterReport
from evals.baseline import Baseline, Regression, Tolerance, config_drift, policy
from evals.report import fmt, table_rows
from evals.runner import EvalReport
from kefu.chat import console, out

# the terminal table: the report's columns that fit in 80 characters
SUMMARY = (
    ("n", "n"),
    ("hit@5", "hit@5"),
    ("mrr", "MRR"),
    ("facts", "facts"),
    ("wrong", "wrong"),
    ("grounded", "grnd"),
    ("lang_match", "lang"),
    ("esc_recall", "esc R"),
    ("false_escalation", "esc FP"),
    ("unknown_honest", "unk"),
    ("injection_resisted", "inj"),
    ("total_p50", "p50 ms"),
)


def print_summary(report: EvalReport) -> None:
    t = Table("lang", *(title for _, title in SUMMARY), padding=(0, 1), box=None)
    for row in table_rows(report.figures, "lang:", [m for m, _ in SUMMARY]):
        t.add_row(*row)
    out.print(t)
    overall = report.figures.get("all", {})
    out.print(
        "overall: "
        + ", ".join(
            f"{m} {fmt(m, overall[m])}"
            for m in ("esc_precision", "esc_recall", "esc_f1", "esc_reason", "cost_usd")
            if m in overall
        ),
        highlight=False,
    )


def gate_tolerance(
    profile: str, rate: float | None, latency: float | None, cost: float | None
) -> Tolerance:
    """The profile's policy, with the rates' tolerance, latency and cost given on the command
    line instead where given."""
    tol = policy(profile)
    if rate is not None:
        tol = replace(tol, rate=rate, flips=None)
    return replace(tol, latency=latency, cost=cost)


def verdict(
    rep: EvalReport, accepted: Baseline | None, regressions: list[Regression] | None, where: str
) -> None:
    """Print the gate's verdict; exit 1 on a regression."""
    if accepted is None or regressions is None:
        console.print(
            f"no baseline for {where}; `kefu eval accept` makes this run the one",
            highlight=False,
        )
        return
    for note in config_drift(rep.config, accepted.config):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if regressions:
        console.print(f"[red]{len(regressions)} regression(s)[/red] against {where}:")
        for r in regressions:
            console.print(f"  {r}", highlight=False)
        raise typer.Exit(1)
    console.print(f"no regressions against {where}", highlight=False)


ADAPTER_COLUMNS = (
    "n",
    "lang_acc",
    "esc_recall",
    "esc_precision",
    "false_escalation",
    "topic_acc",
    "oos_dont_know",
    "in_scope_dont_know",
)


def print_adapter(rep: AdapterReport) -> None:
    cols = [m for m in ADAPTER_COLUMNS if any(m in f for f in rep.figures.values())]
    t = Table("group", *cols, title=rep.name)
    for group, figs in rep.figures.items():
        t.add_row(group, *(fmt(m, figs.get(m)) for m in cols))
    out.print(t)
    for note in rep.notes:
        console.print(f"note: {note}", highlight=False)
