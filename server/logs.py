"""Server logs: one JSON object per line (or plain text), each carrying the request id.

`kefu serve` hands `log_config()` to uvicorn, which applies it in every worker process, so the
logs are configured once, at the entry point. The request id lives in a context variable set by
the app's middleware; it follows the request into worker threads (Starlette copies the context),
so a line logged deep in `rag/` still names its request. PII redaction (`rag.guardrails.pii`)
runs as a filter on the handler, before formatting.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

request_id: ContextVar[str | None] = ContextVar("kefu_request_id", default=None)

LogFormat = Literal["json", "text"]

# attributes every LogRecord has; anything else on a record came from `extra=`
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}
_SCALARS = (str, int, float, bool, type(None))


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get() or "-"
        return True


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed with `extra=` (status, latency_ms, mode…), JSON-ready."""
    return {
        key: value if isinstance(value, _SCALARS) else str(value)
        for key, value in vars(record).items()
        if key not in _RECORD_FIELDS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """ts, level, logger, message, request_id, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or request_id.get()
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if rid in {None, "-"} else rid,
        }
        out |= {k: v for k, v in extras(record).items() if k not in out}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger [request id] message key=value…`, for reading in a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        line = super().format(record)
        pairs = " ".join(f"{k}={v}" for k, v in extras(record).items())
        if not pairs:
            return line
        head, nl, rest = line.partition("\n")  # extras go on the message line, not the traceback
        return f"{head} {pairs}{nl}{rest}"


def log_config(fmt: LogFormat = "json", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: one stderr handler on the root logger, uvicorn's
    loggers routed through it, PII redacted and request ids stamped on every line."""
    formatter = {"()": f"server.logs.{'Json' if fmt == 'json' else 'Text'}Formatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "server.logs.RequestIdFilter"},
            "redact_pii": {"()": "rag.guardrails.pii.RedactingFilter"},
        },
        "formatters": {"kefu": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "kefu",
                "filters": ["redact_pii", "request_id"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
