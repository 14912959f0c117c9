"""Human-readable eval reports: Markdown, or HTML with the plots embedded as PNGs."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evals.baseline import Regression
from evals.dataset import EvalError
from evals.metrics import LOWER_IS_BETTER_RATES, Figures, percentile
from evals.runner import CaseResult, EvalReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# (metric, column title) of the per-language and per-kind tables
COLUMNS = (
    ("n", "n"),
    ("hit@1", "hit@1"),
    ("hit@5", "hit@5"),
    ("mrr", "MRR"),
    ("facts", "facts"),
    ("wrong", "wrong"),
    ("grounded", "grounded"),
    ("lang_match", "language"),
    ("esc_precision", "esc prec"),
    ("esc_recall", "esc recall"),
    ("esc_reason", "reason"),
    ("false_escalation", "false esc"),
    ("unknown_honest", "unknown"),
    ("injection_resisted", "injection"),
    ("total_p50", "p50 ms"),
    ("total_p95", "p95 ms"),
)
COLUMN_METRICS = tuple(m for m, _ in COLUMNS)
PLOTTED = (
    ("hit@5", "hit@5"),
    ("facts", "facts"),
    ("wrong", "wrong (lower is better)"),
    ("lang_match", "language"),
)
REPORT_SUFFIXES = (".md", ".html", ".htm")
SETUP_KEYS = (
    "slice",
    "cases",
    "llm",
    "model",
    "prompt_version",
    "embedding_model",
    "kb",
    "dataset",
    "dataset_digest",
    "kb_digest",
    "harness",
    "canary",
    "started_at",
    "rescored_from",
)


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric == "n":
        return str(int(value))
    if metric.endswith(("_p50", "_p95")):
        return f"{value:.0f}"
    if metric == "cost_usd":
        return f"${value:.5f}"
    if metric.endswith("_tokens"):
        return f"{value:.0f}"
    return f"{value:.2f}"


def _groups(figures: Figures, prefix: str) -> list[str]:
    return sorted(
        (g for g in figures if g.startswith(prefix)),
        key=lambda g: (-figures[g].get("n", 0), g),
    )


def table_rows(
    figures: Figures, prefix: str, metrics: Sequence[str] = COLUMN_METRICS
) -> list[list[str]]:
    """Rows of a table of `prefix` groups (`lang:` or `kind:`), plus an `all` row."""
    rows = []
    for g in [*_groups(figures, prefix), "all"]:
        if g in figures:
            label = g.split(":", 1)[-1]
            rows.append([label, *(fmt(m, figures[g].get(m)) for m in metrics)])
    return rows


def failed_checks(r: CaseResult) -> list[str]:
    failed = [
        k
        for k, v in sorted(r.scores.items())
        if (v > 0 if k in LOWER_IS_BETTER_RATES else v < 1 and k != "mrr")
    ]
    if r.gold_escalate and not r.escalated:
        failed.append("not escalated")
    if r.escalated and not r.gold_escalate:
        failed.append(f"escalated ({r.reason})")
    return failed


def _findings(r: CaseResult) -> list[tuple[str, str]]:
    """What the judges found in a reply, for the worst-case listings."""
    out = []
    if r.must_not:
        out.append(("must not say", ", ".join(r.must_not)))
    if r.stated:
        out.append(("wrong claims stated", ", ".join(r.stated)))
    if r.invented:
        out.append(("numbers in no gold document", ", ".join(r.invented)))
    if r.gave_in:
        out.append(("gave in to the injection", "; ".join(r.gave_in)))
    return out


# -- plots ------------------------------------------------------------------------------------


def accuracy_plot(figures: Figures) -> bytes:
    """Grouped bars of retrieval, fact and language accuracy per language (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    langs = _groups(figures, "lang:")
    fig = Figure(figsize=(max(6.0, 0.55 * len(langs) + 2), 3.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(PLOTTED)
    for i, (metric, title) in enumerate(PLOTTED):
        xs = [j + i * width for j in range(len(langs))]
        ax.bar(xs, [figures[g].get(metric, 0.0) for g in langs], width, label=title)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(langs))])
    ax.set_xticklabels([g.split(":", 1)[1] for g in langs])
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("rate")
    ax.set_title("Accuracy by language")
    ax.legend(loc="upper center", ncols=len(PLOTTED), fontsize="small", frameon=False)
    fig.tight_layout()
    return _png(fig)


