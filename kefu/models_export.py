"""`kefu models export-int8`: the embedding model as int8 ONNX, built offline from its weights."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from kefu.chat import console, settings, user_errors
from rag.container import build_embedder


def export_int8_command(
    model: Annotated[
        str | None,
        typer.Option(help="source model (default: KEFU_EMBEDDINGS__MODEL)"),
    ] = None,
) -> None:
    """Export the embedding model to int8 ONNX Runtime (idempotent; select it with
    KEFU_EMBEDDINGS__PROVIDER=onnx_int8, then run `kefu ingest reindex`)."""
    s = settings()
    emb = s.embeddings.model_copy(
        update={"provider": "onnx_int8", "model": model or s.embeddings.model}
    )
    started = time.perf_counter()
    with user_errors():
        console.print(f"exporting {emb.model} to int8 ONNX (a few minutes the first time)…")
        embedder = build_embedder(s.model_copy(update={"embeddings": emb}))
    folder = getattr(embedder, "folder", None)
    console.print(
        f"{embedder.name}: ready at {folder} ({time.perf_counter() - started:.0f} s); "
        "set KEFU_EMBEDDINGS__PROVIDER=onnx_int8 and run `kefu ingest reindex`"
    )
