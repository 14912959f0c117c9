"""`kefu eval …`: run the golden set, report language by language, refuse regressions; check
the guardrails on public datasets.

    kefu eval run --slice fast --llm none --kb examples/sample_store     # what CI runs
    kefu eval run --kb examples/sample_store --report var/eval/report.html
    kefu eval accept                                                      # the last run becomes
                                                                          # the baseline
    kefu eval rescore --from var/eval/full.json --kb examples/sample_store --json var/eval/re.json
    kefu eval adapters clinc150 --path ../shared/evaldata/clinc150 --kb examples/sample_store

The commands; what a run measures on is set up in kefu/eval_setup.py, what they print is in
kefu/eval_output.py.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from evals.adapter_checks import check_rows
from evals.adapters import READERS
from evals.baseline import (
    DEFAULT_BASELINE,
    Baseline,
    compare,
    load_baseline,
    profile_name,
    save_baseline,
)
from evals.dataset import DEFAULT_DATASET, dataset_digest, load_cases, select_slice
from evals.metrics import DEFAULT_PRICES, load_prices
from evals.report import REPORT_SUFFIXES, write_report
from evals.runner import (
    HARNESS_VERSION,
    EvalReport,
    KbTexts,
    checkpoint_canary,
    checkpoint_matches,
    new_canary,
    pipeline_grader,
    rescore,
    run_eval,
)
from kefu.chat import StoreOpt, console, fail, out, progress_bar, settings, user_errors
from kefu.eval_output import gate_tolerance, print_adapter, print_summary, verdict
from kefu.eval_setup import LLMChoice, eval_config, eval_settings, knowledge, maybe_knowledge
from rag.container import Container, sqlite_conversations

app = typer.Typer(
    help="Measure answer quality language by language, and refuse regressions.",
    no_args_is_help=True,
)


KbOpt = Annotated[
    Path | None,
    typer.Option(
        "--kb",
        help="ingest this folder first (into a temporary store, or into --store NAME)",
        exists=True,
        file_okay=False,
    ),
]


@app.command("run")
def run_command(
    dataset: Annotated[Path, typer.Option(help="golden cases (JSONL)")] = DEFAULT_DATASET,
    kb: KbOpt = None,
    store: StoreOpt = None,
    slice_name: Annotated[
        str, typer.Option("--slice", help="fast | ci | full | lang:<code> | kind:<kind>")
    ] = "full",
    llm: Annotated[
        LLMChoice | None, typer.Option(help="LLM backend (default: the configured one)")
    ] = None,
    baseline: Annotated[Path, typer.Option(help="accepted figures")] = DEFAULT_BASELINE,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="full report as JSON (default: KEFU_DATA_DIR/eval/last.json)"),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="also write OUT.md or OUT.html")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="only the first N cases of the slice")
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(help="allowed absolute worsening of a rate (default: the profile's policy)"),
    ] = None,
    latency_tolerance: Annotated[
        float | None, typer.Option(help="allowed relative rise of latency (0.5 = 50 %)")
    ] = None,
    cost_tolerance: Annotated[
        float | None, typer.Option(help="allowed relative rise of tokens and cost per reply")
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(help="JSON price table: model -> (USD per 1k prompt, per 1k completion)"),
    ] = None,
    fresh: Annotated[bool, typer.Option(help="ignore results of an interrupted run")] = False,
) -> None:
    """Answer every case of the golden set, score the replies per language and kind, and exit
    non-zero if a figure is worse than the accepted baseline.

    An interrupted run resumes where it stopped when run again with the same --json."""
    if report is not None and report.suffix.lower() not in REPORT_SUFFIXES:
        fail(f"--report {report}: use a .md or .html file name")
    with user_errors():
        s = eval_settings(llm)
        cases = select_slice(load_cases(dataset), slice_name)[: limit or None]
        if not cases:
            fail(f"slice {slice_name!r} selects no cases")
        price_table = load_prices(prices) if prices else DEFAULT_PRICES
        json_path = json_out or s.data_dir / "eval" / "last.json"
        checkpoint = json_path.with_name(json_path.stem + ".cases.jsonl")
        canary = (None if fresh else checkpoint_canary(checkpoint)) or new_canary()
        with (
            tempfile.TemporaryDirectory() as tmp,
            closing(sqlite_conversations(Path(tmp) / "conversations.sqlite3")) as conversations,
            knowledge(s, kb, store, conversations=conversations, canary=canary) as c,
        ):
            pipeline = c.pipeline
            config = eval_config(
                dataset=dataset,
                slice_name=slice_name,
                limit=limit,
                cases=len(cases),
                c=c,
                pipeline=pipeline,
                kb=str(kb) if kb else f"store:{c.store}",
                canary=canary,
            )
            texts = KbTexts.from_folder(kb) if kb is not None else KbTexts.from_index(c.index)
            grader = pipeline_grader(pipeline, texts, canary=canary)
            if fresh or not checkpoint_matches(checkpoint, config["fingerprint"]):
                if checkpoint.exists() and not fresh:
                    console.print(f"{checkpoint} is from a different run; starting over")
                checkpoint.unlink(missing_ok=True)
            try:
                with progress_bar() as bar:
                    rep = run_eval(
                        cases,
                        pipeline,
                        c.retriever,
                        progress=bar,
                        resume_path=checkpoint,
                        prices=price_table,
                        config=config,
                        grader=grader,
                    )
            except KeyboardInterrupt:
                fail(f"interrupted; run the same command again to resume ({checkpoint})", 130)
        if rep.config.get("resumed"):
            console.print(f"resumed {rep.config['resumed']} case(s) from {checkpoint}")
        rep.save(json_path)
        checkpoint.unlink(missing_ok=True)  # the report now holds every case
        profile = profile_name(rep.config)
        accepted = load_baseline(baseline, profile)
        tol = gate_tolerance(profile, tolerance, latency_tolerance, cost_tolerance)
        regressions = compare(rep, accepted, tol) if accepted else None
        if report is not None:
            write_report(report, rep, regressions)
    print_summary(rep)
    console.print(f"report: {json_path}" + (f", {report}" if report else ""), highlight=False)
    verdict(rep, accepted, regressions, f"{profile} in {baseline}")


@app.command()
def accept(
    from_: Annotated[
        Path | None,
        typer.Option("--from", help="a run's JSON report (default: KEFU_DATA_DIR/eval/last.json)"),
    ] = None,
    baseline: Annotated[Path, typer.Option(help="accepted figures")] = DEFAULT_BASELINE,
) -> None:
    """Make a run's figures the accepted baseline for its slice and LLM backend."""
    with user_errors():
        path = from_ or settings().data_dir / "eval" / "last.json"
        if not path.exists():
            fail(f"no report at {path}: run `kefu eval run` first, or pass --from")
        rep = EvalReport.load(path)
        if int(rep.config.get("harness") or 1) < HARNESS_VERSION:
            fail(
                f"{path} was scored by an older eval harness: re-grade it first with "
                f"`kefu eval rescore --from {path} --kb FOLDER --json NEW.json`"
            )
        profile = profile_name(rep.config)
        save_baseline(baseline, profile, Baseline.from_report(rep))
    out.print(f"accepted {path} as {profile} in {baseline}", highlight=False)


