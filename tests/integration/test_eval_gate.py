"""The accuracy gate CI runs: the golden set's `fast` slice with the `none` backend and its `ci`
slice through the local 0.5B model, on the sample store, scored with the same harness as
`kefu eval run`, must not be worse than the figures accepted in evals/baselines.json. A
deliberate change of figures (or of the golden set or knowledge base, which fails the gate until
accepted) is accepted with `kefu eval accept` (README, "Evaluation data"); an accidental one fails
here, saying which figure regressed."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.baseline import DEFAULT_BASELINE, compare, load_baseline, policy
from evals.dataset import DEFAULT_DATASET, load_cases, select_slice
from evals.runner import KbTexts, new_canary, pipeline_grader, run_eval
from kefu.eval_setup import eval_config, eval_container
from rag.container import Container
from rag.conversations.store import ConversationStore
from rag.ports import ChatModel
from tests.conftest import SAMPLE_STORE, make_settings

# how each gated profile is produced and accepted (printed when its baseline is missing or stale)
ACCEPT = {
    "fast/none": (
        "kefu eval run --slice fast --llm none --kb examples/sample_store "
        "--json var/eval/fast.json && kefu eval accept --from var/eval/fast.json"
    ),
    "ci/llamacpp": (
        "KEFU_LLM__MODEL=qwen2.5-coder-0.5b kefu eval run --slice ci --llm llamacpp "
        "--kb examples/sample_store --json var/eval/ci.json "
        "&& kefu eval accept --from var/eval/ci.json"
    ),
}


def _gate(
    sample_container: Container,
    tmp_path: Path,
    *,
    profile: str,
    slice_name: str,
    llm: ChatModel | None,
) -> None:
    baseline = load_baseline(DEFAULT_BASELINE, profile)
    assert baseline is not None, (
        f"no accepted figures for {profile} in {DEFAULT_BASELINE}; accept a run first:\n"
        f"  {ACCEPT[profile]}"
    )
    provider = "none" if llm is None else "llamacpp"
    settings = make_settings(sample_container.settings.data_dir, llm={"provider": provider})
    canary = new_canary()
    c = eval_container(
        settings,
        embedder=sample_container.embedder,
        llm=llm,
        conversations=ConversationStore(tmp_path / "eval-conversations.sqlite3"),
        canary=canary,
    )
    pipeline = c.pipeline
    cases = select_slice(load_cases(DEFAULT_DATASET), slice_name)
    config = eval_config(
        dataset=DEFAULT_DATASET,
        slice_name=slice_name,
        limit=None,
        cases=len(cases),
        c=c,
        pipeline=pipeline,
        kb="examples/sample_store",
        canary=canary,
    )
    grader = pipeline_grader(pipeline, KbTexts.from_folder(SAMPLE_STORE), canary=canary)
    report = run_eval(cases, pipeline, c.retriever, config=config, grader=grader)
    regressions = compare(report, baseline, policy(profile))
    assert not regressions, (
        f"regressed against {profile} in {DEFAULT_BASELINE}:\n"
        + "\n".join(f"  {r}" for r in regressions)
        + f"\nif the change is deliberate, accept it (and say why in the commit):\n"
        f"  {ACCEPT[profile]}"
    )


def test_fast_slice_meets_the_baseline(sample_container: Container, tmp_path: Path) -> None:
    """Retrieval, language, escalation, honesty, grounding and wrong answers with the `none`
    backend: deterministic for a given embedding model, so the default tolerance holds."""
    _gate(sample_container, tmp_path, profile="fast/none", slice_name="fast", llm=None)


@pytest.mark.llm
def test_ci_slice_through_the_local_model_meets_the_baseline(
    sample_container: Container, local_llm: ChatModel, tmp_path: Path
) -> None:
    """The `ci` slice (table, threshold and yes/no cases in eight languages, and a few
    unknown questions) through the local 0.5B model, gated on the overall `wrong` and `facts`:
    a sampled token may differ between machines, so two cases may flip (`ci/llamacpp`
    policy, evals/baseline.py) before the gate fails."""
    _gate(sample_container, tmp_path, profile="ci/llamacpp", slice_name="ci", llm=local_llm)
