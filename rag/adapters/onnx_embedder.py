"""Embedder on ONNX Runtime: an int8 export of a sentence-transformers model (see onnx_export).

The export folder holds `model.onnx` (tokens in, unit-length sentence vectors out: the whole
sentence-transformers pipeline, pooling and dense layers included), the model's
`tokenizer.json` and `kefu_onnx.json` (prompts, maximum length, dimension, source). Loading it
needs only onnxruntime and tokenizers, no torch: a smaller, faster process than the fp32 model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable
from rag.priority import MicroBatcher, PriorityLock

log = logging.getLogger(__name__)

META_FILE = "kefu_onnx.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


def is_exported(folder: Path) -> bool:
    """True when `folder` holds a complete export (the metadata file is written last)."""
    return all((folder / f).is_file() for f in (MODEL_FILE, TOKENIZER_FILE, META_FILE))


class OnnxEmbedder:
    def __init__(
        self,
        folder: Path,
        *,
        name: str,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(
                f"{exc.name} is not installed: pip install 'kefu[onnx]'"
            ) from exc
        if not is_exported(folder):
            raise ModelUnavailable(f"no ONNX embedder in {folder}: run `kefu models export-int8`")
        meta: dict[str, Any] = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self._session: Any = ort.InferenceSession(
                str(folder / MODEL_FILE), opts, providers=["CPUExecutionProvider"]
            )
            self._tokenizer: Any = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as exc:  # a truncated or foreign file
            raise ModelUnavailable(f"cannot load the ONNX embedder in {folder}: {exc}") from exc
        self._tokenizer.no_padding()
        self._max_len = int(meta.get("max_seq_length") or 2048)
        self._tokenizer.enable_truncation(self._max_len)
        self._prompts: dict[str, str] = {
            "query": str(meta.get("query_prompt", "")),
            "document": str(meta.get("document_prompt", "")),
        }
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.name = name
        self.folder = folder
        self.batch_size = batch_size
        self.dim = int(meta.get("dim") or len(self._encode("query", ["x"])[0]))
        # one session serves chat and ingest; chat goes first, concurrent chat calls share one run
        self.lock = PriorityLock()
        self.batcher = MicroBatcher(self.lock, self._encode)

    def _run(self, texts: list[str]) -> np.ndarray[Any, Any]:
        enc = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        out: np.ndarray[Any, Any] = self._session.run(
            None, {k: v for k, v in feed.items() if k in self._inputs}
        )[0]
        return out

    def _encode(self, mode: str, texts: list[str]) -> list[list[float]]:
        """Vectors in the texts' order; texts of like length share a batch (less padding)."""
        prompt = self._prompts[mode]
        prompted = [prompt + t for t in texts]
        order = sorted(range(len(prompted)), key=lambda i: len(prompted[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out = self._run([prompted[i] for i in idx])
            # the graph normalises already; again here so a foreign export is unit-length too
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms == 0, 1.0, norms)
            for row, i in enumerate(idx):
                vectors[i] = [float(x) for x in out[row]]
        return vectors

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.batcher.documents(texts, self.batch_size)

    def embed_query(self, text: str) -> list[float]:
        return self.batcher.embed("query", [text])[0]
