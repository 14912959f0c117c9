"""The accuracy gate CI runs: the golden set's fast slice on the sample store, scored with the
same harness as `kefu eval run`, must not be worse than the figures accepted in
evals/baselines.json. A deliberate change of figures is accepted with `kefu eval accept`
(README, "Evaluation data"); an accidental one fails here, saying which figure regressed."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.baseline import DEFAULT_BASELINE, compare, load_baseline
from evals.cli import isolated_pipeline
from evals.dataset import DEFAULT_DATASET, load_cases, select_slice
from evals.runner import run_eval
from rag.container import Container
from rag.conversations import ConversationStore
from rag.ports import ChatModel
from tests.conftest import make_settings


def _gate(
    sample_container: Container,
    tmp_path: Path,
    *,
    profile: str,
    limit: int | None,
    llm: ChatModel | None,
    tolerance: float,
    groups: tuple[str, ...] | None = None,
) -> None:
    baseline = load_baseline(DEFAULT_BASELINE, profile)
    assert baseline is not None, f"no accepted figures for {profile} in {DEFAULT_BASELINE}"
    provider = "none" if llm is None else "llamacpp"
    settings = make_settings(sample_container.settings.data_dir, llm={"provider": provider})
    c = Container(settings, embedder=sample_container.embedder, llm=llm)
    pipeline = isolated_pipeline(c, ConversationStore(tmp_path / "eval-conversations.sqlite3"))
    cases = select_slice(load_cases(DEFAULT_DATASET), "fast")[:limit]
    report = run_eval(cases, pipeline, c.retriever, config={"slice": "fast", "llm": provider})
    regressions = [
        r for r in compare(report, baseline, tolerance) if groups is None or r.group in groups
    ]
    assert not regressions, "regressed against the baseline:\n" + "\n".join(
        f"  {r.group} {r.metric}: {r.baseline:.3f} -> {r.current:.3f}" for r in regressions
    )


def test_fast_slice_meets_the_baseline(sample_container: Container, tmp_path: Path) -> None:
    """Retrieval, language, escalation, honesty and grounding with the `none` backend:
    deterministic for a given embedding model, so the default tolerance holds."""
    _gate(sample_container, tmp_path, profile="fast/none", limit=None, llm=None, tolerance=0.05)


@pytest.mark.llm
def test_a_handful_with_the_local_model_meets_the_baseline(
    sample_container: Container, local_llm: ChatModel, tmp_path: Path
) -> None:
    """Eight cases through the local 0.5B model: generation, the grounding and language checks
    and the fallbacks. Threads and CPU features can change a sampled token, so the overall
    figures are gated (a language has one or two of these cases), and one case of eight may
    change its outcome (tolerance 0.25) before the gate fails."""
    _gate(
        sample_container,
        tmp_path,
        profile="fast/llamacpp/limit8",
        limit=8,
        llm=local_llm,
        tolerance=0.25,
        groups=("all",),
    )
