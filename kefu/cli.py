"""`kefu`: one command, sub-commands per package."""

from __future__ import annotations

import logging
import os

import typer

from kefu.chat import ask_command, chat_command, models_app, search_command
from kefu.evals import app as eval_app
from kefu.ingest import app as ingest_app
from kefu.models_export import export_int8_command
from kefu.ops import handoff_app, privacy_app
from kefu.serve import serve_command
from kefu.store import store_app
from rag.guardrails.pii import install_log_redaction

app = typer.Typer(
    help="kefu: multilingual AI customer service for cross-border sellers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(models_app, name="models")
models_app.command("export-int8")(export_int8_command)
app.command("search")(search_command)
app.command("ask")(ask_command)
app.command("chat")(chat_command)
app.add_typer(handoff_app, name="handoff")
app.add_typer(eval_app, name="eval")
app.command("serve")(serve_command)
app.add_typer(privacy_app, name="privacy")
app.add_typer(store_app, name="store")


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log at INFO"),
) -> None:
    level = logging.INFO if verbose else os.environ.get("KEFU_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    # models come from packages or local paths; never reach for a hub unless told to
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