def latency_plot(results: Sequence[CaseResult]) -> bytes:
    """Histogram of total reply latency (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    totals = [r.timings_ms["total"] for r in results if "total" in r.timings_ms]
    fig = Figure(figsize=(6.0, 3.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(totals or [0.0], bins=min(30, max(5, len(totals) // 3)))
    for q, style in ((50, "--"), (95, ":")):
        value = percentile(totals, q)
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.0f} ms")
    if totals:
        ax.legend(fontsize="small")
    ax.set_xlabel("total ms per reply")
    ax.set_ylabel("replies")
    ax.set_title("Latency")
    fig.tight_layout()
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# -- Markdown ---------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def markdown(
    report: EvalReport, regressions: Sequence[Regression] | None = None, *, worst: int = 10
) -> str:
    c = report.config
    lines = ["# kefu eval report", ""]
    lines += [f"- {k}: `{c[k]}`" for k in SETUP_KEYS if c.get(k) is not None]
    lines += ["", "## Overall", ""]
    overall = report.figures.get("all", {})
    lines += _md_table(["metric", "value"], [[m, fmt(m, v)] for m, v in sorted(overall.items())])
    header = ["lang", *(t for _, t in COLUMNS)]
    lines += ["", "## By language", ""]
    lines += _md_table(header, table_rows(report.figures, "lang:"))
    lines += ["", "## By kind", ""]
    lines += _md_table(["kind", *header[1:]], table_rows(report.figures, "kind:"))
    if regressions is not None:
        lines += ["", "## Regressions against the baseline", ""]
        lines += [f"- {r}" for r in regressions] or ["None."]
    lines += ["", "## Worst cases", ""]
    for r in report.worst(worst):
        lines += [
            f"### {r.id} ({r.lang}, {r.kind}): {', '.join(failed_checks(r))}",
            "",
            f"**Question:** {_md_cell(r.question)}",
            "",
            f"**Reply** (mode `{r.mode}`, language `{r.language}`):",
            "",
            *(f"> {ln}" for ln in r.reply.splitlines() or [""]),
            "",
            f"- sources: {', '.join(str(s['doc_id']) for s in r.sources) or '–'}",
            f"- retrieved: {', '.join(r.retrieved) or '–'}",
            f"- gold docs: {', '.join(r.gold_docs) or '–'}",
            f"- gold facts: {', '.join(r.gold_facts) or '–'}",
        ]
        lines += [f"- {label}: {text}" for label, text in _findings(r)]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px}
td{text-align:right}td:first-child{text-align:left}th{background:#f3f3f3}
.reg{color:#b00}blockquote{background:#f7f7f7;margin:.3em 0;padding:.5em;white-space:pre-wrap}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_report(
    report: EvalReport, regressions: Sequence[Regression] | None = None, *, worst: int = 10
) -> str:
    c = report.config
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>kefu eval report</title>",
        f"<style>{_CSS}</style></head><body><h1>kefu eval report</h1><ul>",
        *(f"<li>{e(k)}: <code>{e(str(c[k]))}</code></li>" for k in SETUP_KEYS if c.get(k)),
        "</ul>",
    ]
    if regressions is not None:
        parts.append("<h2>Regressions against the baseline</h2>")
        parts.append(
            "<ul>" + "".join(f"<li class='reg'>{e(str(r))}</li>" for r in regressions) + "</ul>"
            if regressions
            else "<p>None.</p>"
        )
    header = ["lang", *(t for _, t in COLUMNS)]
    parts += [
        "<h2>By language</h2>",
        _html_table(header, table_rows(report.figures, "lang:")),
        _img(accuracy_plot(report.figures), "accuracy by language"),
        "<h2>By kind</h2>",
        _html_table(["kind", *header[1:]], table_rows(report.figures, "kind:")),
        "<h2>Latency</h2>",
        _img(latency_plot(report.results), "latency histogram"),
        "<h2>Overall</h2>",
        _html_table(
            ["metric", "value"],
            [[m, fmt(m, v)] for m, v in sorted(report.figures.get("all", {}).items())],
        ),
        "<h2>Worst cases</h2>",
    ]
    for r in report.worst(worst):
        parts += [
            f"<h3>{e(r.id)} ({e(r.lang)}, {e(r.kind)}): {e(', '.join(failed_checks(r)))}</h3>",
            f"<p><b>Question:</b> {e(r.question)}</p>",
            f"<p><b>Reply</b> (mode <code>{e(r.mode)}</code>, language "
            f"<code>{e(r.language)}</code>):</p><blockquote>{e(r.reply)}</blockquote><ul>",
            f"<li>sources: {e(', '.join(str(s['doc_id']) for s in r.sources) or '–')}</li>",
            f"<li>retrieved: {e(', '.join(r.retrieved) or '–')}</li>",
            f"<li>gold docs: {e(', '.join(r.gold_docs) or '–')}</li>",
            f"<li>gold facts: {e(', '.join(r.gold_facts) or '–')}</li>",
        ]
        parts += [f"<li>{e(label)}: {e(text)}</li>" for label, text in _findings(r)]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    path: Path, report: EvalReport, regressions: Sequence[Regression] | None = None
) -> None:
    """Markdown for `.md`, HTML (with plots) for `.html`/`.htm`."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        text = markdown(report, regressions)
    elif suffix in {".html", ".htm"}:
        text = html_report(report, regressions)
    else:
        raise EvalError(f"--report {path}: use a .md or .html file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
