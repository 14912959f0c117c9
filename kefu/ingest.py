"""`kefu ingest …`: keep a store's index in step with a folder of documents and catalogs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ingest.service import build_ingestor
from ingest.sync import Ingestor, Progress, SyncReport
from kefu.chat import (
    JsonOpt,
    StoreOpt,
    console,
    out,
    print_json,
    progress_bar,
    settings,
    user_errors,
)
from rag.container import Container

app = typer.Typer(help="Ingest documents and catalogs into a store.", no_args_is_help=True)


def _report(report: SyncReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(report.summary())
        for s in report.skipped:
            console.print(f"[yellow]skipped[/yellow] {s['file']}: {s['reason']}", highlight=False)
        for f in report.flagged:
            console.print(
                f"[yellow]ignored[/yellow] {f['doc_id']}: {f['sentences']} sentence(s) that give "
                "the assistant orders are never quoted or sent to the model",
                highlight=False,
            )
    if not report.ok:
        raise typer.Exit(1)  # the rest completed; the exit code says something was skipped


def _ingest(
    store: str | None, as_json: bool, work: Callable[[Ingestor, Progress], SyncReport]
) -> None:
    """`work` on the store's ingestor, with a progress bar (none with --json), then the report."""
    with user_errors():
        c = Container(settings(), store=store)
        with progress_bar(not as_json) as bar:
            report = work(build_ingestor(c), bar)
    _report(report, as_json)


@app.command()
def sync(
    path: Annotated[Path, typer.Argument(help="folder of documents and catalogs")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring the index up to date with PATH: embed only what changed, delete what is gone."""
    _ingest(store, as_json, lambda ingestor, bar: ingestor.sync(path, progress=bar))


@app.command()
def add(
    files: Annotated[list[Path], typer.Argument(help="files to add or update")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or update individual files."""
    _ingest(store, as_json, lambda ingestor, bar: ingestor.add(files, progress=bar))


@app.command()
def remove(
    doc_ids: Annotated[list[str], typer.Argument(help="document ids (see `kefu ingest list`)")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete documents from the index."""
    with user_errors():
        c = Container(settings(), store=store)
        removed = build_ingestor(c).remove(doc_ids)
    if as_json:
        print_json({"removed": removed})
    else:
        out.print(f"removed {len(removed)} document(s)")


@app.command("list")
def list_docs(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List indexed documents."""
    with user_errors():
        docs = Container(settings(), store=store).index.documents()
    if as_json:
        print_json([d.__dict__ for d in docs])
        return
    t = Table("doc_id", "type", "lang", "markets", "chunks", "ingested")
    for d in docs:
        t.add_row(
            d.doc_id, d.doc_type, d.language, ",".join(d.markets), str(d.chunk_count), d.ingested_at
        )
    out.print(t)


@app.command()
def stats(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Counts by type and language, the embedding model and the last synced folder."""
    with user_errors():
        c = Container(settings(), store=store)
        docs = c.index.documents()
        data = {
            "store": c.store,
            "documents": len(docs),
            "chunks": c.index.chunk_count(),
            "vectors": c.vectors.count(),
            "embedding_model": c.index.embedding_model,
            "root": c.index.get_meta("root"),
            "by_type": _count(d.doc_type for d in docs),
            "by_language": _count(d.language for d in docs),
        }
    if as_json:
        print_json(data)
        return
    for k, v in data.items():
        out.print(f"{k}: {v}")


def _count(values: object) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:  # type: ignore[attr-defined]
        counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


@app.command()
def reindex(
    path: Annotated[Path | None, typer.Argument(help="folder (default: the last synced)")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the store from scratch, e.g. after switching the embedding model."""
    from ingest.rebuild import rebuild

    with user_errors(), progress_bar(not as_json) as bar:
        report = rebuild(settings(), store=store, root=path, build=build_ingestor, progress=bar)
    _report(report, as_json)


@app.command()
def watch(
    path: Annotated[Path, typer.Argument(help="folder to watch")],
    store: StoreOpt = None,
) -> None:
    """Sync PATH now, then again whenever a file changes (debounced). Ctrl-C stops."""
    from ingest.watch import watch_folder

    with user_errors():
        c = Container(settings(), store=store)
        ing = build_ingestor(c)
        console.print(ing.sync(path).summary())
        console.print(f"watching {path} (Ctrl-C to stop)")
        watch_folder(
            path,
            lambda: console.print(ing.sync(path).summary()),
            debounce_s=c.settings.ingest.watch_debounce_s,
        )
