"""Eval harness: golden sets, per-language metrics, a baseline gate, and `kefu eval …`.

dataset.py        golden cases (JSONL) and slices
adapters.py       readers for public sets (Bitext, CLINC150, xSID)
metrics.py        per-case checks and their aggregation by language and kind
runner.py         runs cases through the answer pipeline, resumable
baseline.py       accepted figures and the regression gate
report.py         Markdown and HTML reports with plots
adapter_checks.py language, escalation, topic and out-of-scope checks on the public sets
cli.py            the Typer sub-app
"""
