"""The int8 ONNX embedder: exported offline from a sentence-transformers folder, it gives the
vectors the source model gives (within quantisation error), under its own model name.

A tiny Gemma-3 model with bidirectional attention and a sliding window shorter than the texts
stands in for EmbeddingGemma (same architecture, same export path, seconds instead of minutes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("sentence_transformers")

from rag.adapters.onnx_embedder import META_FILE, OnnxEmbedder, is_exported
from rag.adapters.onnx_export import export_int8
from rag.container import build_embedder
from rag.errors import ModelUnavailable
from rag.priority import background
from rag.settings import Settings

WORDS = {
    w
    for text in (
        "shipping to mexico takes four to seven business days returns are free within thirty",
        "days the lamp has a european plug and a us plug version customs duties are paid by",
        "the shopper on delivery express costs twelve dollars standard is free from seventy nine",
    )
    for w in text.split()
}

TEXTS = [
    "shipping to mexico takes four to seven business days",
    "returns are free within thirty days",
    "the lamp has a european plug and a us plug version customs duties are paid by the "
    "shopper on delivery express costs twelve dollars standard is free from seventy nine",
    "express costs twelve dollars",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import Gemma3TextConfig, Gemma3TextModel, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny-gemma")
    vocab = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "q:": 3, "d:": 4}
    for w in sorted(WORDS):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    tok.post_processor = TemplateProcessing(  # type: ignore[assignment]
        single="[BOS] $A", special_tokens=[("[BOS]", 2)]
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]"
    )
    config = Gemma3TextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        sliding_window=4,  # shorter than the long text: the windowed mask matters
        layer_types=["sliding_attention", "full_attention"],
        use_bidirectional_attention=True,
        pad_token_id=0,
        bos_token_id=2,
    )
    torch.manual_seed(0)
    folder = root / "transformer"
    Gemma3TextModel(config).save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    transformer = models.Transformer(str(folder), max_seq_length=64)
    pooling = models.Pooling(32, "mean")
    st = SentenceTransformer(
        modules=[transformer, pooling, models.Normalize()],
        prompts={"query": "q: ", "document": "d: "},
        device="cpu",
    )
    source = root / "tiny-embedder"
    st.save(str(source))
    return source


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("models") / "tiny-embedder-onnx-int8"
    return export_int8(str(tiny_model), target)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_int8_vectors_match_the_source_model(tiny_model: Path, exported: Path) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tiny_model), device="cpu")
    ref_docs = st.encode(TEXTS, prompt_name="document", normalize_embeddings=True)
    ref_query = st.encode(["express costs"], prompt_name="query", normalize_embeddings=True)
    emb = OnnxEmbedder(exported, name="tiny-onnx-int8", batch_size=2)

    docs = emb.embed_documents(TEXTS)
    query = emb.embed_query("express costs")

    assert emb.dim == 32
    for vec, ref in zip(docs, ref_docs, strict=True):
        assert math.isclose(sum(x * x for x in vec), 1.0, rel_tol=1e-4)
        assert _cos(vec, [float(x) for x in ref]) > 0.97
    assert _cos(query, [float(x) for x in ref_query[0]]) > 0.97
    # queries and documents carry their own prompts, as in the source model
    meta = json.loads((exported / META_FILE).read_text(encoding="utf-8"))
    assert (meta["query_prompt"], meta["document_prompt"]) == ("q: ", "d: ")


def test_batching_and_length_sorting_keep_the_texts_order(exported: Path) -> None:
    emb = OnnxEmbedder(exported, name="tiny-onnx-int8", batch_size=3)
    one_by_one = [emb.embed_documents([t])[0] for t in TEXTS]
    with background():  # ingest's path: one batch per lock
        together = emb.embed_documents(TEXTS)
    for a, b in zip(together, one_by_one, strict=True):
        assert _cos(a, b) > 0.999
    assert emb.embed_documents([]) == []


def test_export_is_idempotent_and_leaves_no_temporary_files(
    tiny_model: Path, exported: Path
) -> None:
    before = (exported / "model.onnx").stat().st_mtime_ns
    assert export_int8(str(tiny_model), exported) == exported
    assert (exported / "model.onnx").stat().st_mtime_ns == before
    assert not list(exported.parent.glob(".export-*"))


def test_missing_export_is_a_clear_error(tmp_path: Path) -> None:
    assert not is_exported(tmp_path)
    with pytest.raises(ModelUnavailable, match="export-int8"):
        OnnxEmbedder(tmp_path, name="x")


def test_setting_selects_the_int8_model_under_its_own_name(
    tiny_model: Path, tmp_path: Path
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        embeddings={"provider": "onnx_int8", "model": str(tiny_model)},
        _env_file=None,
    )
    emb = build_embedder(settings)  # exports into models_dir on first use

    assert emb.name == "tiny-embedder-onnx-int8"  # not the fp32 model's name: reindex needed
    assert is_exported(tmp_path / "models" / "tiny-embedder-onnx-int8")
    assert len(emb.embed_query("returns")) == emb.dim
