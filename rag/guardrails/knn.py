"""Nearest labelled examples in embedding space: the scorer behind kefu's small classifiers.

A classifier here is a list of (label, example text) pairs. The examples are embedded once per
embedder (lazily, on the first message, then kept for the life of the process and optionally on
disk) into one unit-length matrix, and a message is scored with one matrix-vector product: the k
most similar examples vote, each weighted by exp(temp * (similarity - best similarity)), so
that the nearest examples count most and a far crowd cannot outvote a close match.

Messages and examples are embedded the same way, in one mode: "document" (the default) or
"query" (the retrieval prompt of models that have one; a query-mode turn vector would also serve
retrieval, but with EmbeddingGemma the emotion vote lost 0.14 of precision in that mode on the
held-out split, bench/emotion.py --mode query). `embed_texts(embedder, texts, mode)` embeds the
way a scorer does, so one vector per turn is shared by every classifier of that turn.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from rag.ports import Embedder

Matrix = npt.NDArray[np.float32]
VectorLike = Sequence[float] | npt.NDArray[np.floating]
# how texts are embedded: with the model's query prompt or its document prompt
Mode = Literal["query", "document"]
DEFAULT_MODE: Mode = "document"

# (embedder name, dimension, mode, digest of the labelled examples) -> their embedded matrix;
# shared by every scorer of the process, so that two pipelines on one embedder embed a set once
_MATRICES: dict[tuple[str, int, str, str], Matrix] = {}
_LOCK = threading.Lock()


def embed_texts(embedder: Embedder, texts: Sequence[str], mode: Mode) -> list[list[float]]:
    """Texts embedded in one mode. Queries go in one batch when the embedder offers
    `embed_queries` (the sentence-transformers adapters do), else one at a time."""
    if mode == "document":
        return embedder.embed_documents(texts)
    batch = getattr(embedder, "embed_queries", None)
    if batch is not None:
        vectors: list[list[float]] = batch(texts)
        return vectors
    return [embedder.embed_query(t) for t in texts]


@dataclass(frozen=True)
class Example:
    label: str
    lang: str
    text: str
    held_out: bool  # held back when a threshold is chosen and measured (bench/classifiers.py)


def labelled(label: str, by_lang: Mapping[str, Sequence[object]], *, every: int) -> list[Example]:
    """A label's examples per language, every `every`-th of each language's list held out."""
    return [
        Example(label, str(lang), str(t), held_out=i % every == every - 1)
        for lang, texts in by_lang.items()
        for i, t in enumerate(texts)
    ]


@dataclass(frozen=True)
class Vote:
    """The outcome of one kNN vote. `share` is the winning label's weighted share of the k
    neighbours (0..1), `margin` its lead over the runner-up label, `similarity` the cosine of
    the nearest example that carries the winning label, `nearest` the label of the single
    nearest example."""

    label: str
    share: float
    margin: float
    similarity: float
    shares: Mapping[str, float]
    nearest: str


class KnnScorer:
    """Scores a vector against labelled examples (see the module docstring)."""

    def __init__(
        self,
        embedder: Embedder,
        examples: Sequence[tuple[str, str]],
        *,
        k: int = 7,
        temp: float = 20.0,
        cache_dir: Path | None = None,
        namespace: str = "knn",
        mode: Mode = DEFAULT_MODE,
    ) -> None:
        if not examples:
            raise ValueError("a kNN scorer needs at least one labelled example")
        self.embedder = embedder
        self.labels: tuple[str, ...] = tuple(label for label, _ in examples)
        self.texts: tuple[str, ...] = tuple(text for _, text in examples)
        self.k = max(1, min(k, len(self.texts)))
        self.temp = temp
        self.cache_dir = cache_dir
        self.namespace = namespace
        self.mode: Mode = mode
        body = "\n".join(f"{label}\t{text}" for label, text in examples)
        self.digest = hashlib.sha256(f"{namespace}-v1\n{body}".encode()).hexdigest()[:16]
        self._label_ids = np.array(
            [sorted(set(self.labels)).index(label) for label in self.labels], dtype=np.int64
        )
        self._label_names = tuple(sorted(set(self.labels)))

    # -- the example matrix -------------------------------------------------------------

    @property
    def matrix(self) -> Matrix:
        """The examples' unit vectors, one row each; embedded on first use, then cached."""
        key = (self.embedder.name, int(self.embedder.dim), self.mode, self.digest)
        cached = _MATRICES.get(key)
        if cached is not None:
            return cached
        with _LOCK:
            cached = _MATRICES.get(key)
            if cached is None:
                cached = self._load_or_embed()
                _MATRICES[key] = cached
        return cached

    def _load_or_embed(self) -> Matrix:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.embedder.name)
        # document-mode files keep their old names, so existing caches stay valid
        mode = "" if self.mode == "document" else f"-{self.mode}"
        path = (
            self.cache_dir / f"{self.namespace}-{safe}{mode}-{self.digest}.npy"
            if self.cache_dir is not None
            else None
        )
        if path is not None and path.exists():
            try:
                loaded = np.load(path, allow_pickle=False)
                if loaded.shape == (len(self.texts), int(self.embedder.dim)):
                    return np.asarray(loaded, dtype=np.float32)
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt below
        matrix = _unit_rows(
            np.asarray(embed_texts(self.embedder, self.texts, self.mode), np.float32)
        )
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, matrix, allow_pickle=False)
                tmp.replace(path)
            except OSError:
                pass  # a read-only cache folder costs one embedding per process, nothing more
        return matrix

    # -- scoring ------------------------------------------------------------------------

    def embed(self, text: str) -> npt.NDArray[np.float32]:
        """A message's vector, embedded the way the examples are."""
        row: npt.NDArray[np.float32] = _unit_rows(
            np.asarray(embed_texts(self.embedder, [text], self.mode), np.float32)
        )[0]
        return row

    def similarities(self, vector: VectorLike) -> npt.NDArray[np.float32]:
        """Cosine similarity of the vector to every example, in example order."""
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(v))
        if norm > 0:
            v = v / norm
        result: npt.NDArray[np.float32] = self.matrix @ v
        return result

    def vote(self, vector: VectorLike, *, exclude: int | None = None) -> Vote:
        """The weighted vote of the k nearest examples. `exclude` leaves one example out (to
        score the examples themselves, leave-one-out, when choosing a threshold)."""
        sims = self.similarities(vector).astype(np.float64)
        if exclude is not None:
            sims[exclude] = -np.inf
        k = min(self.k, int(np.isfinite(sims).sum()))
        top = np.argpartition(-sims, k - 1)[:k]
        best = float(sims[top].max())
        weights = np.exp(self.temp * (sims[top] - best))
        totals = np.bincount(
            self._label_ids[top], weights=weights, minlength=len(self._label_names)
        )
        totals = totals / totals.sum()
        order = np.argsort(-totals)
        win = int(order[0])
        runner_up = float(totals[order[1]]) if len(order) > 1 else 0.0
        won = top[self._label_ids[top] == win]
        return Vote(
            label=self._label_names[win],
            share=float(totals[win]),
            margin=float(totals[win]) - runner_up,
            similarity=float(sims[won].max()),
            shares={name: float(totals[i]) for i, name in enumerate(self._label_names)},
            nearest=self.labels[int(top[np.argmax(sims[top])])],
        )

    def mean(self, vector: VectorLike, values: Mapping[str, float]) -> float:
        """The vote turned into a number: the weighted mean of a value per label (the emotion
        score, 0 = furious .. 1 = happy, is this over angry/frustrated/neutral/happy)."""
        vote = self.vote(vector)
        return sum(values[label] * share for label, share in vote.shares.items())


def _unit_rows(m: Matrix) -> Matrix:
    if m.ndim != 2:
        m = m.reshape(len(m), -1)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: Matrix = (m / norms).astype(np.float32)
    return result


def clear_cache() -> None:
    """Forget every embedded example matrix (tests; a model swapped under the same name)."""
    with _LOCK:
        _MATRICES.clear()
