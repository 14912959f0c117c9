"""`kefu eval …`: run the golden set, report language by language, refuse regressions; check
the guardrails on public datasets.

    kefu eval run --slice fast --llm none --kb examples/sample_store     # what CI runs
    kefu eval run --kb examples/sample_store --report var/eval/report.html
    kefu eval accept                                                      # the last run becomes
                                                                          # the baseline
    kefu eval rescore --from var/eval/full.json --kb examples/sample_store --json var/eval/re.json
    kefu eval adapters clinc150 --path ../shared/evaldata/clinc150 --kb examples/sample_store
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from evals.adapter_checks import AdapterReport, check_rows
from evals.adapters import READERS
from evals.baseline import (
    DEFAULT_BASELINE,
    Baseline,
    Regression,
    Tolerance,
    compare,
    config_drift,
    load_baseline,
    policy,
    profile_name,
    save_baseline,
)
from evals.dataset import (
    DEFAULT_DATASET,
    EvalError,
    dataset_digest,
    load_cases,
    select_slice,
)
from evals.metrics import DEFAULT_PRICES, load_prices
from evals.report import REPORT_SUFFIXES, fmt, table_rows, write_report
from evals.runner import (
    HARNESS_VERSION,
    CanaryChatModel,
    EvalReport,
    KbTexts,
    checkpoint_canary,
    checkpoint_matches,
    new_canary,
    pipeline_grader,
    rescore,
    run_eval,
)
from ingest.service import build_ingestor
from kefu.chat import StoreOpt, console, fail, out, progress_bar, settings, user_errors
from rag.answer.pipeline import AnswerPipeline
from rag.container import Container
from rag.conversations.store import ConversationStore
from rag.settings import Settings

app = typer.Typer(
    help="Measure answer quality language by language, and refuse regressions.",
    no_args_is_help=True,
)


class LLMChoice(StrEnum):
    none = "none"
    llamacpp = "llamacpp"
    openai = "openai"


KbOpt = Annotated[
    Path | None,
    typer.Option(
        "--kb",
        help="ingest this folder first (into a temporary store, or into --store NAME)",
        exists=True,
        file_okay=False,
    ),
]


def _settings(llm: LLMChoice | None) -> Settings:
    s = settings()
    if llm is None:
        return s
    data = s.model_dump()
    data["llm"]["provider"] = llm.value
    return Settings.model_validate(data)  # re-checks, e.g. an OpenAI backend without a key


@contextmanager
def _knowledge(s: Settings, kb: Path | None, store: str | None) -> Iterator[Container]:
    """The store to evaluate: `kb` ingested into a temporary store (or into `store`, which
    keeps it for the next run), or an existing store."""
    with tempfile.TemporaryDirectory(prefix="kefu-eval-") as tmp:
        if kb is not None and store is None:
            s = s.model_copy(update={"data_dir": Path(tmp) / "data"})
        name = store or ("eval" if kb is not None else s.store)
        if kb is None and not s.store_dir(name).is_dir():
            fail(f"store {name!r} does not exist: pass --kb FOLDER or run `kefu ingest sync` first")
        c = Container(s, store=name)
        try:
            if kb is not None:
                with progress_bar() as bar:
                    report = build_ingestor(c).sync(kb, progress=bar)
                for skipped in report.skipped:
                    console.print(
                        f"[yellow]skipped[/yellow] {skipped['file']}: {skipped['reason']}",
                        highlight=False,
                    )
            if c.index.document_count() == 0:
                fail(f"store {name!r} holds no documents: pass --kb FOLDER")
            yield c
        finally:
            if "index" in c.__dict__:  # built: close before the temporary folder goes
                c.index.close()


def isolated_pipeline(
    c: Container, conversations: ConversationStore, *, canary: str | None = None
) -> AnswerPipeline:
    """The store's pipeline with its own conversation database, so eval sessions and handoffs
    never reach the seller's agents (`kefu handoff list`). With `canary`, the chat model port
    is wrapped so that every system prompt carries it (`CanaryChatModel`)."""
    # the container's own override mechanism (as for `embedder` and `llm`): a part set before
    # first use is used as is, so the pipeline keeps the container's wiring
    c.__dict__["conversations"] = conversations
    if canary is not None and "pipeline" not in c.__dict__ and c.llm is not None:
        c.__dict__["llm"] = CanaryChatModel(c.llm, canary)
    pipeline = c.pipeline
    if pipeline.conversations is not conversations:
        raise EvalError("the answer pipeline was built before its conversations were isolated")
    return pipeline


def _fingerprint(config: dict[str, Any]) -> str:
    keys = ("dataset_digest", "slice", "llm", "model", "prompt_version", "embedding_model")
    raw = json.dumps([config.get(k) for k in (*keys, "kb_digest")], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _kb_digest(c: Container) -> str:
    raw = json.dumps(sorted(c.index.hashes().items()))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def eval_config(
    *,
    dataset: Path,
    slice_name: str,
    limit: int | None,
    cases: int,
    c: Container,
    pipeline: AnswerPipeline,
    kb: str,
    canary: str | None,
) -> dict[str, Any]:
    """The set-up of a run, as the report and the baseline record it (also used by the test
    suite's gate, so its runs compare with the accepted profiles)."""
    config: dict[str, Any] = {
        "harness": HARNESS_VERSION,
        "dataset": str(dataset),
        "dataset_digest": dataset_digest(dataset),
        "slice": slice_name,
        "limit": limit,
        "cases": cases,
        "llm": c.settings.llm.provider,
        "model": pipeline.llm.name if pipeline.llm else "none",
        "prompt_version": pipeline.prompt.id,
        "embedding_model": c.embedder.name,
        "kb": kb,
        "kb_digest": _kb_digest(c),
        "documents": c.index.document_count(),
        "canary": canary,
        "support_hours": pipeline.settings.support_hours,
        "system_prompt": pipeline.prompt.render("system"),
    }
    config["fingerprint"] = _fingerprint(config)
    return config


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


def _summary(report: EvalReport) -> None:
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
        s = _settings(llm)
        cases = select_slice(load_cases(dataset), slice_name)[: limit or None]
        if not cases:
            fail(f"slice {slice_name!r} selects no cases")
        price_table = load_prices(prices) if prices else DEFAULT_PRICES
        json_path = json_out or s.data_dir / "eval" / "last.json"
        checkpoint = json_path.with_name(json_path.stem + ".cases.jsonl")
        with _knowledge(s, kb, store) as c, tempfile.TemporaryDirectory() as tmp:
            conversations = ConversationStore(Path(tmp) / "conversations.sqlite3")
            canary = (None if fresh else checkpoint_canary(checkpoint)) or new_canary()
            pipeline = isolated_pipeline(c, conversations, canary=canary)
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
            finally:
                conversations.close()
        if rep.config.get("resumed"):
            console.print(f"resumed {rep.config['resumed']} case(s) from {checkpoint}")
        rep.save(json_path)
        checkpoint.unlink(missing_ok=True)  # the report now holds every case
        profile = profile_name(rep.config)
        accepted = load_baseline(baseline, profile)
        tol = _tolerance(profile, tolerance, latency_tolerance, cost_tolerance)
        regressions = compare(rep, accepted, tol) if accepted else None
        if report is not None:
            write_report(report, rep, regressions)
    _summary(rep)
    console.print(f"report: {json_path}" + (f", {report}" if report else ""), highlight=False)
    _verdict(rep, accepted, regressions, f"{profile} in {baseline}")


def _tolerance(
    profile: str, rate: float | None, latency: float | None, cost: float | None
) -> Tolerance:
    """The profile's policy, with the rates' tolerance, latency and cost given on the command
    line instead where given."""
    tol = policy(profile)
    if rate is not None:
        tol = replace(tol, rate=rate, flips=None)
    return replace(tol, latency=latency, cost=cost)


def _verdict(
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
    _summary(rep)
    console.print(f"report: {json_out}" + (f", {report}" if report else ""), highlight=False)
    if accepted is not None and regressions:
        console.print(f"{len(regressions)} figure(s) differ from {profile} in {baseline}:")
        for r in regressions:
            console.print(f"  {r}", highlight=False)
    console.print(f"accept with: kefu eval accept --from {json_out}", highlight=False)


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


def _print_adapter(rep: AdapterReport) -> None:
    cols = [m for m in ADAPTER_COLUMNS if any(m in f for f in rep.figures.values())]
    t = Table("group", *cols, title=rep.name)
    for group, figs in rep.figures.items():
        t.add_row(group, *(fmt(m, figs.get(m)) for m in cols))
    out.print(t)
    for note in rep.notes:
        console.print(f"note: {note}", highlight=False)


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
        with _maybe_knowledge(s, kb, store) as c, progress_bar() as bar:
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
    _print_adapter(rep)


@contextmanager
def _maybe_knowledge(s: Settings, kb: Path | None, store: str | None) -> Iterator[Container]:
    if kb is None and store is None:
        yield Container(s)  # language and escalation only; the store is never opened
        return
    with _knowledge(s, kb, store) as c:
        yield c
