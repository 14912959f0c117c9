"""`kefu store …`: the embedded order store (import CSVs, look an order or customer up)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from kefu.chat import JsonOpt, fail, out, print_json, settings, user_errors
from rag.container import build_embedded_orders, build_order_connector
from rag.errors import NotFound
from rag.ports import OrderConnector

store_app = typer.Typer(help="Orders and customers (the embedded store).", no_args_is_help=True)


@store_app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="orders.csv, customers.csv, tracking.csv")],
    rebase_dates: Annotated[
        bool,
        typer.Option(help="shift all dates so the newest scan was yesterday (demo data)"),
    ] = False,
) -> None:
    """Load orders, customers and tracking scans into the embedded order store.

    Each file is recognised by its header and loaded in one transaction; rows replace rows
    with the same order number, customer id or scan."""
    with user_errors():
        s = settings()
        if s.commerce.provider != "sqlite":
            fail(
                f"KEFU_COMMERCE__PROVIDER={s.commerce.provider}: orders come from that platform; "
                "`kefu store import` fills the embedded store (provider sqlite)"
            )
        db = build_embedded_orders(s)  # the SQLite file, or PostgreSQL (KEFU_DATABASE__URL)
        try:
            for f in files:
                if not f.is_file():
                    fail(f"{f}: no such file")
                kind, n = db.import_csv(f)
                out.print(f"{f}: {n} {kind}")
            if rebase_dates:
                shift = db.rebase_dates()
                out.print(f"dates shifted by {shift.days} days")
            counts = db.counts()
        finally:
            db.close()
    where = "the PostgreSQL database" if s.database.postgres else str(s.commerce_db())
    out.print(", ".join(f"{v} {k}" for k, v in counts.items()) + f" in {where}")


def _connector() -> OrderConnector:
    conn = build_order_connector(settings())
    if conn is None:
        fail("KEFU_COMMERCE__PROVIDER=none: no order store is configured")
    return conn


@store_app.command("order")
def order_command(number: str, as_json: JsonOpt = False) -> None:
    """Show an order as kefu sees it (for agents; no verification)."""
    with user_errors():
        order = _connector().get_order(number)
        if order is None:
            raise NotFound(f"no order {number}")
    data = asdict(order)
    if as_json:
        print_json(data)
        return
    out.print(f"[bold]#{order.number}[/bold] {order.status} → {order.country or '?'}")
    for f in order.fulfilments:
        last = f.last_event
        scan = f"{last.at:%Y-%m-%d} {last.description}" if last else "no scans"
        out.print(f"  {f.carrier} {f.tracking_number} ({f.service}): {scan}", highlight=False)


@store_app.command("customer")
def customer_command(key: str, as_json: JsonOpt = False) -> None:
    """Show a customer's profile (by id or e-mail)."""
    with user_errors():
        customer = _connector().get_customer(key)
        if customer is None:
            raise NotFound(f"no customer {key}")
    if as_json:
        print_json(asdict(customer))
        return
    out.print(
        f"{customer.id} {customer.email or ''} tags={','.join(customer.tags) or '-'} "
        f"orders={customer.orders_count} spent={customer.total_spent} {customer.currency}",
        highlight=False,
    )
