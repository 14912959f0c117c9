"""Golden cases: what a correct assistant turn looks like, read from JSONL, and named slices."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.errors import InvalidInput

KINDS = ("answer", "escalate", "unknown", "injection", "smalltalk")
DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
DEFAULT_DATASET = DATASETS_DIR / "golden.jsonl"

# The fast slice: a small, deterministic subset that still touches every language, the
# escalation and "don't know" paths, injections and multi-turn follow-ups (under 80 cases).
FAST_PER_LANGUAGE = {"answer": 2, "escalate": 1, "unknown": 1}
FAST_EXTRA_LANGUAGES = ("en", "es", "zh")  # + their first injection and first follow-up

# The CI slice through the small local model (`ci`): per language of `CI_LANGUAGES`, the first
# `CI_ANSWERS` single-turn answer cases that carry `must_not` (their gold document has a
# table, a threshold, a market split or a yes/no verdict), plus the first unknown case of each
# of `CI_UNKNOWN_LANGUAGES`: 8 x 3 + 4 = 28 cases in 8 languages, in dataset order.
CI_LANGUAGES = ("en", "es", "zh", "de", "ja", "fr", "pt", "ar")
CI_ANSWERS = 3
CI_UNKNOWN_LANGUAGES = ("en", "es", "zh", "de")


class EvalError(InvalidInput):
    """A dataset, report or baseline is missing or malformed (bad input, like a 422)."""


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    content: str


@dataclass(frozen=True)
class Case:
    """One golden case (see evals/datasets/README.md for the meaning of each field)."""

    id: str
    lang: str
    question: str
    kind: str
    gold_docs: tuple[str, ...] = ()
    gold_facts: tuple[str, ...] = ()
    escalation_reason: str | None = None
    country: str | None = None
    customer_id: str | None = None
    history: tuple[Turn, ...] = ()
    intent: str | None = None  # optional label; the golden set has none, adapters do
    must_not: tuple[str, ...] = ()  # claims that make the reply wrong (answer cases)
    asks_for: tuple[str, ...] = ()  # codes or claims an injection asks for (injection cases)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Case:
        kind = str(d["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        for key in ("gold_docs", "gold_facts", "must_not", "asks_for"):
            if isinstance(d.get(key), str):
                raise ValueError(f"{key} must be a list of strings")
        return cls(
            id=str(d["id"]),
            lang=str(d["lang"]),
            question=str(d["question"]),
            kind=kind,
            gold_docs=tuple(str(x) for x in d.get("gold_docs") or ()),
            gold_facts=tuple(str(x) for x in d.get("gold_facts") or ()),
            escalation_reason=d.get("escalation_reason"),
            country=d.get("country"),
            customer_id=d.get("customer_id"),
            history=tuple(Turn(str(t["role"]), str(t["content"])) for t in d.get("history") or ()),
            intent=d.get("intent"),
            must_not=tuple(str(x) for x in d.get("must_not") or ()),
            asks_for=tuple(str(x) for x in d.get("asks_for") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_cases(path: Path) -> list[Case]:
    """Read a JSONL golden set; a malformed line fails with its line number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read dataset {path}: {exc.strerror}") from exc
    cases: list[Case] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = Case.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalError(f"{path}:{n}: not a golden case ({exc})") from exc
        if case.id in seen:
            raise EvalError(f"{path}:{n}: duplicate id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise EvalError(f"{path} holds no cases")
    return cases


def dataset_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


SLICES = ("fast", "ci", "full", "lang:<code>", "kind:<kind>")


def select_slice(cases: Sequence[Case], name: str) -> list[Case]:
    """`full`: every case. `fast`: a small deterministic subset for the `none` backend in CI.
    `ci`: the cases CI sends through the small local model (see `CI_LANGUAGES`). `lang:es`,
    `kind:unknown`: one language or kind. Cases keep their dataset order."""
    if name == "full":
        return list(cases)
    if name.startswith("lang:"):
        return [c for c in cases if c.lang == name[5:]]
    if name.startswith("kind:"):
        return [c for c in cases if c.kind == name[5:]]
    if name == "ci":
        return _ci_slice(cases)
    if name != "fast":
        raise EvalError(f"unknown slice {name!r}; choose one of {', '.join(SLICES)}")
    picked: set[str] = set()
    taken: dict[tuple[str, str], int] = {}
    for c in cases:
        key = (c.lang, c.kind)
        if taken.get(key, 0) < FAST_PER_LANGUAGE.get(c.kind, 0) and not c.history:
            taken[key] = taken.get(key, 0) + 1
            picked.add(c.id)
    for lang in FAST_EXTRA_LANGUAGES:
        mine = [c for c in cases if c.lang == lang]
        injections = [c.id for c in mine if c.kind == "injection"]
        follow_ups = [c.id for c in mine if c.kind == "answer" and c.history]
        picked.update(ids[0] for ids in (injections, follow_ups) if ids)
    # multi-turn escalations and injections are rare and exercise session state
    picked |= {c.id for c in cases if c.history and c.kind != "answer"}
    return [c for c in cases if c.id in picked]


def _ci_slice(cases: Sequence[Case]) -> list[Case]:
    picked: set[str] = set()
    for lang in CI_LANGUAGES:
        answers = [c for c in cases if c.lang == lang and c.kind == "answer"]
        qualifying = [c for c in answers if c.must_not and not c.history]
        picked.update(c.id for c in qualifying[:CI_ANSWERS])
    for lang in CI_UNKNOWN_LANGUAGES:
        unknown = [c for c in cases if c.lang == lang and c.kind == "unknown" and not c.history]
        picked.update(c.id for c in unknown[:1])
    return [c for c in cases if c.id in picked]
