"""`kefu handoff …` for agents and `kefu privacy …` for erasure and retention."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kefu.chat import JsonOpt, StoreOpt, fail, out, print_json, settings, user_errors
from rag.container import Container
from rag.errors import NotFound

handoff_app = typer.Typer(help="The human handoff queue.", no_args_is_help=True)
privacy_app = typer.Typer(help="Erasure and retention of shoppers' data.", no_args_is_help=True)


@handoff_app.command("list")
def handoff_list(
    status: Annotated[str | None, typer.Option(help="open | claimed | resolved")] = "open",
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Handoffs waiting for an agent (or with another status)."""
    with user_errors():
        items = Container(settings(), store=store).conversations.handoffs(status or None)
    if as_json:
        print_json(items)
        return
    t = Table("id", "status", "reason", "lang", "session", "created")
    for h in items:
        t.add_row(
            str(h["id"]),
            h["status"],
            h["reason"],
            str(h["language"]),
            h["session_id"],
            h["created_at"],
        )
    out.print(t)


@handoff_app.command("show")
def handoff_show(handoff_id: int, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A handoff with its summary and the transcript."""
    with user_errors():
        conv = Container(settings(), store=store).conversations
        h = conv.handoff(handoff_id)
        if h is None:
            raise NotFound(f"no handoff {handoff_id}")
        transcript = [t.__dict__ for t in conv.history(str(h["session_id"]), 200)]
    if as_json:
        print_json({**h, "transcript": transcript})
        return
    out.print(f"[bold]#{h['id']}[/bold] {h['status']} — {h['reason']} ({h['language']})")
    out.print(h["summary"], highlight=False)
    for t in transcript:
        out.print(f"[dim]{t['created_at']}[/dim] {t['role']}: {t['content']}", highlight=False)


@handoff_app.command("resolve")
def handoff_resolve(handoff_id: int, store: StoreOpt = None) -> None:
    """Close a handoff: the session returns to the bot."""
    with user_errors():
        Container(settings(), store=store).conversations.set_handoff_status(handoff_id, "resolved")
    out.print(f"handoff {handoff_id} resolved")


@privacy_app.command("erase")
def privacy_erase(
    customer: Annotated[str, typer.Option("--customer", help="customer id or email")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a shopper's conversations, handoffs and derived data; print a receipt."""
    if not customer.strip():
        fail("--customer must not be empty")
    with user_errors():
        receipt = Container(settings(), store=store).erasure.erase(customer)
    receipt_out = {"customer": customer, "deleted": {**receipt, "vectors": 0}}
    if as_json:
        print_json(receipt_out)
    else:
        out.print(
            f"erased {customer}: {receipt['sessions']} sessions, {receipt['turns']} messages, "
            f"{receipt['handoffs']} handoffs, {receipt.get('profiles', 0)} customer profiles, "
            f"{receipt.get('orders_anonymised', 0)} orders anonymised "
            "(no shopper data is stored in the vector index)"
        )


@privacy_app.command("purge")
def privacy_purge(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Delete transcripts older than KEFU_GUARDRAILS__RETENTION_DAYS."""
    s = settings()
    with user_errors():
        res = Container(s, store=store).conversations.purge_older_than(s.guardrails.retention_days)
    if as_json:
        print_json(res)
    else:
        out.print(
            f"purged {res['sessions']} sessions older than {s.guardrails.retention_days} days"
        )
