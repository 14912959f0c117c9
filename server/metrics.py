"""Prometheus metrics, on a registry of the app's own (several apps in one process stay apart)."""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rag.lang.frames import languages


@cache
def _known() -> frozenset[str]:
    return frozenset(languages())


def language_label(code: str | None) -> str:
    """A language as a metric label or a stats key: one of kefu's languages, else "other"
    (a label set that anything a client sends could grow is a memory leak)."""
    return code if code in _known() else "other"


def bounded_counts(counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, n in counts.items():
        label = language_label(key)
        out[label] = out.get(label, 0) + int(n)
    return out


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kefu_http_requests_total", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "kefu_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60),
            registry=self.registry,
        )
        self.replies = Counter(
            "kefu_replies_total",
            "Replies by mode and language",
            ["mode", "language"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "kefu_escalations_total", "Escalations by reason", ["reason"], registry=self.registry
        )
        self.tokens = Counter(
            "kefu_llm_tokens_total", "LLM tokens", ["kind"], registry=self.registry
        )
        self.fallbacks = Counter(
            "kefu_fallbacks_total",
            "Extractive fallbacks after LLM failure or rejected drafts",
            registry=self.registry,
        )
        self.errors = Counter(
            "kefu_errors_total", "Errors by kind", ["kind"], registry=self.registry
        )
        # load shedding (server/shedding.py), per worker
        self.shed = Counter(
            "kefu_chats_shed_total",
            "Chat requests refused with a 503 under load, by reason (queue_full, waited_too_long)",
            ["reason"],
            registry=self.registry,
        )
        self.pending_chats = Gauge(
            "kefu_chats_pending",
            "Chat requests admitted and not yet answered",
            registry=self.registry,
        )
