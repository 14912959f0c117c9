"""Precision and recall of the small-talk and injection classifiers on messages they were not
built from, with the default embedder (EmbeddingGemma).

    .venv/bin/python -m bench.classifiers [--show-misses] [--mode query|document]
                                          [--only small_talk|injection]

Small talk: trained on the examples not held back in rag/guardrails/data/smalltalk.yaml,
measured on the held-back fifth and on the golden set's smalltalk (positive) and answer
(negative) questions, read at run time from evals/datasets/golden.jsonl.
Injection: trained on the examples not held back in rag/guardrails/data/injection_examples.yaml,
its threshold chosen on that training split (leave-one-out), measured on the attack corpus
tests/fixtures/injection_corpus.yaml, the held-back quarter, and the golden set's injection
(positive) and answer (negative) questions. Figures for the signatures alone, the classifier
alone and both (`screen`) side by side. `--mode` embeds examples and messages with the model's
query prompt or its document prompt (the default, as in code). No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import yaml

from rag.container import build_embedder
from rag.guardrails import injection_knn, smalltalk
from rag.guardrails.injection import looks_like_injection
from rag.guardrails.knn import DEFAULT_MODE, Mode, embed_texts
from rag.ports import Embedder
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "evals" / "datasets" / "golden.jsonl"
CORPUS = ROOT / "tests" / "fixtures" / "injection_corpus.yaml"
# held-out failures quoted in issue #13 (they were handed to a person)
ISSUE_SMALL_TALK = [
    "thanks, that's all I needed!",
    "Buongiorno! Come va?",
    "ありがとうございました！",
    "Cảm ơn shop nhiều nha ❤️",
    "สวัสดีค่ะ 😊",
]


def golden(kinds: set[str]) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if r["kind"] in kinds]


def prf(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float, int, int]:
    p = np.array(predicted)
    a = np.array(actual)
    tp = int((p & a).sum())
    fp = int((p & ~a).sum())
    fn = int((~p & a).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, fp, fn


def row(name: str, n_pos: int, n_neg: int, predicted: list[bool], actual: list[bool]) -> str:
    precision, recall, fp, fn = prf(predicted, actual)
    return f"{name:<52} {n_pos:>5} {n_neg:>5} {precision:>9.3f} {recall:>7.3f} {fp:>4} {fn:>4}"


HEADER = f"{'set':<52} {'pos':>5} {'neg':>5} {'precision':>9} {'recall':>7} {'fp':>4} {'fn':>4}"


def vectors(embedder: Embedder, texts: Sequence[str], mode: Mode) -> list[np.ndarray]:
    return [np.asarray(v, np.float32) for v in embed_texts(embedder, list(texts), mode)]


def bench_small_talk(embedder: Embedder, show: bool, mode: Mode = DEFAULT_MODE) -> None:
    train = [e for e in smalltalk.examples() if not e.held_out]
    held = [e for e in smalltalk.examples() if e.held_out]
    clf = smalltalk.SmallTalkClassifier(embedder, training=train, mode=mode)
    sets: dict[str, list[tuple[str, bool, str]]] = {
        "held-back examples (yaml, every 5th)": [
            (e.text, e.label != smalltalk.NONE, e.label) for e in held
        ],
        "golden smalltalk + answer": [
            (r["question"], r["kind"] == "smalltalk", r["kind"])
            for r in golden({"smalltalk", "answer"})
        ],
        "issue #13 failures": [(t, True, "smalltalk") for t in ISSUE_SMALL_TALK],
    }
    print("\nSmall talk (positive = small talk)")
    print(HEADER)
    for name, items in sets.items():
        vecs = vectors(embedder, [t for t, _, _ in items], mode)
        verdicts = [clf.classify(t, vector=v) for (t, _, _), v in zip(items, vecs, strict=True)]
        predicted = [v.is_small_talk for v in verdicts]
        actual = [a for _, a, _ in items]
        print(row(name, sum(actual), len(actual) - sum(actual), predicted, actual))
        wrong_kind = [
            (t, v.kind, label)
            for (t, a, label), v in zip(items, verdicts, strict=True)
            if a and v.kind is not None and label in smalltalk.KINDS and v.kind != label
        ]
        if wrong_kind:
            print(f"{'':<4}right as small talk, wrong class: {len(wrong_kind)}")
        if show:
            for (t, a, _), v in zip(items, verdicts, strict=True):
                if v.is_small_talk != a:
                    vote = v.vote
                    detail = f"{vote.label} {vote.share:.2f}/{vote.margin:.2f}" if vote else ""
                    print(f"{'':<4}{'MISS' if a else 'FP  '} {v.reason:<12} {detail:<18} {t!r}")


def bench_injection(embedder: Embedder, show: bool, mode: Mode = DEFAULT_MODE) -> None:
    train = [e for e in injection_knn.examples() if not e.held_out]
    held = [e for e in injection_knn.examples() if e.held_out]
    clf = injection_knn.InjectionClassifier(embedder, training=train, mode=mode)
    t0 = time.perf_counter()
    clf.threshold = clf.choose_threshold()
    print(
        f"\nInjection: threshold {clf.threshold:.2f} chosen on the training split "
        f"({len(train)} examples, leave-one-out, {time.perf_counter() - t0:.1f}s); "
        f"default in code {injection_knn.DEFAULT_THRESHOLD:.2f}"
    )
    corpus = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    sets: dict[str, list[tuple[str, bool]]] = {
        "attack corpus, messages": [(c["text"], True) for c in corpus if c["channel"] == "message"],
        "attack corpus, document lines": [
            (c["text"], True) for c in corpus if c["channel"] == "document"
        ],
        "held-back examples (yaml, every 4th)": [
            (e.text, e.label == injection_knn.ATTACK) for e in held
        ],
        "golden injection + answer": [
            (r["question"], r["kind"] == "injection") for r in golden({"injection", "answer"})
        ],
    }
    print(HEADER)
    deciders: dict[str, Callable[[str, np.ndarray], bool]] = {
        "signatures": lambda t, v: looks_like_injection(t),
        "classifier": lambda t, v: clf.classify(t, vector=v).attack,
        "both": lambda t, v: clf.screen(t, vector=v).attack,
    }
    for name, items in sets.items():
        vecs = vectors(embedder, [t for t, _ in items], mode)
        actual = [a for _, a in items]
        for dname, decide in deciders.items():
            predicted = [decide(t, v) for (t, _), v in zip(items, vecs, strict=True)]
            print(
                row(f"{name} [{dname}]", sum(actual), len(actual) - sum(actual), predicted, actual)
            )
            if show and dname == "both":
                for (t, a), p in zip(items, predicted, strict=True):
                    if p != a:
                        print(f"{'':<4}{'MISS' if a else 'FP  '} {t[:110]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show-misses", action="store_true", help="list every wrong decision")
    ap.add_argument("--mode", choices=["query", "document"], default=DEFAULT_MODE)
    ap.add_argument("--only", choices=["small_talk", "injection"], help="one classifier")
    args = ap.parse_args()
    t0 = time.perf_counter()
    embedder = build_embedder(Settings())
    print(
        f"embedder {embedder.name} (dim {embedder.dim}), {args.mode} mode, "
        f"loaded in {time.perf_counter() - t0:.1f}s"
    )
    if args.only in (None, "small_talk"):
        bench_small_talk(embedder, args.show_misses, args.mode)
    if args.only in (None, "injection"):
        bench_injection(embedder, args.show_misses, args.mode)


if __name__ == "__main__":
    main()
