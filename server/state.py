"""What the running app holds: one container per store (sharing the loaded models), limits,
metrics, ingest jobs, the session secret, what readiness found at start."""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from ingest.sync import JobControl
from rag.container import Container
from rag.errors import ConfigError, NotFound
from rag.ports import ChatModel, RateWindow
from rag.settings import EXAMPLE_ADMIN_KEY, Settings, check_store_name
from server.limits import build_limiters
from server.llm_gate import GatedChatModel
from server.metrics import Metrics
from server.shedding import Admission

log = logging.getLogger(__name__)
MIN_ADMIN_KEY = 32
# parts of the keys in examples and docs: a key holding one was copied, not generated
PLACEHOLDERS = ("change-me", "changeme", "change_me", "example", "placeholder", "replace-me")


def weak_admin_key(key: str) -> str | None:
    """Why the key is unsafe, or None."""
    if len(key) < MIN_ADMIN_KEY:
        return f"shorter than {MIN_ADMIN_KEY} characters"
    if key == EXAMPLE_ADMIN_KEY or any(p in key.lower() for p in PLACEHOLDERS):
        return "an example value"
    if len(set(key)) < 10:
        return "not random (too few distinct characters)"
    return None


def check_startup(settings: Settings) -> None:
    """Unsafe combinations stop the server with a message that says what to set."""
    s = settings.server
    if s.admin_enabled or s.metrics_auth:
        why = weak_admin_key(s.admin_api_key.get_secret_value())
        if why:
            raise ConfigError(
                f"KEFU_SERVER__ADMIN_API_KEY is {why}: set it to a random secret of at least "
                f"{MIN_ADMIN_KEY} characters (python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'), or KEFU_SERVER__ADMIN_ENABLED=false"
            )


def gate_llm(c: Container, settings: Settings) -> None:
    """Put the chat model behind the server's gate (server/llm_gate.py), before the pipeline
    takes it: the local model serves one request at a time, an endpoint serves many."""
    if c.built("pipeline"):  # a caller's container, already answering: it keeps its model
        log.warning("the answer pipeline was built before start-up: its model is not gated")
        return
    s = settings.server
    slots = 1 if settings.llm.provider == "llamacpp" else s.llm_concurrency

    def gate(model: ChatModel) -> ChatModel:
        if isinstance(model, GatedChatModel):  # shared with a container already gated
            return model
        return GatedChatModel(
            model, max_waiting=s.llm_queue, wait_s=settings.llm.timeout_s, slots=slots
        )

    c.wrap_llm(gate)


@dataclass
class Job:
    """An ingest job run off the request path; cancellable, time-limited (ingest.sync)."""

    id: str
    status: str = "queued"  # queued | running | cancelling | done | failed | cancelled
    result: dict[str, Any] | None = None
    error: str | None = None
    control: JobControl = field(default_factory=JobControl)

    @property
    def finished(self) -> bool:
        return self.status in {"done", "failed", "cancelled"}

    def cancel(self) -> bool:
        """Ask the job to stop at its next file or embedding batch (documents stay at their
        old or new version). False when it has already ended."""
        if self.finished:
            return False
        self.control.cancel()
        self.status = "cancelling"
        return True


@dataclass
class AppState:
    settings: Settings
    default: Container
    metrics: Metrics = field(default_factory=Metrics)
    containers: dict[str, Container] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)
    # what was missing when the server started (readiness reports it until a restart)
    startup_problems: list[str] = field(default_factory=list)
    # the size of the threadpool that runs answers (anyio's default: 40); sizes the default
    # load-shedding limit
    threads: int = 40

    def __post_init__(self) -> None:
        s = self.settings.server
        # shared by every worker through the database when one is configured
        self.limiters = build_limiters(self.settings)
        self.session_limit, self.ip_limit, self.auth_limit = self.limiters
        self._containers_lock = threading.Lock()
        if s.session_secret is not None and s.session_secret.get_secret_value():
            self.session_secret = s.session_secret.get_secret_value().encode()
        else:
            log.warning(
                "KEFU_SERVER__SESSION_SECRET is not set: session tokens are signed with a random "
                "key, so shoppers' sessions end when the server restarts"
            )
            self.session_secret = secrets.token_bytes(32)
        self.containers[self.default.store] = self.default
        self.admission = Admission.from_settings(s, threads=self.threads, metrics=self.metrics)

    @property
    def served_stores(self) -> frozenset[str]:
        return frozenset({self.default.store, *self.settings.server.stores})

    def container(self, store: str | None) -> Container:
        """The store's container; stores share the loaded embedder and model. A name that is not
        an identifier is a 422; a store this server does not serve is a 404, like a missing one."""
        name = check_store_name(store) if store else self.default.store
        if name not in self.served_stores:
            raise NotFound(f"no store {name!r}")
        with self._containers_lock:
            if name not in self.containers:
                folder = self.settings.store_dir(name)
                if not (folder / "CURRENT").exists() and not any(folder.glob("gen-*")):
                    raise NotFound(f"no store {name!r}")
                # the default container's models, the chat model already gated
                self.containers[name] = Container(
                    self.settings, store=name, embedder=self.default.embedder, llm=self.default.llm
                )
            return self.containers[name]

    def close(self, *, wait_s: float = 30.0) -> None:
        """At shutdown: running ingest jobs are cancelled (they stop between files and batches,
        each document at its old or new version) and waited for, then every store's container
        (database pools, files) and the rate limits' window are closed. A part that fails to
        close is logged; the others still close."""
        for job in list(self.jobs.values()):
            if not job.finished:
                job.control.cancel()
        # a job holds the ingest lock while it uses the index: never close the index under it
        if not self.ingest_lock.acquire(timeout=wait_s):
            log.warning("an ingest job did not stop within %.0f s; closing anyway", wait_s)
        else:
            self.ingest_lock.release()
        with self._containers_lock:
            containers = list(self.containers.values())
        windows = {id(lim.window): lim.window for lim in self.limiters}  # one, shared
        parts: list[Container | RateWindow] = [*containers, *windows.values()]
        for part in parts:
            try:
                part.close()
            except Exception:
                log.exception("closing %s failed", part.__class__.__name__)

    def new_job(self) -> Job:
        job = Job(id=uuid.uuid4().hex)
        self.jobs[job.id] = job
        return job
