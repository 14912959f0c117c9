"""What the running app holds: one container per store (sharing the loaded models), limits,
metrics, ingest jobs."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from rag.container import Container
from rag.errors import ConfigError, NotFound
from rag.settings import EXAMPLE_ADMIN_KEY, Settings
from server.limits import RateLimiter
from server.llm_gate import GatedChatModel
from server.metrics import Metrics


def check_startup(settings: Settings) -> None:
    """Unsafe combinations stop the server with a message that says what to set."""
    s = settings.server
    if s.admin_enabled and s.admin_api_key.get_secret_value() in {EXAMPLE_ADMIN_KEY, ""}:
        raise ConfigError(
            "the admin API is enabled with the example key: set KEFU_SERVER__ADMIN_API_KEY to a "
            "long random secret, or KEFU_SERVER__ADMIN_ENABLED=false"
        )


@dataclass
class Job:
    id: str
    status: str = "queued"  # queued | running | done | failed
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class AppState:
    settings: Settings
    default: Container
    metrics: Metrics = field(default_factory=Metrics)
    containers: dict[str, Container] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        s = self.settings.server
        self.session_limit = RateLimiter(s.rate_per_session)
        self.ip_limit = RateLimiter(s.rate_per_ip)
        llm = self.default.llm
        if llm is not None and not isinstance(llm, GatedChatModel):
            # the local model serves one request at a time; an endpoint serves many
            slots = 1 if self.settings.llm.provider == "llamacpp" else s.llm_concurrency
            gated = GatedChatModel(
                llm, max_waiting=s.llm_queue, wait_s=self.settings.llm.timeout_s, slots=slots
            )
            self.default.__dict__["llm"] = gated
        self.containers[self.default.store] = self.default

    def container(self, store: str | None) -> Container:
        """The store's container; stores share the loaded embedder and model."""
        name = store or self.default.store
        if name not in self.containers:
            if not (self.settings.store_dir(name) / "CURRENT").exists() and not any(
                self.settings.store_dir(name).glob("gen-*")
            ):
                raise NotFound(f"no store {name!r}")
            self.containers[name] = Container(
                self.settings, store=name, embedder=self.default.embedder, llm=self.default.llm
            )
        return self.containers[name]

    def new_job(self) -> Job:
        job = Job(id=uuid.uuid4().hex)
        self.jobs[job.id] = job
        return job
