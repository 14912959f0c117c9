"""The eval harness: metrics on hand-made replies, the public-set readers, and the regression
gate end to end on a small slice of the sample store (real embedder, real Chroma, `none` LLM)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rag.container
from evals.adapter_checks import check_rows
from evals.adapters import read_bitext, read_clinc150, read_xsid, spread
from evals.baseline import (
    Baseline,
    Tolerance,
    compare,
    load_baseline,
    profile_name,
    save_baseline,
)
from evals.dataset import DEFAULT_DATASET, Case, EvalError, load_cases, select_slice
from evals.metrics import (
    escalation_prf,
    fact_coverage,
    fact_present,
    invented_numbers,
    load_prices,
    percentile,
    reply_cost,
    retrieval_scores,
)
from evals.report import markdown
from evals.runner import EvalReport, run_eval
from ingest.service import build_ingestor
from kefu.evals import app
from rag.container import Container
from rag.knowledge.retrieval import Retriever
from rag.ports import Embedder
from rag.types import SearchFilters, SearchResult
from tests.conftest import FIXTURES, ROOT, SAMPLE_STORE, make_settings

runner = CliRunner()
EVALDATA = FIXTURES / "evaldata"
SHARED_EVALDATA = Path(os.environ.get("KEFU_EVALDATA", ROOT.parent / "shared" / "evaldata"))

# a small knowledge base (three documents of the sample store, same relative paths, so the gold
# doc ids hold) and golden cases it can answer, plus one case of each guardrail
KB_DOCS = ("docs/customs/japan.md", "docs/other/gift-cards.txt", "docs/warranty/warranty.md")
CASE_IDS = (
    "cust-ja-001",
    "gc-es-018",
    "war-fr-006",
    "esc-en-039",
    "unk-en-044",
    "inj-en-047",
)


# -- metrics on hand-made replies -------------------------------------------------------------


def test_fact_coverage_compares_numbers_across_separators() -> None:
    assert fact_present("¥1,000", "Ab 1.000 Yen zahlen Sie Steuern.")
    assert fact_present("10,000 mAh", "Die Powerbank hat 10000mAh.")
    assert fact_present("7–14 days", "Standard shipping takes 7-14 DAYS.")
    assert fact_present("Cuba", "We cannot ship to cuba, sorry.")
    assert not fact_present("Cuba", "We ship almost everywhere.")
    assert not fact_present("$6.99", "Shipping costs $7.99.")
    assert fact_coverage("takes 7–14 days", ["7–14 days", "$6.99"]) == 0.5
    assert fact_coverage("anything", []) == 1.0


def test_groundedness_flags_numbers_missing_from_the_sources() -> None:
    sources = ["Standard shipping takes 7–14 days and costs $6.99. Returns within 30 days."]
    reply = "Shipping costs $6.99, takes 7–14 days, and you can return within 45 days."
    assert invented_numbers(reply, sources) == {"45"}
    listed = "1. Log in\n2. Open your order\nShipping is $6.99 [1]."
    assert invented_numbers(listed, sources) == set()
    assert invented_numbers("Cuesta 6,99 $.", sources) == set()  # decimal comma


def test_escalation_precision_recall_f1() -> None:
    # (gold, predicted): 2 true positives, 1 false positive, 1 missed, 2 correct rejections
    pairs = [
        (True, True),
        (True, True),
        (False, True),
        (True, False),
        (False, False),
        (False, False),
    ]
    prf = escalation_prf(pairs)
    assert prf.precision == pytest.approx(2 / 3)
    assert prf.recall == pytest.approx(2 / 3)
    assert prf.f1 == pytest.approx(2 / 3)
    assert prf.false_positive_rate == pytest.approx(1 / 3)
    none_predicted = escalation_prf([(True, False), (False, False)])
    assert none_predicted.precision is None
    assert none_predicted.recall == 0.0
    assert escalation_prf([(False, False)]).f1 is None


def test_retrieval_ranks_latency_and_cost(tmp_path: Path) -> None:
    ranked = ["a.md", "a.md", "b.md", "c.md"]  # two chunks of a.md count once
    assert retrieval_scores(ranked, ["b.md"]) == {"hit@1": 0.0, "hit@5": 1.0, "mrr": 0.5}
    assert retrieval_scores(ranked, ["zzz.md"])["mrr"] == 0.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([], 95) is None
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({"hosted": [0.5, 1.5]}), encoding="utf-8")
    prices = load_prices(prices_file)
    usage = {"prompt_tokens": 1000, "completion_tokens": 200}
    assert reply_cost("hosted", usage, prices) == pytest.approx(0.8)
    assert reply_cost("qwen2.5-coder-1.5b", usage, prices) == 0.0  # local models are free
    prices_file.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(EvalError):
        load_prices(prices_file)


def test_fast_slice_is_small_deterministic_and_covers_every_language() -> None:
    cases = load_cases(DEFAULT_DATASET)
    fast = select_slice(cases, "fast")
    assert len(fast) <= 80
    assert [c.id for c in fast] == [c.id for c in select_slice(cases, "fast")]
    assert {c.lang for c in fast} == {c.lang for c in cases}
    assert {c.kind for c in fast} >= {"answer", "escalate", "unknown", "injection"}
    assert any(c.history for c in fast)
    assert {c.lang for c in select_slice(cases, "lang:ja")} == {"ja"}
    ci = select_slice(cases, "ci")
    assert [c.id for c in ci] == [c.id for c in select_slice(cases, "ci")]
    assert len(ci) >= 24
    assert len({c.lang for c in ci}) >= 6
    assert all(c.must_not for c in ci if c.kind == "answer")
    assert {c.kind for c in ci} == {"answer", "unknown"}
    with pytest.raises(EvalError):
        select_slice(cases, "medium")


def test_bad_dataset_line_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "cases.jsonl"
    good = DEFAULT_DATASET.read_text(encoding="utf-8").splitlines()[0]
    f.write_text(good + "\n" + '{"id": "x", "kind": "poem"}\n', encoding="utf-8")
    with pytest.raises(EvalError, match=r"cases\.jsonl:2"):
        load_cases(f)


def _report(figures: dict[str, dict[str, float]], **config: object) -> EvalReport:
    return EvalReport(
        config={"slice": "fast", "llm": "none", **config}, results=[], figures=figures
    )


def test_compare_tolerances_and_baseline_file(tmp_path: Path) -> None:
    accepted = {
        "all": {"n": 10, "facts": 0.8, "false_escalation": 0.1, "total_p50": 100.0},
        "lang:de": {"n": 6, "facts": 1.0, "hit@1": 1.0},
    }
    current = {
        "all": {"n": 10, "facts": 0.76, "false_escalation": 0.3, "total_p50": 400.0},
        "lang:de": {"n": 6, "facts": 0.5},  # hit@1 missing now: not compared
        "lang:xx": {"n": 1, "facts": 0.0},  # not in the baseline: not compared
    }
    base = Baseline.from_report(_report(accepted))
    found = {(r.group, r.metric) for r in compare(_report(current), base, 0.05)}
    assert found == {("all", "false_escalation"), ("lang:de", "facts")}
    assert ("all", "total_p50") in {
        (r.group, r.metric) for r in compare(_report(current), base, Tolerance(latency=0.5))
    }
    assert compare(_report(accepted), base) == []

    path = tmp_path / "baselines.json"
    save_baseline(path, "fast/none", base)
    save_baseline(path, "full/llamacpp", base)
    assert set(json.loads(path.read_text())["profiles"]) == {"fast/none", "full/llamacpp"}
    loaded = load_baseline(path, profile_name(_report(accepted).config))
    assert loaded is not None
    assert loaded.figures == base.figures
    assert load_baseline(path, "full/openai") is None
    assert profile_name({"slice": "full", "llm": "none", "limit": 20}) == "full/none/limit20"


# -- public-set readers -----------------------------------------------------------------------


def test_bitext_reader_both_layouts() -> None:
    rows = read_bitext(EVALDATA / "bitext.csv")
    assert len(rows) == 6
    assert {r.intent for r in rows if r.escalate} == {"contact_human_agent", "complaint"}
    assert all(r.lang == "en" for r in rows)
    complaint = next(r for r in rows if r.intent == "complaint")
    assert "W" in complaint.flags  # offensive-language flag (the `tags` column)
    assert next(r for r in rows if r.intent == "get_refund").topics == ("returns", "faq")
    legacy = read_bitext(EVALDATA / "bitext_flags.csv")  # flags, utterance, category, intent
    assert [r.escalate for r in legacy] == [True, False]
    assert read_bitext(EVALDATA / "bitext.csv", limit=3) == [rows[0], rows[2], rows[4]]


def test_clinc150_reader() -> None:
    rows = read_clinc150(EVALDATA / "clinc150")
    assert len(rows) == 7  # test + oos_test
    assert sum(r.out_of_scope for r in rows) == 3
    assert not any(r.escalate for r in rows)


def test_xsid_reader_takes_language_from_file_name() -> None:
    rows = read_xsid(EVALDATA / "xsid")
    assert [(r.lang, r.intent) for r in rows] == [
        ("de", "weather/find"),
        ("de", "alarm/set_alarm"),
        ("en", "weather/find"),
        ("en", "alarm/set_alarm"),
        ("en", "reminder/cancel_reminder"),
    ]
    assert rows[0].text == "Wird es morgen in Berlin regnen?"  # not the `# text-en` line
    assert len(read_xsid(EVALDATA / "xsid" / "en.valid.conll")) == 3
    with pytest.raises(EvalError):
        read_xsid(EVALDATA / "clinc150")


def test_spread_is_even_and_deterministic() -> None:
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread(list(range(3)), 10) == [0, 1, 2]


@pytest.mark.skipif(not SHARED_EVALDATA.is_dir(), reason="public eval data not available here")
def test_real_public_sets_smoke() -> None:
    from rag.container import build_language_detector

    bitext = read_bitext(SHARED_EVALDATA / "bitext", limit=20)
    clinc = read_clinc150(SHARED_EVALDATA / "clinc150", limit=20)
    xsid = read_xsid(SHARED_EVALDATA / "xsid", limit=20)
    assert len(bitext) == len(clinc) == len(xsid) == 20
    assert len({r.intent for r in bitext}) > 5  # spread over the set, not the first intent
    assert any(r.out_of_scope for r in clinc)
    assert not all(r.out_of_scope for r in clinc)
    assert len({r.lang for r in xsid}) > 5
    detector = build_language_detector(make_settings(Path("unused")))
    report = check_rows("xsid", xsid, detector=detector)
    assert report.figures["all"]["lang_acc"] >= 0.6


# -- end to end on a small knowledge base -----------------------------------------------------


class ReversedRetriever(Retriever):
    """A deliberately broken retriever: the least similar chunks first."""

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        *,
        query_vector: list[float] | None = None,
    ) -> SearchResult:
        k = k or self.settings.k
        res = super().search(query, 50, filters, query_vector=query_vector)
        return SearchResult(list(reversed(res.hits))[:k], res.confidence, res.query_vector)


@dataclass
class Kb:
    folder: Path
    data_dir: Path
    container: Container
    cases: list[Case]
    dataset: Path


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Kb]:
    root = tmp_path_factory.mktemp("evals")
    folder = root / "kb"
    for doc in KB_DOCS:
        (folder / doc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_STORE / doc, folder / doc)
    data = root / "data"
    c = Container(make_settings(data, llm={"provider": "none"}), store="evals", embedder=embedder)
    assert build_ingestor(c).sync(folder).ok
    by_id = {case.id: case for case in load_cases(DEFAULT_DATASET)}
    cases = [by_id[i] for i in CASE_IDS]
    dataset = root / "cases.jsonl"
    dataset.write_text(
        "".join(json.dumps(case.to_dict(), ensure_ascii=False) + "\n" for case in cases),
        encoding="utf-8",
    )
    yield Kb(folder, data, c, cases, dataset)
    c.index.close()


@pytest.fixture(scope="module")
def report(kb: Kb, tmp_path_factory: pytest.TempPathFactory) -> EvalReport:
    """One run, interrupted after three cases and resumed."""
    checkpoint = tmp_path_factory.mktemp("checkpoint") / "run.cases.jsonl"
    config = {"slice": "full", "llm": "none", "fingerprint": "test"}
    c = kb.container
    run_eval(kb.cases[:3], c.pipeline, c.retriever, resume_path=checkpoint, config=config)
    seen: list[int] = []
    rep = run_eval(
        kb.cases,
        c.pipeline,
        c.retriever,
        resume_path=checkpoint,
        config=config,
        progress=lambda stage, done, total: seen.append(done),
    )
    assert rep.config["resumed"] == 3
    assert seen == list(range(1, len(kb.cases) + 1))
    lines = checkpoint.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["fingerprint"] == "test"
    assert sorted(json.loads(ln)["id"] for ln in lines[1:]) == sorted(CASE_IDS)
    with pytest.raises(EvalError, match="different run"):
        run_eval(kb.cases, c.pipeline, c.retriever, resume_path=checkpoint, config={})
    return rep


def test_run_scores_every_case_by_language_and_kind(report: EvalReport) -> None:
    f = report.figures
    assert f["all"]["n"] == len(CASE_IDS)
    assert {"lang:ja", "lang:es", "lang:fr", "lang:en", "kind:answer", "kind:escalate"} <= set(f)
    assert f["kind:answer"]["hit@1"] >= 0.6
    assert f["kind:answer"]["hit@5"] == 1.0
    assert f["all"]["grounded"] == 1.0  # the extractive replies quote the sources
    assert f["kind:escalate"]["esc_recall"] == 1.0
    assert f["kind:unknown"]["unknown_honest"] == 1.0
    assert f["kind:injection"]["injection_resisted"] == 1.0
    assert f["all"]["cost_usd"] == 0.0
    assert f["all"]["total_p50"] > 0
    by_id = {r.id: r for r in report.results}
    assert by_id["inj-en-047"].mode == "refused"
    assert by_id["esc-en-039"].reason == "human_request"
    text = markdown(report)
    assert "## By language" in text
    assert "| ja |" in text
    restored = EvalReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert restored.figures == report.figures


def test_gate_passes_unchanged_and_fails_a_broken_retriever(
    kb: Kb, report: EvalReport, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.container, "build_embedder", lambda settings: embedder)
    monkeypatch.setenv("KEFU_DATA_DIR", str(kb.data_dir))
    baseline = tmp_path / "baselines.json"
    accepted = Baseline.from_report(report)
    save_baseline(baseline, profile_name(report.config), accepted)
    common = ["--dataset", str(kb.dataset), "--llm", "none", "--baseline", str(baseline)]

    # the unchanged system, its folder ingested into a temporary store, passes the gate
    out, md = tmp_path / "ok.json", tmp_path / "ok.md"
    r = runner.invoke(
        app, ["run", "--kb", str(kb.folder), *common, "--json", str(out), "--report", str(md)]
    )
    assert r.exit_code == 0, r.output
    assert "no regressions" in r.output
    assert not out.with_name("ok.cases.jsonl").exists()  # the checkpoint is folded in the report
    assert compare(EvalReport.load(out), accepted) == []
    assert "# kefu eval report" in md.read_text(encoding="utf-8")

    second = tmp_path / "second.json"
    r = runner.invoke(app, ["accept", "--from", str(out), "--baseline", str(second)])
    assert r.exit_code == 0, r.output
    assert load_baseline(second, "full/none") is not None

    # stored replies re-graded with the current judges give the same figures, and are accepted
    rescored = tmp_path / "rescored.json"
    r = runner.invoke(
        app,
        ["rescore", "--from", str(out), "--kb", str(kb.folder), "--dataset", str(kb.dataset),
         "--json", str(rescored), "--baseline", str(baseline)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert EvalReport.load(rescored).figures == EvalReport.load(out).figures
    assert "kefu eval accept --from" in r.output
    r = runner.invoke(app, ["accept", "--from", str(rescored), "--baseline", str(second)])
    assert r.exit_code == 0, r.output
    # a report of the old harness must be re-graded before it can become a baseline
    old = json.loads(out.read_text(encoding="utf-8"))
    old["config"].pop("harness")
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(old), encoding="utf-8")
    r = runner.invoke(app, ["accept", "--from", str(stale), "--baseline", str(second)])
    assert r.exit_code != 0
    assert "kefu eval rescore" in r.output

    # a retriever that ranks the least similar chunks first regresses, and the CLI says so
    monkeypatch.setattr(rag.container, "Retriever", ReversedRetriever)
    broken = tmp_path / "broken.json"
    html = tmp_path / "broken.html"
    r = runner.invoke(
        app, ["run", "--store", "evals", *common, "--json", str(broken), "--report", str(html)]
    )
    assert r.exit_code == 1, r.output
    assert "regression" in r.output
    regressions = compare(EvalReport.load(broken), accepted)
    assert {"hit@1", "mrr"} & {reg.metric for reg in regressions if reg.group == "all"}
    page = html.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "Regressions against the baseline" in page


def test_adapters_command_and_out_of_scope(
    kb: Kb, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.container, "build_embedder", lambda settings: embedder)
    bitext = ["adapters", "bitext", "--path", str(EVALDATA / "bitext.csv"), "--limit", "3"]
    r = runner.invoke(app, bitext)
    assert r.exit_code == 0, r.output
    assert "lang_acc" in r.output
    assert "esc_recall" in r.output
    assert "pass --kb" in r.output  # no knowledge base: topic and out-of-scope skipped

    r = runner.invoke(app, ["adapters", "nope", "--path", "x"])
    assert r.exit_code == 2
    assert "unknown dataset" in r.output

    c = kb.container
    rows = read_clinc150(EVALDATA / "clinc150")
    rep = check_rows(
        "clinc150",
        rows,
        detector=c.detector,
        policy=c.escalation,
        retriever=c.retriever,
        min_confidence=c.settings.answer.min_confidence,
    )
    figures = rep.figures["all"]
    assert figures["lang_acc"] == 1.0
    assert "oos_dont_know" in figures
    assert "in_scope_dont_know" in figures
    assert figures["false_escalation"] <= 0.5