@app.command("rescore")
def rescore_command(
    from_: Annotated[
        list[Path],
        typer.Option("--from", help="a run's JSON report; repeat it, later files win per case"),
    ],
    json_out: Annotated[Path, typer.Option("--json", help="the re-graded report")],
    kb: KbOpt = None,
    store: StoreOpt = None,
    dataset: Annotated[Path, typer.Option(help="golden cases (JSONL)")] = DEFAULT_DATASET,
    slice_name: Annotated[
        str | None,
        typer.Option("--slice", help="keep this slice's cases (default: the run's slice)"),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="also write OUT.md or OUT.html")
    ] = None,
    baseline: Annotated[Path, typer.Option(help="accepted figures")] = DEFAULT_BASELINE,
) -> None:
    """Re-grade stored replies with the current judges and golden set, without asking again.

    Merges the reports' cases by id (later files win), reads the gold documents from --kb
    FOLDER (or the store's index with --store), and writes a report `kefu eval accept` takes.
    Regressions against the baseline are printed, not turned into an exit code."""
    if report is not None and report.suffix.lower() not in REPORT_SUFFIXES:
        fail(f"--report {report}: use a .md or .html file name")
    if kb is None and store is None:
        fail("pass --kb FOLDER (the knowledge base the run answered from) or --store NAME")
    with user_errors():
        reports = []
        for path in from_:
            if not path.exists():
                fail(f"no report at {path}")
            reports.append(EvalReport.load(path))
        chosen = slice_name or str(reports[-1].config.get("slice") or "full")
        cases = select_slice(load_cases(dataset), chosen)
        limit = reports[-1].config.get("limit")
        if slice_name is None and limit:
            cases = cases[: int(limit)]
        if kb is not None:
            texts = KbTexts.from_folder(kb)
        else:
            c = Container(settings(), store=store)
            if not c.settings.store_dir(c.store).is_dir():
                fail(f"store {c.store!r} does not exist")
            try:
                texts = KbTexts.from_index(c.index)
            finally:
                c.index.close()
        overrides = {
            "dataset": str(dataset),
            "dataset_digest": dataset_digest(dataset),
            "slice": chosen,
            "limit": limit if slice_name is None else None,
            "rescored_from": [str(p) for p in from_],
        }
        rep, notes = rescore(reports, cases, texts, config=overrides)
        if not rep.results:
            fail("no stored reply belongs to the chosen slice of the dataset")
        rep.save(json_out)
        profile = profile_name(rep.config)
        accepted = load_baseline(baseline, profile)
        regressions = compare(rep, accepted) if accepted else None
        if report is not None:
            write_report(report, rep, regressions)
    for note in notes[:20]:
        console.print(f"note: {note}", highlight=False)
    if len(notes) > 20:
        console.print(f"note: … and {len(notes) - 20} more", highlight=False)
    print_summary(rep)
    console.print(f"report: {json_out}" + (f", {report}" if report else ""), highlight=False)
    if accepted is not None and regressions:
        console.print(f"{len(regressions)} figure(s) differ from {profile} in {baseline}:")
        for r in regressions:
            console.print(f"  {r}", highlight=False)
    console.print(f"accept with: kefu eval accept --from {json_out}", highlight=False)


@app.command("adapters")
def adapters_command(
    name: Annotated[str, typer.Argument(help="bitext | clinc150 | xsid")],
    path: Annotated[Path, typer.Option("--path", help="the dataset file or folder")],
    limit: Annotated[
        int | None, typer.Option(min=1, help="N rows spread evenly over the set")
    ] = None,
    kb: KbOpt = None,
    store: StoreOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
) -> None:
    """Language detection, escalation, topic and out-of-scope checks on a public dataset.

    Topic and out-of-scope checks need a knowledge base (--kb or --store)."""
    reader = READERS.get(name)
    if reader is None:
        fail(f"unknown dataset {name!r}; choose one of {', '.join(READERS)}")
    with user_errors():
        rows = reader(path, limit=limit)
        s = settings()
        with maybe_knowledge(s, kb, store) as c, progress_bar() as bar:
            rep = check_rows(
                name,
                rows,
                detector=c.detector,
                policy=c.escalation,
                retriever=c.retriever if (kb or store) else None,
                min_confidence=s.answer.min_confidence,
                progress=bar,
            )
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(rep.to_dict(), indent=1) + "\n", encoding="utf-8")
    print_adapter(rep)
