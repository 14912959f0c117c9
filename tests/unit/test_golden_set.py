"""The golden evaluation set stays valid: every gold fact is present in its gold document, facts
mean the same in every language, and enough answer cases say which claims would make a reply
wrong (`must_not`, issue #11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

VALIDATOR = "evals/datasets/validate_golden.py"
DATASET = ROOT / "evals" / "datasets" / "golden.jsonl"
LANGUAGES = [
    "ar",
    "de",
    "en",
    "es",
    "fr",
    "hi",
    "id",
    "it",
    "ja",
    "ko",
    "my",
    "pt",
    "ru",
    "sw",
    "th",
    "tr",
    "vi",
    "zh",
]


def run_validator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, VALIDATOR, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_golden_set_validates() -> None:
    proc = run_validator("--coverage")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_must_not_covers_120_answer_cases_in_every_language() -> None:
    cases = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]
    with_claims = [c for c in cases if c.get("must_not") and c["kind"] == "answer"]
    assert len(with_claims) >= 120
    missing = [lang for lang in LANGUAGES if not any(c["lang"] == lang for c in with_claims)]
    assert not missing, f"no case with must_not in {missing}"
    # the validator reports the same count
    proc = run_validator()
    assert f"answer cases with must_not: {len(with_claims)} of" in proc.stdout


def _case(**changes: object) -> dict[str, object]:
    case: dict[str, object] = {
        "id": "ship-es-901",
        "lang": "es",
        "question": "cuanto tarda el envio a mexico?",
        "kind": "answer",
        "gold_docs": ["docs/es/envios-mexico.md", "docs/shipping/shipping-zones.md"],
        "gold_facts": ["10–18", "US$9.99"],
        "must_not": ["4", "15–20"],
        "escalation_reason": None,
        "country": "MX",
        "customer_id": None,
        "history": [],
    }
    case.update(changes)
    return case


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"must_not": ["10–18"]}, "is (part of) gold_fact '10–18'"),
        ({"must_not": ["18"]}, "is (part of) gold_fact '10–18'"),
        ({"must_not": ["4–9"]}, "is a range of no document"),
        ({"must_not": ["4 or 7"]}, "one number or one range"),
        ({"must_not": ["is free"]}, "English phrase"),
        ({"must_not": [""]}, "non-empty strings"),
        (
            {"kind": "escalate", "gold_facts": [], "escalation_reason": "human_request"},
            "must_not is for answer and unknown cases",
        ),
        ({"gold_facts": ["10–18 business days"]}, "English phrase"),
        ({"gold_facts": ["10–14"]}, "not found"),
        ({"gold_facts": ["4 公斤"]}, "not in the script of lang 'es'"),
    ],
)
def test_validator_refuses_a_bad_case(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_text(json.dumps(_case(**changes), ensure_ascii=False) + "\n", encoding="utf-8")
    proc = run_validator("--dataset", str(path), "--quiet")
    assert proc.returncode == 1
    assert message in proc.stdout, proc.stdout


def test_validator_accepts_the_same_case_when_it_is_right(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    lines = [
        _case(),
        # an own-language phrase fact: the gold documents are English, so it cannot be in them
        _case(
            id="care-de-901",
            lang="de",
            question="Darf die Pfanne in die Spülmaschine?",
            gold_docs=["docs/products/product-care.md"],
            gold_facts=["nicht"],
            must_not=["230°C"],
            country=None,
        ),
    ]
    path.write_text(
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in lines), encoding="utf-8"
    )
    proc = run_validator("--dataset", str(path))
    assert proc.returncode == 0, proc.stdout
