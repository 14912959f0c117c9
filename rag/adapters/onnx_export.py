"""Export a sentence-transformers model to ONNX and quantise its weights to int8, offline.

The whole pipeline (transformer, pooling, dense layers, normalisation) becomes one graph, so
the runtime (onnx_embedder) needs no torch. The transformer's attention masks are built in the
graph from the padding mask (bidirectional, with the sliding window of Gemma-3-style models),
because the library's own mask helpers do not trace. Weights are quantised dynamically
(onnxruntime.quantization): int8 weights, activations quantised per call; no calibration data.

Needs torch, sentence-transformers and onnx (`pip install 'kefu[onnx]'`). Takes a
few minutes and ~3 GB of memory for EmbeddingGemma-300m; the result is ~300 MB.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from rag.adapters.onnx_embedder import META_FILE, MODEL_FILE, TOKENIZER_FILE, is_exported
from rag.errors import ModelUnavailable

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the graph's inputs/outputs or the metadata change


def _pipeline_module(model: Any) -> Any:
    import torch

    transformer = model[0].auto_model
    config = transformer.config
    window = getattr(config, "sliding_window", None)
    bidirectional = bool(getattr(config, "use_bidirectional_attention", False))

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = model
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            if bidirectional:
                # the masks Gemma-3 builds for bidirectional attention: every real token,
                # and for sliding layers those nearer than the window
                seq = input_ids.shape[1]
                keep = attention_mask.bool()[:, None, None, :].expand(-1, 1, seq, -1)
                masks: Any = {"full_attention": keep}
                if window:
                    pos = torch.arange(seq, device=input_ids.device)
                    near = (pos[:, None] - pos[None, :]).abs() < window
                    masks["sliding_attention"] = keep & near[None, None]
                else:
                    masks["sliding_attention"] = keep
            else:
                masks = attention_mask
            hidden = self.transformer(input_ids=input_ids, attention_mask=masks).last_hidden_state
            features = {"token_embeddings": hidden, "attention_mask": attention_mask}
            for module in list(self.st)[1:]:
                features = module(features)
            return features["sentence_embedding"]

    return Pipeline().eval()


def export_int8(source: str, target: Path, *, force: bool = False) -> Path:
    """Export `source` (a sentence-transformers folder or hub name) into `target` as int8 ONNX.

    Idempotent: a complete export is kept unless `force`. Atomic: built in a temporary folder
    beside `target`, moved into place only when complete, so a crash leaves no half model."""
    if is_exported(target) and not force:
        return target
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelUnavailable(f"{exc.name} is not installed: pip install 'kefu[onnx]'") from exc

    started = time.perf_counter()
    try:
        model = SentenceTransformer(source, device="cpu")
    except Exception as exc:
        raise ModelUnavailable(f"cannot load embedding model {source!r}: {exc}") from exc
    tokenizer_file = Path(model.tokenizer.name_or_path) / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise ModelUnavailable(f"{source!r} has no {TOKENIZER_FILE}; cannot export it")
    prompts: dict[str, str] = dict(getattr(model, "prompts", {}) or {})
    get_dim = (  # renamed in sentence-transformers 6
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    module = _pipeline_module(model)
    sample = model.tokenizer(
        ["export a sample", "a longer sample, for a padded batch"],
        padding=True,
        return_tensors="pt",
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp_s:
        tmp = Path(tmp_s)
        fp32 = tmp / "fp32.onnx"
        staged = tmp / "staged"
        staged.mkdir()
        # the TorchScript exporter: deprecated, but it traces this model as it runs, where
        # torch.export trips over transformers' mask code; its tracer warnings are expected
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (sample["input_ids"], sample["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
        log.info("exported %s to ONNX in %.0f s", source, time.perf_counter() - started)
        quantize_dynamic(
            str(fp32), str(staged / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True
        )
        fp32.unlink()
        shutil.copyfile(tokenizer_file, staged / TOKENIZER_FILE)
        meta = {
            "format": FORMAT,
            "source": source,
            "quantization": "dynamic int8 (onnxruntime.quantization, QInt8 weights per channel)",
            "dim": int(get_dim() or 0),
            "max_seq_length": int(model.max_seq_length or 0),
            "query_prompt": prompts.get("query", ""),
            "document_prompt": prompts.get("document", ""),
        }
        # the metadata file last: its presence marks a complete export
        (staged / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    log.info("int8 ONNX embedder ready in %s (%.0f s)", target, time.perf_counter() - started)
    return target
